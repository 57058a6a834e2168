package client

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/caps"
	"github.com/psakit/psakit/internal/fastjid"
	"github.com/psakit/psakit/internal/livemodel"
	"github.com/psakit/psakit/internal/xmltok"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

const nsRoster = "jabber:iq:roster"

// Tracker keeps psakit's models up to date from a mellium session. Client
// is built on it; use a Tracker directly when your application already owns
// its session:
//
//	t, err := client.NewTracker(account, client.OnRoster(render))
//	...
//	h := t.Handler(mux.New(stanza.NSClient, append(t.MuxOptions(), yourOptions...)...))
//	go func() { err := session.Serve(h); t.Disconnected(); ... }()
//	err = t.Start(ctx, session) // fetches the roster, sends presence with caps
//	...
//	t.Close()
//
// The Handler wrapper is what decodes presence: mellium's mux calls
// presence handlers once per child element of a presence, not once per
// stanza, so presence tracking cannot be a mux option; it sits in front of the mux instead and passes
// every other stanza on.
type Tracker struct {
	cfg    config
	adv    *caps.Advertiser
	roster *roster.Model
	rooms  *mucwatch.Model
	disp   *dispatcher
	log    *slog.Logger
	verify *verifier
	policy *roomPolicy
	remote *remoteChecker
	gate   atomic.Bool // set: the callbacks receive nothing more (Client.Close timed out)
	// send sends a message for Message.Reply and SendMessage: on the
	// Tracker's session, or on the Client's.
	send func(context.Context, xml.TokenReader) error

	// Used only on the session's read goroutine (one session at a time).
	dec           presence.Decoder
	rosterScratch []roster.Event
	roomScratch   []mucwatch.Event

	mu       sync.Mutex
	sess     *xmpp.Session // the session Start was last called with, until Disconnected
	waiters  []*roomWaiter
	show     presence.Show
	status   string
	priority int8
}

// NewTracker returns a Tracker for account. It starts the goroutine that
// delivers events to the callbacks (and the one of the restore policy):
// call Close to stop them.
func NewTracker(account jid.JID, opts ...TrackerOption) (*Tracker, error) {
	cfg := newConfig(opts)
	return newTracker(account, cfg)
}

func newTracker(account jid.JID, cfg config) (*Tracker, error) {
	adv, err := caps.NewAdvertiser(cfg.capsNode, cfg.capsOpts...)
	if err != nil {
		return nil, err
	}
	t := &Tracker{
		cfg:    cfg,
		adv:    adv,
		roster: roster.New(account, cfg.rosterOpts...),
		rooms:  mucwatch.New(account, cfg.roomOpts...),
		log:    cfg.log,
	}
	t.disp = newDispatcher(gated(&t.gate, callbacks{
		roster:   cfg.onRoster,
		room:     cfg.onRoom,
		action:   cfg.onAction,
		conn:     cfg.onConn,
		verify:   cfg.onVerify,
		presence: cfg.onPresence,
		message:  cfg.onMessage,
		overflow: cfg.onOverflow,
		unacked:  cfg.onUnacked,
	}), cfg.queueSize, cfg.queueBytes)
	t.verify = newVerifier(t, cfg.verify, cfg.verifyRate)
	t.send = t.sendSession
	t.policy = newRoomPolicy(t, cfg.roomPolicy)
	t.remote = newRemoteChecker(t, cfg.remoteCheck)
	t.disp.seeRoster, t.disp.seeRoom = t.remote.rosterEvents, t.remote.roomEvents
	t.show, t.status, t.priority = cfg.show, cfg.status, cfg.priority
	return t, nil
}

// setPresence changes what presenceReader sends.
func (t *Tracker) setPresence(show presence.Show, status string, priority int8) {
	t.mu.Lock()
	t.show, t.status, t.priority = show, status, priority
	t.mu.Unlock()
}

// Roster returns a read-only view of the roster model. It is safe to read
// from any goroutine; only the Tracker changes the model.
func (t *Tracker) Roster() roster.View { return t.roster.View() }

// Advertiser returns the entity capabilities the account advertises.
func (t *Tracker) Advertiser() *caps.Advertiser { return t.adv }

// Close stops the Tracker's goroutines after the callbacks have received the
// events already queued, as Client.Close does: if a callback is still
// running when CloseTimeout has passed, Close returns ErrCloseTimeout, the
// callbacks receive no further event, and the Tracker's last goroutine ends
// as soon as that callback returns. Calling Close from a callback therefore
// returns ErrCloseTimeout after CloseTimeout: call it from another
// goroutine. Otherwise it returns nil. Call it once.
func (t *Tracker) Close() error {
	done := make(chan struct{})
	go func() {
		t.shutdown()
		close(done)
	}()
	timer := time.NewTimer(CloseTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
		t.gate.Store(true)
		return ErrCloseTimeout
	}
}

// shutdown stops the Tracker's goroutines, waiting for the callbacks to
// return: Client.Close bounds the wait itself.
func (t *Tracker) shutdown() {
	t.remote.close()
	t.policy.close()
	t.verify.close()
	t.disp.close()
}

// MuxOptions returns the mux options a session needs besides the Handler:
// the disco#info responder for the advertised caps, XEP-0199 ping, and
// roster pushes.
func (t *Tracker) MuxOptions() []mux.Option {
	return []mux.Option{t.adv.HandleDiscoInfo(), ping.Handle(), t.HandleRosterPushes()}
}

// Handler wraps next: presence stanzas are decoded once and applied to the
// models (and passed on to next only with WithPresencePassthrough); messages
// are decoded for OnMessage, when set, and passed on; every other stanza
// goes to next. It never returns an error for a bad stanza, which would end
// the session: bad input, such as a message whose from is no JID, is
// reported and dropped.
func (t *Tracker) Handler(next xmpp.Handler) xmpp.Handler {
	return xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "presence" || (start.Name.Space != stanza.NSClient && start.Name.Space != "") {
			// An error answering a stanza we sent may be a bounce.
			r, err := t.remote.answer(r, start)
			if err != nil {
				return err
			}
			if start.Name.Local == "message" {
				if from, ok := xmltok.Attr(*start, "from"); ok {
					t.heardFrom(from)
				}
				return t.handleMessage(r, start, next)
			}
			if next == nil {
				return nil
			}
			return next.HandleXMPP(r, start)
		}
		if t.cfg.passthrough && next != nil {
			return t.passPresence(r, start, next)
		}
		p, err := t.dec.DecodeElement(r, *start)
		if err != nil {
			return t.badPresence(err)
		}
		t.applyPresence(&p)
		return nil
	})
}

// handleMessage decodes a message for OnMessage (when set), from a recorded
// copy of its tokens when next is to see it as well, queues it, and passes
// it on to next. A message whose from or to is no JID is reported and
// dropped, and next does not see it: mellium's mux would end the session
// over it.
func (t *Tracker) handleMessage(r xmlstream.TokenReadEncoder, start *xml.StartElement, next xmpp.Handler) error {
	sm, err := stanza.NewMessage(*start)
	if err != nil {
		t.log.Warn("dropped an invalid message", "err", err)
		return nil
	}
	if sm.Type == stanza.ErrorMessage && sm.From.Resourcepart() == "" && t.rooms.Tracks(sm.From) {
		// A room bounced a message of ours (XEP-0310's business rule: check
		// that we are still in it).
		t.policy.bounced(sm.From)
	}
	if t.cfg.onMessage == nil {
		if next == nil {
			return nil
		}
		return next.HandleXMPP(r, start)
	}
	if next == nil {
		m, err := decodeMessage(r, *start, t.cfg.maxStanzaSize)
		if err != nil {
			return err
		}
		m.t = t
		t.disp.pushMessage(&m)
		return nil
	}
	toks, err := xmlstream.ReadAll(r)
	if err != nil {
		return err
	}
	replay := xmltok.NewReplayer(toks)
	m, err := decodeMessage(replay, *start, t.cfg.maxStanzaSize)
	if err != nil {
		return err
	}
	m.t = t
	t.disp.pushMessage(&m)
	replay.Reset(toks)
	return next.HandleXMPP(struct {
		xml.TokenReader
		xmlstream.Encoder
	}{replay, r}, start)
}

// passPresence decodes a presence from a recorded copy of its tokens, then
// replays them to next.
func (t *Tracker) passPresence(r xmlstream.TokenReadEncoder, start *xml.StartElement, next xmpp.Handler) error {
	toks, err := xmlstream.ReadAll(r)
	if err != nil {
		return err
	}
	p, derr := t.dec.DecodeElement(xmltok.NewReplayer(toks), *start)
	if derr != nil {
		if err := t.badPresence(derr); err != nil {
			return err
		}
	} else {
		t.applyPresence(&p)
	}
	return next.HandleXMPP(struct {
		xml.TokenReader
		xmlstream.Encoder
	}{xmltok.NewReplayer(toks), r}, start)
}

// badPresence reports a presence that could not be decoded. Only a failure
// of the stream itself is returned (and ends the session).
func (t *Tracker) badPresence(err error) error {
	if errors.Is(err, presence.ErrNotPresence) || errors.Is(err, presence.ErrInvalidJID) || errors.Is(err, presence.ErrInvalidType) {
		t.log.Warn("dropped an invalid presence", "err", err)
		return nil
	}
	return err
}

// applyPresence feeds a decoded presence to the models and queues the
// events. It runs on the session's read goroutine and must stay cheap: the
// models are O(1), the events go to reused scratch slices that the
// dispatcher copies, and p does not escape (pushPresence copies it).
func (t *Tracker) applyPresence(p *presence.Presence) {
	for _, prob := range p.Problems {
		t.log.Debug("problem in presence", "from", p.From.String(), "err", prob)
	}
	if p.Error != nil {
		t.remote.bounce(p.From, *p.Error)
	}
	roomEvs, ok := t.rooms.AppendPresence(t.roomScratch[:0], p)
	t.roomScratch = roomEvs
	if ok {
		bare, _ := fastjid.Split(p.FromString())
		t.policy.heard(bare)
		t.applyRoomEvents(roomEvs)
		return
	}
	switch p.Type {
	case stanza.AvailablePresence, stanza.UnavailablePresence:
	default:
		t.disp.pushPresence(p)
	}
	evs := t.roster.AppendPresence(t.rosterScratch[:0], p)
	t.rosterScratch = evs
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case roster.EventRejected:
			t.log.Info("rejected", "from", e.JID.String(), "err", e.Err)
		case roster.EventRestored:
			if e.Resent && e.Fresh() {
				t.verify.enqueue(e.JID)
			}
		}
	}
	t.disp.pushRoster(evs)
}

// HandleRosterPushes returns the mux option that applies roster pushes
// (RFC 6121 §2.1.6) to the roster model. Pushes that do not come from the
// account's server are answered with service-unavailable and reported as
// EventRejected, never applied.
func (t *Tracker) HandleRosterPushes() mux.Option {
	return mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsRoster, Local: "query"}, t.handlePush)
}

func (t *Tracker) handlePush(iq stanza.IQ, r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	ver, _ := xmltok.Attr(*start, "ver")
	items, err := roster.ReadItems(r)
	if err != nil && !errors.Is(err, roster.ErrBadItem) {
		return err
	}
	if err != nil || len(items) != 1 {
		// RFC 6121 §2.1.6: a push carries exactly one item.
		t.log.Warn("malformed roster push", "from", iq.From, "items", len(items), "err", err)
		return replyError(r, iq, stanza.BadRequest)
	}
	evs, perr := t.roster.ApplyPush(iq.From, ver, items[0])
	t.disp.pushRoster(evs)
	if perr != nil {
		t.log.Warn("rejected roster push", "from", iq.From, "err", perr)
		return replyError(r, iq, stanza.ServiceUnavailable)
	}
	_, err = xmlstream.Copy(r, iq.Result(nil))
	return err
}

func replyError(w xmlstream.TokenWriter, iq stanza.IQ, cond stanza.Condition) error {
	_, err := xmlstream.Copy(w, iq.Error(stanza.Error{Type: stanza.Cancel, Condition: cond}))
	return err
}

// fetchRoster asks for the roster with the version the model holds
// (RFC 6121 §2.6) and applies the answer: a full roster replaces the items,
// an empty result means nothing changed.
func (t *Tracker) fetchRoster(ctx context.Context, s *xmpp.Session) error {
	ver := t.roster.Version()
	query := xml.StartElement{Name: xml.Name{Space: nsRoster, Local: "query"}}
	if _, ok := s.Feature("urn:xmpp:features:rosterver"); ok || ver != "" {
		query.Attr = []xml.Attr{{Name: xml.Name{Local: "ver"}, Value: ver}}
	}
	resp, err := s.SendIQ(ctx, stanza.IQ{Type: stanza.GetIQ}.Wrap(xmlstream.Wrap(nil, query)))
	if err != nil {
		return fmt.Errorf("client: fetching the roster: %w", err)
	}
	defer resp.Close() // Serve waits for it
	tok, err := resp.Token()
	if err != nil {
		return fmt.Errorf("client: fetching the roster: %w", err)
	}
	iqStart, ok := tok.(xml.StartElement)
	if !ok {
		return fmt.Errorf("client: fetching the roster: unexpected %T", tok)
	}
	if typ, _ := xmltok.Attr(iqStart, "type"); typ == string(stanza.ErrorIQ) {
		se, err := stanza.UnmarshalError(resp)
		if err != nil {
			return fmt.Errorf("client: fetching the roster: %w", err)
		}
		return fmt.Errorf("client: fetching the roster: %w", se)
	}
	for {
		tok, err := resp.Token()
		if err == io.EOF && tok == nil {
			return nil // an empty result: unchanged since ver
		}
		if err != nil && tok == nil {
			return fmt.Errorf("client: fetching the roster: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name != query.Name {
			if err := xmltok.Skip(resp); err != nil {
				return err
			}
			continue
		}
		newVer, _ := xmltok.Attr(start, "ver")
		items, err := roster.ReadItems(resp)
		if err != nil && !errors.Is(err, roster.ErrBadItem) {
			return fmt.Errorf("client: fetching the roster: %w", err)
		}
		if err != nil {
			t.log.Warn("skipped malformed roster items", "err", err)
		}
		t.disp.pushRoster(t.roster.SetItems(newVer, items))
		return nil
	}
}

// presenceReader returns our available presence: show, status, priority and
// the caps that ask the server for annotations.
func (t *Tracker) presenceReader(to jid.JID, extra ...xml.TokenReader) xml.TokenReader {
	t.mu.Lock()
	show, status, priority := t.show, t.status, t.priority
	t.mu.Unlock()
	var children []xml.TokenReader
	if show != presence.ShowNone {
		children = append(children, textElement("show", string(show)))
	}
	if status != "" {
		children = append(children, textElement("status", status))
	}
	if priority != 0 {
		children = append(children, textElement("priority", fmt.Sprint(priority)))
	}
	children = append(children, t.adv.TokenReader())
	children = append(children, extra...)
	return stanza.Presence{To: to}.Wrap(xmlstream.MultiReader(children...))
}

func textElement(name, text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Local: name}})
}

// Start brings a new session in step: it records the bound JID, fetches the
// roster (only the changes, when the server versions rosters) and sends the
// account's available presence with caps. Call it after Serve was started
// on s with the Tracker's Handler, from another goroutine: it waits for
// answers that Serve delivers.
//
// Start returns a *BindError (matching ErrBindMismatch) and does nothing
// else when s is bound to a JID that is not a resource of the Tracker's
// account: the application should close such a session.
func (t *Tracker) Start(ctx context.Context, s *xmpp.Session) error {
	return t.start(ctx, s, nil)
}

// start is Start, calling ready (when not nil) once the roster is fetched
// and before our presence is sent: the contacts' presence, which answers
// it, then comes after whatever ready delivers.
func (t *Tracker) start(ctx context.Context, s *xmpp.Session, ready func()) error {
	// The account's bare JID never changes (only bound JIDs of the same bare
	// JID are recorded), and its domain is the server the trust rule
	// believes: a session bound elsewhere must not move it.
	if account, bound := t.roster.Account(), s.LocalAddr(); !bound.Bare().Equal(account.Bare()) {
		return &BindError{Account: account, Bound: bound}
	}
	t.roster.SetAccount(s.LocalAddr())
	if err := t.fetchRoster(ctx, s); err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	if err := s.Send(ctx, t.presenceReader(jid.JID{})); err != nil {
		return fmt.Errorf("client: sending presence: %w", err)
	}
	t.mu.Lock()
	t.sess = s
	t.mu.Unlock()
	// Every room was left when the previous session ended: the policy
	// rejoins them, once each.
	t.policy.sessionStarted(s)
	t.remote.sessionStarted()
	return nil
}

// Disconnected tells the Tracker that the session ended: every roster entry,
// room and occupant is marked psa.LocalDisconnected (one batch of stale
// events each), and the restore and room policies stop until the next Start.
func (t *Tracker) Disconnected() {
	t.mu.Lock()
	t.sess = nil
	t.mu.Unlock()
	t.verify.reset()
	t.policy.sessionEnded()
	t.remote.sessionEnded()
	evs, omitted := t.roster.MarkDisconnectedUpTo(t.cfg.queueBytes)
	t.disp.pushRoster(evs)
	t.disp.omit(kindRoster, omitted)
	revs, omitted := t.rooms.MarkDisconnectedUpTo(t.cfg.queueBytes)
	t.disp.pushRoom(revs)
	t.disp.omit(kindRoom, omitted)
}

// closing records that the session is about to end for good (Client.Close):
// every tracked room is being left (EventLeaving), so that the service's
// answer to our unavailable presence, our own unavailable with status 110,
// confirms a leave (EventRoomLeft) instead of reporting a kick.
func (t *Tracker) closing() {
	for r := range t.rooms.Rooms() {
		t.policy.forget(r.JID)
		t.disp.pushRoom(t.rooms.Leaving(r.JID))
	}
}

// closed ends tracking after a deliberate close: a shutdown is not an
// outage, so it reports no staleness. Rooms whose leave the service did not
// confirm are forgotten (EventRoomLeft); every resource is marked
// psa.LocalDisconnected, without events, so that a snapshot taken after
// Close tells that nothing is heard any more.
func (t *Tracker) closed() {
	t.mu.Lock()
	t.sess = nil
	t.mu.Unlock()
	t.verify.reset()
	t.policy.sessionEnded()
	t.remote.sessionEnded()
	t.roster.MarkDisconnectedUpTo(0)
	for r := range t.rooms.Rooms() {
		t.disp.pushRoom(t.rooms.Forget(r.JID))
	}
}

// Sweep removes the resources that still carry psa.LocalDisconnected, with
// EventUnavailable events, and returns how many. Call it once the server had
// time to send presence again after a reconnect (Client does after
// WithSettle).
func (t *Tracker) Sweep() int {
	evs := t.roster.Sweep()
	t.disp.pushRoster(evs)
	return len(evs)
}

// sendSession sends r on the session Start was last called with.
func (t *Tracker) sendSession(ctx context.Context, r xml.TokenReader) error {
	s := t.session()
	if s == nil {
		return ErrNotConnected
	}
	return sendCtx(ctx, s, r)
}

// session returns the current session, nil while disconnected.
func (t *Tracker) session() *xmpp.Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sess
}

func init() {
	// psakit's benchmarks, and nothing else, fill a Tracker's roster directly.
	livemodel.Roster = func(t any) *roster.Model { return t.(*Tracker).roster }
}
