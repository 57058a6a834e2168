package client

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/mucwatch"
)

const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCOwner = "http://jabber.org/protocol/muc#owner"
	nsXData    = "jabber:x:data"
)

// RoomPolicy says what the client does by itself to stay in its rooms. Get
// the defaults with DefaultRoomPolicy, change what you need, and pass it to
// WithRoomPolicy. Whatever it does is reported through OnRoomAction, and
// whatever it finds through OnRoom, so an application that turns an action
// off can alert its user instead.
type RoomPolicy struct {
	// SelfPing enables XEP-0410 self-pings: when a mark that concerns the
	// room or our own occupant is cleared by its annotator, when the room
	// answers a message of ours with an error (it may have dropped us
	// without a word; reason "bounce"), before a groupchat message is sent
	// to it while it is stale (reason "send"; see Client.SendMessage), and
	// after Silence without presence or messages from the room. Never while
	// our own stream is down.
	SelfPing bool
	// Silence is how long a joined room may stay silent before a self-ping,
	// jittered by up to a fifth either way so that rooms do not ping at once.
	Silence time.Duration
	// PingTimeout bounds each self-ping; no answer in time is undecided.
	PingTimeout time.Duration
	// Rejoin enables rejoining a room: after our own reconnect (once per
	// room), when a self-ping says we are no longer in it, and after a
	// technical removal (status 332 or 333).
	Rejoin bool
	// RejoinDelay is the wait before rejoining after a technical removal
	// (jittered), and the first step of the exponential backoff between
	// failed rejoins and between undecided self-pings.
	RejoinDelay time.Duration
	// MaxAttempts is how many rejoins of a room may fail in a row before the
	// client gives up on it (ActionGaveUp).
	MaxAttempts int
	// CreateInstant accepts the default configuration of a room that our join
	// created (status 201), which unlocks it for others (XEP-0045 §10.1.2).
	CreateInstant bool
}

// Defaults of the room policy.
const (
	DefaultSilence     = 15 * time.Minute
	DefaultPingTimeout = 30 * time.Second
	DefaultRejoinDelay = 30 * time.Second
	DefaultMaxAttempts = 5
)

// DefaultRoomPolicy returns the policy a client has unless told otherwise:
// everything on, with the default durations.
func DefaultRoomPolicy() RoomPolicy {
	return RoomPolicy{
		SelfPing:      true,
		Silence:       DefaultSilence,
		PingTimeout:   DefaultPingTimeout,
		Rejoin:        true,
		RejoinDelay:   DefaultRejoinDelay,
		MaxAttempts:   DefaultMaxAttempts,
		CreateInstant: true,
	}
}

//go:generate go run golang.org/x/tools/cmd/stringer@v0.51.0 -type=RoomActionKind -linecomment

// RoomActionKind says what the room policy did.
type RoomActionKind uint8

// The room policy's actions.
const (
	// ActionSelfPing: a XEP-0410 self-ping was answered (or not): Verdict.
	ActionSelfPing RoomActionKind = iota + 1 // self-ping
	// ActionRejoin: the join presence was sent again (attempt Attempt).
	ActionRejoin // rejoin
	// ActionGaveUp: MaxAttempts rejoins failed in a row; Err is the last
	// failure. The room is no longer tracked.
	ActionGaveUp // gave-up
	// ActionConfigured: the default configuration of a room we created was
	// accepted (Err says if that failed).
	ActionConfigured // configured
)

// RoomAction is something the room policy did.
type RoomAction struct {
	Kind    RoomActionKind
	Room    jid.JID
	Reason  string           // why: "reconnect", "restored", "silence", "bounce", "send", "not-joined", "removed", "retry"
	Verdict mucwatch.Verdict // ActionSelfPing
	Attempt int              // ActionRejoin, from 1
	// Occupant is our own occupant JID that a self-ping was sent to, or that
	// a rejoin asked for: room@service/nick with the nick the service last
	// confirmed with status 110.
	Occupant jid.JID
	Err      error // the error answer or failure, if any
}

// JoinOption configures a join.
type JoinOption func(*joinParams)

type joinParams struct {
	password string
	history  int // stanzas of history asked for the first join
}

// WithPassword sets the room password.
func WithPassword(password string) JoinOption { return func(p *joinParams) { p.password = password } }

// WithHistory asks for up to n messages of discussion history on the first
// join (none by default). Rejoins never ask for history: the application
// already saw it.
func WithHistory(n int) JoinOption { return func(p *joinParams) { p.history = max(n, 0) } }

// WithRoomPolicy sets the room policy (DefaultRoomPolicy).
func WithRoomPolicy(p RoomPolicy) Option { return func(c *config) { c.roomPolicy = p } }

// WithRoomOptions passes options to the rooms model, such as its limits.
func WithRoomOptions(opts ...mucwatch.Option) Option {
	return func(c *config) { c.roomOpts = append(c.roomOpts, opts...) }
}

// OnRoom sets the callback for room events.
func OnRoom(f func(mucwatch.Event)) Option { return func(c *config) { c.onRoom = f } }

// OnRoomAction sets the callback for what the room policy does.
func OnRoomAction(f func(RoomAction)) Option { return func(c *config) { c.onAction = f } }

// Rooms returns the rooms model. It is safe to read from any goroutine.
func (t *Tracker) Rooms() *mucwatch.Model { return t.rooms }

// joinPresence returns the presence that joins (or rejoins) occupant: our
// usual presence with caps, and the MUC payload.
func (t *Tracker) joinPresence(occupant jid.JID, p joinParams) xml.TokenReader {
	var x []xml.TokenReader
	x = append(x, xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Local: "history"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "maxstanzas"}, Value: strconv.Itoa(p.history)}},
	}))
	if p.password != "" {
		x = append(x, textElement("password", p.password))
	}
	return t.presenceReader(occupant, xmlstream.Wrap(xmlstream.MultiReader(x...),
		xml.StartElement{Name: xml.Name{Space: nsMUC, Local: "x"}}))
}

// Join joins a room: occupant is room@service/nick. It sends the join
// presence (with caps, the password if given, and no history unless asked)
// and waits until the service lets us in or refuses. A refusal is a
// *mucwatch.JoinError: errors.Is matches mucwatch.ErrNickInUse,
// ErrPasswordRequired, ErrMembersOnly, ErrBanned and the others. The
// service may give us another nick (the room's Nick says which).
//
// Once joined, the room policy keeps us in the room until Leave. If ctx ends
// before the answer, the room is forgotten and ctx's error returned.
func (t *Tracker) Join(ctx context.Context, occupant jid.JID, opts ...JoinOption) error {
	var p joinParams
	for _, o := range opts {
		o(&p)
	}
	s := t.session()
	if s == nil {
		return ErrNotConnected
	}
	room := occupant.Bare()
	evs := t.rooms.Joining(occupant)
	t.disp.pushRoom(evs)
	for _, e := range evs {
		if e.Kind == mucwatch.EventRejected {
			return e.Err
		}
	}
	w := t.waitRoom(room, mucwatch.EventRoomJoined)
	defer t.stopWaiting(room, w)
	t.policy.want(occupant, p)
	if err := sendCtx(ctx, s, t.joinPresence(occupant, p)); err != nil {
		t.policy.forget(room)
		t.disp.pushRoom(t.rooms.Forget(room))
		return err
	}
	select {
	case err := <-w.ch:
		if err != nil {
			t.policy.forget(room)
		}
		return err
	case <-ctx.Done():
		t.policy.forget(room)
		t.disp.pushRoom(t.rooms.Forget(room))
		return ctx.Err()
	}
}

// Leave leaves a room with an optional status message, and waits for the
// service to confirm. The room policy stops at once. If ctx ends first the
// room is forgotten anyway and ctx's error returned.
func (t *Tracker) Leave(ctx context.Context, room jid.JID, status string) error {
	room = room.Bare()
	t.policy.forget(room)
	r, ok := t.rooms.Room(room)
	if !ok {
		return nil
	}
	w := t.waitRoom(room, mucwatch.EventRoomLeft)
	defer t.stopWaiting(room, w)
	evs := t.rooms.Leaving(room)
	t.disp.pushRoom(evs)
	for _, e := range evs {
		if e.Kind == mucwatch.EventRoomLeft {
			return nil // we were not in it any more
		}
	}
	s := t.session()
	if s == nil {
		t.disp.pushRoom(t.rooms.Forget(room))
		return nil
	}
	occupant, err := room.WithResource(r.Nick)
	if err != nil {
		return err
	}
	var body xml.TokenReader
	if status != "" {
		body = textElement("status", status)
	}
	if err := sendCtx(ctx, s, stanza.Presence{To: occupant, Type: stanza.UnavailablePresence}.Wrap(body)); err != nil {
		t.disp.pushRoom(t.rooms.Forget(room))
		return err
	}
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		t.disp.pushRoom(t.rooms.Forget(room))
		return ctx.Err()
	}
}

// roomWaiter is someone waiting for a room event of one kind.
type roomWaiter struct {
	room string
	kind mucwatch.EventKind
	ch   chan error // buffered: one result
}

func (t *Tracker) waitRoom(room jid.JID, kind mucwatch.EventKind) *roomWaiter {
	w := &roomWaiter{room: room.String(), kind: kind, ch: make(chan error, 1)}
	t.mu.Lock()
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()
	return w
}

func (t *Tracker) stopWaiting(room jid.JID, w *roomWaiter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, x := range t.waiters {
		if x == w {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			return
		}
	}
}

// wake answers the waiters an event concerns: a join is answered by
// EventRoomJoined, or by EventRoomJoinFailed with its error; a leave by
// EventRoomLeft.
func (t *Tracker) wake(e *mucwatch.Event) {
	var kind mucwatch.EventKind
	var err error
	switch e.Kind {
	case mucwatch.EventRoomJoined, mucwatch.EventRoomLeft:
		kind = e.Kind
	case mucwatch.EventRoomJoinFailed:
		kind, err = mucwatch.EventRoomJoined, e.Err
	default:
		return
	}
	room := e.Room.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.waiters {
		if w.room == room && w.kind == kind {
			select {
			case w.ch <- err:
			default:
			}
		}
	}
}

// applyRoomEvents passes the events of a room presence on: to the waiters,
// the policy and the callbacks.
func (t *Tracker) applyRoomEvents(evs []mucwatch.Event) {
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case mucwatch.EventRoomJoined, mucwatch.EventRoomJoinFailed, mucwatch.EventRoomLeft:
			t.wake(e)
		case mucwatch.EventRejected:
			t.log.Info("psakit: rejected", "room", e.Room, "from", e.JID, "err", e.Err)
		}
		t.policy.observe(e)
	}
	t.disp.pushRoom(evs)
}

// heardFrom notes traffic from a room, which postpones its silence
// self-ping. from is the raw from attribute.
func (t *Tracker) heardFrom(from string) {
	if i := strings.IndexByte(from, '/'); i >= 0 {
		from = from[:i]
	}
	t.policy.heard(from)
}

// roomPolicy runs the RoomPolicy on its own goroutine: it never blocks the
// read loop, and sends nothing while the account is disconnected.
type roomPolicy struct {
	t *Tracker
	p RoomPolicy

	// heardAt maps a room's bare JID to the last time we heard from it, as
	// unix nanoseconds in an *atomic.Int64; written by the read goroutine.
	heardAt sync.Map

	mu      sync.Mutex
	rooms   map[string]*policyRoom // the rooms we want to be in
	sess    *xmpp.Session          // nil while disconnected
	sessCtx context.Context        // cancelled when the session ends
	cancel  context.CancelFunc
	pending []policyInput

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
	wg   sync.WaitGroup // actions in flight
}

// policyRoom is what the policy knows of a room we want to be in.
type policyRoom struct {
	room     jid.JID
	occupant jid.JID // as asked for
	params   joinParams
	due      time.Time // when the next action runs; zero: none scheduled
	next     string    // that action: "ping" or "rejoin"
	reason   string
	busy     bool // an action is in flight
	rejoined bool // the join in flight is ours, not the application's
	attempts int  // failed rejoins, or undecided pings, in a row
}

// policyInput is something for the policy goroutine to react to.
type policyInput struct {
	event  *mucwatch.Event
	result *actionResult
	bounce string // a room that bounced a message of ours
}

type actionResult struct {
	room    string
	verdict mucwatch.Verdict // of a self-ping
	err     error
}

func newRoomPolicy(t *Tracker, p RoomPolicy) *roomPolicy {
	rp := &roomPolicy{
		t:     t,
		p:     p,
		rooms: make(map[string]*policyRoom),
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go rp.run()
	return rp
}

func (rp *roomPolicy) input(in policyInput) {
	rp.mu.Lock()
	rp.pending = append(rp.pending, in)
	rp.mu.Unlock()
	select {
	case rp.wake <- struct{}{}:
	default:
	}
}

// want records a room the application joins.
func (rp *roomPolicy) want(occupant jid.JID, p joinParams) {
	room := occupant.Bare()
	rp.mu.Lock()
	rp.rooms[room.String()] = &policyRoom{room: room, occupant: occupant, params: p}
	rp.mu.Unlock()
	var heard atomic.Int64
	heard.Store(time.Now().UnixNano())
	rp.heardAt.Store(room.String(), &heard)
}

// forget stops caring about a room.
func (rp *roomPolicy) forget(room jid.JID) {
	rp.mu.Lock()
	delete(rp.rooms, room.String())
	rp.mu.Unlock()
	rp.heardAt.Delete(room.String())
}

func (rp *roomPolicy) heard(room string) {
	if v, ok := rp.heardAt.Load(room); ok {
		v.(*atomic.Int64).Store(time.Now().UnixNano())
	}
}

// bounced tells the policy that room (bare) answered a message with an
// error.
func (rp *roomPolicy) bounced(room jid.JID) {
	rp.input(policyInput{bounce: room.String()})
}

// observe hands the policy the room-level events it reacts to.
func (rp *roomPolicy) observe(e *mucwatch.Event) {
	switch e.Kind {
	case mucwatch.EventRoomJoined, mucwatch.EventRoomCreated, mucwatch.EventRoomRestored,
		mucwatch.EventRoomDropped, mucwatch.EventRoomKicked, mucwatch.EventRoomDestroyed,
		mucwatch.EventRoomJoinFailed, mucwatch.EventRoomLeft:
		ev := *e
		rp.input(policyInput{event: &ev})
	}
}

// sessionStarted lets the policy act on s, starting with a rejoin of every
// room (they were all left when the previous session ended).
func (rp *roomPolicy) sessionStarted(s *xmpp.Session) {
	ctx, cancel := context.WithCancel(context.Background())
	rp.mu.Lock()
	if rp.cancel != nil {
		rp.cancel()
	}
	rp.sess, rp.sessCtx, rp.cancel = s, ctx, cancel
	// Now, not when the goroutine gets to it: a room the application joins
	// on the new session must not be joined twice.
	for _, r := range rp.rooms {
		r.attempts = 0
		rp.schedule(r, "rejoin", "reconnect", 0)
	}
	rp.mu.Unlock()
	select {
	case rp.wake <- struct{}{}:
	default:
	}
}

// sessionEnded stops every action: nothing is sent while disconnected.
func (rp *roomPolicy) sessionEnded() {
	rp.mu.Lock()
	if rp.cancel != nil {
		rp.cancel()
	}
	rp.sess, rp.sessCtx, rp.cancel = nil, nil, nil
	for _, r := range rp.rooms {
		r.due, r.busy = time.Time{}, false
	}
	rp.mu.Unlock()
}

func (rp *roomPolicy) close() {
	close(rp.quit)
	<-rp.done
}

func (rp *roomPolicy) run() {
	defer close(rp.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		rp.mu.Lock()
		inputs := rp.pending
		rp.pending = nil
		rp.mu.Unlock()
		for _, in := range inputs {
			rp.react(in)
		}
		rp.runDue(time.Now())

		timer.Reset(rp.untilNext(time.Now()))
		select {
		case <-rp.quit:
			rp.mu.Lock()
			if rp.cancel != nil {
				rp.cancel()
			}
			rp.mu.Unlock()
			rp.wg.Wait()
			return
		case <-rp.wake:
		case <-timer.C:
		}
	}
}

// jitter returns d moved by up to a fifth either way.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/5 + rand.N(2*d/5+1)
}

// schedule plans action for r after d (no sooner than what is planned).
func (rp *roomPolicy) schedule(r *policyRoom, action, reason string, d time.Duration) {
	if action == "ping" && !rp.p.SelfPing || action == "rejoin" && !rp.p.Rejoin {
		return
	}
	r.next, r.reason, r.due = action, reason, time.Now().Add(d)
}

// backoff returns the wait before retry number n (from 1).
func (rp *roomPolicy) backoff(n int) time.Duration {
	d := max(rp.p.RejoinDelay, time.Second)
	for i := 1; i < n && d < rp.p.Silence; i++ {
		d *= 2
	}
	if rp.p.Silence > 0 {
		d = min(d, rp.p.Silence)
	}
	return jitter(d)
}

// react updates the plan after an input. It runs on the policy goroutine.
func (rp *roomPolicy) react(in policyInput) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if in.result != nil {
		rp.reactResult(in.result)
		return
	}
	if in.bounce != "" {
		// The room refused a message of ours: perhaps it dropped us without
		// a word. A self-ping tells; a planned rejoin goes first.
		if r := rp.rooms[in.bounce]; r != nil && !r.busy && (r.due.IsZero() || r.next == "ping") {
			rp.schedule(r, "ping", "bounce", 0)
		}
		return
	}
	e := in.event
	r := rp.rooms[e.Room.String()]
	if r == nil {
		return
	}
	switch e.Kind {
	case mucwatch.EventRoomJoined:
		r.attempts, r.rejoined = 0, false
		rp.schedule(r, "ping", "silence", jitter(rp.p.Silence))
	case mucwatch.EventRoomCreated:
		if rp.p.CreateInstant {
			rp.start(r, "configure")
		}
	case mucwatch.EventRoomRestored:
		// A mark on the room or on our own occupant cleared (a mark on
		// another occupant never flips the room). If its annotator only says
		// its link is back, the service may have dropped us meanwhile: ask.
		if e.Resent {
			rp.schedule(r, "ping", "restored", 0)
		}
	case mucwatch.EventRoomDropped:
		rp.schedule(r, "rejoin", "removed", jitter(rp.p.RejoinDelay))
	case mucwatch.EventRoomKicked, mucwatch.EventRoomDestroyed, mucwatch.EventRoomLeft:
		rp.forgetLocked(r)
	case mucwatch.EventRoomJoinFailed:
		if !r.rejoined {
			return // the application's own Join: it gets the error
		}
		r.attempts++
		if r.attempts >= rp.p.MaxAttempts {
			rp.t.disp.pushAction(RoomAction{Kind: ActionGaveUp, Room: r.room, Attempt: r.attempts, Err: e.Err})
			rp.forgetLocked(r)
			return
		}
		rp.schedule(r, "rejoin", "retry", rp.backoff(r.attempts))
	}
}

func (rp *roomPolicy) forgetLocked(r *policyRoom) {
	delete(rp.rooms, r.room.String())
	rp.heardAt.Delete(r.room.String())
}

func (rp *roomPolicy) reactResult(res *actionResult) {
	r := rp.rooms[res.room]
	if r == nil {
		return
	}
	r.busy = false
	switch res.verdict {
	case mucwatch.VerdictJoined:
		r.attempts = 0
		rp.schedule(r, "ping", "silence", jitter(rp.p.Silence))
	case mucwatch.VerdictNotJoined:
		rp.schedule(r, "rejoin", "not-joined", 0)
	case mucwatch.VerdictUndecided:
		r.attempts++
		rp.schedule(r, "ping", "retry", rp.backoff(r.attempts))
	}
}

// untilNext returns how long until the next planned action.
func (rp *roomPolicy) untilNext(now time.Time) time.Duration {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	next := time.Hour
	if rp.sess == nil {
		return next // nothing runs while disconnected
	}
	for _, r := range rp.rooms {
		if !r.due.IsZero() && !r.busy {
			next = min(next, max(r.due.Sub(now), 0))
		}
	}
	return next
}

// runDue starts the actions whose time has come.
func (rp *roomPolicy) runDue(now time.Time) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.sess == nil {
		return
	}
	for _, r := range rp.rooms {
		if r.due.IsZero() || r.busy || r.due.After(now) {
			continue
		}
		if r.next == "ping" && r.reason == "silence" {
			// Traffic since the plan was made postpones the ping.
			if v, ok := rp.heardAt.Load(r.room.String()); ok {
				heard := time.Unix(0, v.(*atomic.Int64).Load())
				if quiet := now.Sub(heard); quiet < rp.p.Silence-rp.p.Silence/5 {
					r.due = heard.Add(jitter(rp.p.Silence))
					continue
				}
			}
		}
		r.due = time.Time{}
		rp.start(r, r.next)
	}
}

// start runs one action on its own goroutine; rp.mu is held.
func (rp *roomPolicy) start(r *policyRoom, action string) {
	s, ctx := rp.sess, rp.sessCtx
	if s == nil {
		return
	}
	reason := r.reason
	switch action {
	case "ping":
		r.busy = true
		occupant := rp.selfJID(r)
		rp.wg.Go(func() { rp.selfPing(ctx, s, r.room, occupant, reason) })
	case "rejoin":
		r.rejoined = true
		n := r.attempts + 1
		room, occupant, p := r.room, rp.selfJID(r), r.params
		p.history = 0 // never history twice
		rp.wg.Go(func() { rp.rejoin(ctx, s, room, occupant, p, n, reason) })
	case "configure":
		room := r.room
		rp.wg.Go(func() { rp.configure(ctx, s, room) })
	}
}

// selfJID is our occupant JID: the nick of our own occupant, which only a
// presence with status 110 sets, else the one we asked for.
func (rp *roomPolicy) selfJID(r *policyRoom) jid.JID {
	if room, ok := rp.t.rooms.Room(r.room); ok && room.Nick != "" {
		if j, err := r.room.WithResource(room.Nick); err == nil {
			return j
		}
	}
	return r.occupant
}

// selfPing sends a XEP-0410 self-ping and reports its verdict, which it
// returns (VerdictNone when ctx was cancelled: no verdict).
func (rp *roomPolicy) selfPing(ctx context.Context, s *xmpp.Session, room, occupant jid.JID, reason string) mucwatch.Verdict {
	ctx, cancel := context.WithTimeout(ctx, rp.p.PingTimeout)
	err := s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: occupant}}.TokenReader(), nil)
	cancel()
	if errors.Is(err, context.Canceled) {
		return mucwatch.VerdictNone // the session ended, or the client closes: no verdict
	}
	v := mucwatch.SelfPingVerdict(room, err)
	rp.t.remote.selfPinged(room, v)
	rp.t.disp.pushAction(RoomAction{Kind: ActionSelfPing, Room: room, Reason: reason, Verdict: v, Occupant: occupant, Err: err})
	rp.t.disp.pushRoom(rp.t.rooms.RecordSelfPing(room, v))
	rp.input(policyInput{result: &actionResult{room: room.String(), verdict: v, err: err}})
	return v
}

// checkRoom is the rule for sending to a room the model holds stale: a
// self-ping first (reason "send"). It returns ErrNotInRoom when the room
// says we are not in it (the policy then rejoins), and nil when the room is
// not stale, we are in it, or the answer does not tell.
func (t *Tracker) checkRoom(ctx context.Context, room jid.JID) error {
	r, ok := t.rooms.Room(room)
	if !ok || !r.Stale || !t.cfg.roomPolicy.SelfPing {
		return nil
	}
	s := t.session()
	if s == nil {
		return ErrNotConnected
	}
	occupant, err := r.JID.WithResource(r.Nick)
	if err != nil {
		return nil
	}
	switch t.policy.selfPing(ctx, s, r.JID, occupant, "send") {
	case mucwatch.VerdictNotJoined:
		return fmt.Errorf("%w: %s", ErrNotInRoom, r.JID)
	case mucwatch.VerdictNone:
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrNotConnected
	}
	return nil
}

// rejoin sends the join presence again.
func (rp *roomPolicy) rejoin(ctx context.Context, s *xmpp.Session, room, occupant jid.JID, p joinParams, attempt int, reason string) {
	evs := rp.t.rooms.Rejoining(room)
	if len(evs) > 0 && evs[0].Kind == mucwatch.EventRejected {
		// The model forgot the room (a failed join removes it): join anew.
		evs = rp.t.rooms.Joining(occupant)
	}
	rp.t.disp.pushRoom(evs)
	rp.t.disp.pushAction(RoomAction{Kind: ActionRejoin, Room: room, Reason: reason, Attempt: attempt, Occupant: occupant})
	if err := sendCtx(ctx, s, rp.t.joinPresence(occupant, p)); err != nil && !errors.Is(err, context.Canceled) {
		rp.t.log.Warn("psakit: rejoin not sent", "room", room, "err", err)
	}
}

// configure accepts the default configuration of a room we created.
func (rp *roomPolicy) configure(ctx context.Context, s *xmpp.Session, room jid.JID) {
	ctx, cancel := context.WithTimeout(ctx, rp.p.PingTimeout)
	defer cancel()
	form := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Space: nsXData, Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "submit"}},
	})
	query := xmlstream.Wrap(form, xml.StartElement{Name: xml.Name{Space: nsMUCOwner, Local: "query"}})
	err := s.UnmarshalIQ(ctx, stanza.IQ{Type: stanza.SetIQ, To: room}.Wrap(query), nil)
	if errors.Is(err, context.Canceled) {
		return
	}
	if err != nil {
		err = fmt.Errorf("client: accepting the default configuration of %s: %w", room, err)
	}
	rp.t.disp.pushAction(RoomAction{Kind: ActionConfigured, Room: room, Err: err})
}
