package client

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
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

// This file carries out the room policy: the goroutine that feeds
// roomPlanner (roomplan.go) with the model's room events, self-ping
// verdicts, bounces and the clock, and the I/O of its steps (self-ping,
// rejoin, configuration). Join and Leave are in join.go.

const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCOwner = "http://jabber.org/protocol/muc#owner"
	nsXData    = "jabber:x:data"
)

// Rooms returns a read-only view of the rooms model. It is safe to read
// from any goroutine; only the Tracker changes the model.
func (t *Tracker) Rooms() mucwatch.View { return t.rooms.View() }

// applyRoomEvents passes the events of a room presence on: to the waiters,
// the policy and the callbacks.
func (t *Tracker) applyRoomEvents(evs []mucwatch.Event) {
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case mucwatch.EventRoomJoined, mucwatch.EventRoomJoinFailed, mucwatch.EventRoomLeft:
			t.wake(e)
		case mucwatch.EventRejected:
			t.log.Info("rejected", "room", e.Room, "from", e.JID, "err", e.Err)
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

// roomPolicy carries out the room policy that roomPlanner decides, on
// its own goroutine: it never blocks the read loop, and sends nothing while
// the account is disconnected. Each self-ping, rejoin and configuration
// runs on a goroutine of its own, bounded by the session's context.
type roomPolicy struct {
	t   *Tracker
	p   RoomPolicy
	now func() time.Time

	// heardAt maps a room's bare JID to the last time we heard from it, as
	// unix nanoseconds in an *atomic.Int64; written by the read goroutine.
	heardAt sync.Map

	mu      sync.Mutex
	plan    *roomPlanner
	sess    *xmpp.Session   // nil while disconnected
	sessCtx context.Context // cancelled when the session ends
	cancel  context.CancelFunc
	pending []policyInput

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
	wg   sync.WaitGroup // actions in flight
}

// policyInput is something for the policy goroutine to react to: a room
// event, a self-ping's verdict, or a bounce.
type policyInput struct {
	event   *mucwatch.Event
	pinged  string // a room whose self-ping gave verdict
	verdict mucwatch.Verdict
	bounce  string // a room that bounced a message of ours
}

func newRoomPolicy(t *Tracker, p RoomPolicy) *roomPolicy {
	rp := &roomPolicy{
		t:    t,
		p:    p,
		now:  time.Now,
		plan: newRoomPlanner(p),
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go rp.run()
	return rp
}

func (rp *roomPolicy) input(in policyInput) {
	rp.mu.Lock()
	rp.pending = append(rp.pending, in)
	rp.mu.Unlock()
	rp.poke()
}

func (rp *roomPolicy) poke() {
	select {
	case rp.wake <- struct{}{}:
	default:
	}
}

// want records a room the application joins.
func (rp *roomPolicy) want(occupant jid.JID, p joinParams) {
	room := occupant.Bare()
	rp.mu.Lock()
	rp.plan.want(occupant, p)
	rp.mu.Unlock()
	var heard atomic.Int64
	heard.Store(rp.now().UnixNano())
	rp.heardAt.Store(room.String(), &heard)
}

// forget stops caring about a room.
func (rp *roomPolicy) forget(room jid.JID) {
	rp.mu.Lock()
	rp.plan.forget(room.String())
	rp.mu.Unlock()
	rp.heardAt.Delete(room.String())
}

func (rp *roomPolicy) heard(room string) {
	if v, ok := rp.heardAt.Load(room); ok {
		v.(*atomic.Int64).Store(rp.now().UnixNano())
	}
}

// heardWhen returns when we last heard from room.
func (rp *roomPolicy) heardWhen(room string) (time.Time, bool) {
	v, ok := rp.heardAt.Load(room)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, v.(*atomic.Int64).Load()), true
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
	rp.useSession(s, rp.plan.streamUp)
}

// useSession makes s the policy's session, ending the previous one's
// actions, and lets decide plan on it (at once, under the lock, not when
// the goroutine gets to it: a room the application joins on the new
// session must not be joined twice); then the goroutine carries it out.
func (rp *roomPolicy) useSession(s *xmpp.Session, decide func(now time.Time)) {
	ctx, cancel := context.WithCancel(context.Background())
	rp.mu.Lock()
	if rp.cancel != nil {
		rp.cancel()
	}
	rp.sess, rp.sessCtx, rp.cancel = s, ctx, cancel
	decide(rp.now())
	rp.mu.Unlock()
	rp.poke()
}

// sessionEnded stops every action: nothing is sent while disconnected.
func (rp *roomPolicy) sessionEnded() {
	rp.mu.Lock()
	if rp.cancel != nil {
		rp.cancel()
	}
	rp.sess, rp.sessCtx, rp.cancel = nil, nil, nil
	rp.plan.streamDown()
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
		for _, in := range inputs {
			rp.react(in)
		}
		rp.startAll(rp.plan.due(rp.now(), rp.heardWhen))
		wait := rp.plan.until(rp.now())
		rp.mu.Unlock()

		timer.Reset(wait)
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

// react hands an input to the planner; rp.mu is held.
func (rp *roomPolicy) react(in policyInput) {
	now := rp.now()
	switch {
	case in.pinged != "":
		rp.plan.pinged(in.pinged, in.verdict, now)
	case in.bounce != "":
		rp.plan.bounced(in.bounce, now)
	case in.event != nil:
		room := in.event.Room.String()
		rp.startAll(rp.plan.event(in.event, now))
		if !rp.plan.has(room) {
			rp.heardAt.Delete(room)
		}
	}
}

// startAll carries out the planner's tasks, each I/O on its own goroutine;
// rp.mu is held.
func (rp *roomPolicy) startAll(tasks []roomTask) {
	for _, task := range tasks {
		rp.start(task)
	}
}

func (rp *roomPolicy) start(task roomTask) {
	if task.step == stepGiveUp {
		rp.t.disp.pushAction(RoomAction{Kind: ActionGaveUp, Room: task.room, Attempt: task.attempt, Err: task.err})
		return
	}
	s, ctx := rp.sess, rp.sessCtx
	if s == nil {
		return
	}
	switch task.step {
	case stepPing:
		occupant := rp.selfJID(task.room, task.occupant)
		rp.wg.Go(func() { rp.selfPing(ctx, s, task.room, occupant, task.reason) })
	case stepRejoin:
		occupant := rp.selfJID(task.room, task.occupant)
		rp.wg.Go(func() { rp.rejoin(ctx, s, task.room, occupant, task.params, task.attempt, task.reason) })
	case stepConfigure:
		rp.wg.Go(func() { rp.configure(ctx, s, task.room) })
	}
}

// selfJID is our occupant JID: the nick of our own occupant, which only a
// presence with status 110 sets, else the one we asked for.
func (rp *roomPolicy) selfJID(room, asked jid.JID) jid.JID {
	if r, ok := rp.t.rooms.Room(room); ok && r.Nick != "" {
		if j, err := room.WithResource(r.Nick); err == nil {
			return j
		}
	}
	return asked
}

// selfPing sends a XEP-0410 self-ping and reports its verdict, which it
// returns (VerdictNone when ctx was cancelled: no verdict).
func (rp *roomPolicy) selfPing(ctx context.Context, s *xmpp.Session, room, occupant jid.JID, reason RoomReason) mucwatch.Verdict {
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
	rp.input(policyInput{pinged: room.String(), verdict: v})
	return v
}

// checkRoom is the rule for sending to a room the model holds stale: a
// self-ping first (ReasonSend). It returns ErrNotInRoom when the room
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
	switch t.policy.selfPing(ctx, s, r.JID, occupant, ReasonSend) {
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
func (rp *roomPolicy) rejoin(ctx context.Context, s *xmpp.Session, room, occupant jid.JID, p joinParams, attempt int, reason RoomReason) {
	evs := rp.t.rooms.Rejoining(room)
	if len(evs) > 0 && evs[0].Kind == mucwatch.EventRejected {
		// The model forgot the room (a failed join removes it): join anew.
		evs = rp.t.rooms.Joining(occupant)
	}
	rp.t.disp.pushRoom(evs)
	rp.t.disp.pushAction(RoomAction{Kind: ActionRejoin, Room: room, Reason: reason, Attempt: attempt, Occupant: occupant})
	if err := sendCtx(ctx, s, rp.t.joinPresence(occupant, p)); err != nil && !errors.Is(err, context.Canceled) {
		rp.t.log.Warn("rejoin not sent", "room", room, "err", err)
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
