package client_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

// blip is a client on a stream-managed server, behind a proxy that can hold
// its next reconnection attempt, with two contacts online and a room joined.
type blip struct {
	srv     *psatest.Server
	room    *psatest.Room
	proxy   *faultProxy
	c       *client.Client
	rec     *recorder
	first   *psatest.Session
	unacked chan unackedCall
	ctx     context.Context
}

type unackedCall struct {
	stanzas []client.UnackedStanza
	reason  error
}

func newBlip(t *testing.T, rec *recorder, opts ...client.Option) *blip {
	t.Helper()
	srv, ctx := setup(t, psatest.WithMUC(mucDomain), psatest.WithStreamManagement(0))
	room := srv.Room("orchard")
	room.SetPersistent(true)
	if err := room.AddOccupant(ctx, "Juliet", juliet, "participant", "member"); err != nil {
		t.Fatal(err)
	}
	srv.SetRoster(romeo, "v1", roster.Item{JID: juliet.Bare()}, roster.Item{JID: nurse.Bare()})
	for _, p := range []string{`<presence from='juliet@capulet.lit/balcony'/>`, `<presence from='nurse@capulet.lit/kitchen'/>`} {
		if err := srv.SetContactPresence(romeo, p); err != nil {
			t.Fatal(err)
		}
	}
	if rec == nil {
		rec = newRecorder()
	}
	b := &blip{srv: srv, room: room, proxy: newFaultProxy(t, srv.Addr()), rec: rec, unacked: make(chan unackedCall, 10), ctx: ctx}
	all := []client.Option{
		client.WithAddress(b.proxy.addr()), client.WithRoomPolicy(fastPolicy()),
		client.OnUnacked(func(s []client.UnackedStanza, reason error) { b.unacked <- unackedCall{s, reason} }),
	}
	b.c = dial(ctx, t, srv, b.rec, append(all, opts...)...)
	if err := b.c.Join(ctx, romeoOcc); err != nil {
		t.Fatalf("Join: %v", err)
	}
	b.rec.waitRoster(ctx, t, "both available", kindJID(roster.EventAvailable, nurse), kindJID(roster.EventAvailable, juliet))
	b.rec.nextConn(ctx, t, client.ConnConnected)
	var err error
	if b.first, err = srv.WaitAvailable(ctx, b.c.JID()); err != nil {
		t.Fatal(err)
	}
	return b
}

// drop cuts the client's connection without the end of its stream, and
// holds its next reconnection attempt until the returned function is
// called: what the test does meanwhile happens during the gap.
func (b *blip) drop(t *testing.T) (release func()) {
	t.Helper()
	hold := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	b.proxy.nextAccepted(b.ctx, t) // the first connection
	b.proxy.script(func(net.Conn) { <-hold })
	b.first.Drop()
	b.rec.nextConn(b.ctx, t, client.ConnDisconnected)
	if k := b.proxy.nextAccepted(b.ctx, t); k != "script" {
		t.Fatalf("reconnection attempt %s", k)
	}
	return release
}

// connEventsUntil returns the kinds of the connection events up to the
// first of kind last.
func (r *recorder) connEventsUntil(ctx context.Context, t *testing.T, last client.ConnEventKind) []client.ConnEvent {
	t.Helper()
	var evs []client.ConnEvent
	for {
		select {
		case e := <-r.conn:
			evs = append(evs, e)
			if e.Kind == last {
				return evs
			}
		case <-ctx.Done():
			t.Fatalf("no %s connection event after %+v", last, evs)
		}
	}
}

func countStanzas(sess *psatest.Session, match func(psatest.Stanza) bool) int {
	n := 0
	for _, st := range sess.Stanzas() {
		if match(st) {
			n++
		}
	}
	return n
}

func isRosterGet(st psatest.Stanza) bool {
	return st.Name == "iq" && st.Type == "get" && strings.Contains(string(st.Raw), "jabber:iq:roster")
}

func isJoin(st psatest.Stanza) bool {
	return st.Name == "presence" && st.To.Bare().Equal(orchard) && strings.Contains(string(st.Raw), "http://jabber.org/protocol/muc")
}

func hAttr(st psatest.Stanza) string {
	for _, a := range st.Attr {
		if a.Name.Local == "h" {
			return a.Value
		}
	}
	return ""
}

// A blip with stream management: the session is resumed, what changed
// during the gap arrives, and every entry is fresh again at once: no roster
// fetch, no rejoin, no sweep, no verification. The resumption carries the
// count of stanzas received before the drop (never reset), and a stanza
// lost on the way is re-sent before anything new, even what the application
// sends as soon as it hears of the resumption.
func TestResumeAfterBlip(t *testing.T) {
	var cp atomic.Pointer[client.Client]
	rec := newRecorder()
	sentAfter := make(chan error, 1)
	b := newBlip(t, rec, client.OnConnection(func(e client.ConnEvent) {
		if e.Kind == client.ConnResumed {
			sentAfter <- cp.Load().Send(context.Background(), stanza.Message{ID: "m2", To: juliet, Type: stanza.ChatMessage}.Wrap(nil))
		}
		rec.conn <- e
	}))
	cp.Store(b.c)
	ctx := b.ctx

	// The client's count before the drop.
	if err := b.first.RequestAck(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := b.first.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "a" })
	if err != nil {
		t.Fatal(err)
	}
	// A message of ours that the link loses.
	b.first.LoseInput()
	if err := b.c.Send(ctx, stanza.Message{ID: "m1", To: juliet, Type: stanza.ChatMessage}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}

	release := b.drop(t)
	e := rec.nextRoster(ctx, t, "nurse marked", kindJID(roster.EventStale, nurse))
	if e.Mark.Condition != psa.LocalDisconnected {
		t.Fatalf("stale %+v", e)
	}
	if !b.first.Hibernating() {
		t.Fatal("the session does not hibernate")
	}
	// During the gap: the nurse and Juliet change their status.
	if err := b.srv.SendPresence(ctx, b.c.JID(), psatest.Presence{From: nurse, Show: "away"}); err != nil {
		t.Fatal(err)
	}
	if err := b.room.SetPresence(ctx, "Juliet", "dnd", "busy"); err != nil {
		t.Fatal(err)
	}
	release()

	evs := rec.connEventsUntil(ctx, t, client.ConnResynced)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind.String())
		switch e.Kind {
		case client.ConnConnected:
			t.Fatalf("a new session instead of the resumed one: %v", kinds)
		case client.ConnResumed:
			if !e.JID.Equal(b.c.JID()) {
				t.Fatalf("resumed as %s, bound %s", e.JID, b.c.JID())
			}
		case client.ConnResynced:
			if e.Swept != 0 {
				t.Fatalf("swept %d after a resumption", e.Swept)
			}
		}
	}
	if !strings.Contains(strings.Join(kinds, ","), "resumed,resynced") {
		t.Fatalf("connection events %v", kinds)
	}
	if err := <-sentAfter; err != nil {
		t.Fatalf("sending after the resumption: %v", err)
	}

	// What changed during the gap arrived; the rest was restored, unswept
	// and with nothing to verify.
	rec.waitRoster(ctx, t, "the gap's news and the restorations",
		func(e roster.Event) bool {
			return e.Kind == roster.EventUpdated && e.JID.Equal(nurse) && e.Resource.Show == "away"
		},
		func(e roster.Event) bool {
			return e.Kind == roster.EventRestored && e.JID.Equal(juliet) && e.Fresh() && !e.Resent
		})
	o := rec.nextRoom(ctx, t, mucwatch.EventOccupantUpdated)
	if o.Occupant.Nick != "Juliet" || o.Occupant.Show != "dnd" {
		t.Fatalf("occupant %+v", o)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomRestored)
	if s := b.c.Roster().Stats(); s.Resources != 2 || s.Stale != 0 {
		t.Fatalf("roster %+v", s)
	}
	r, ok := b.c.Rooms().Room(orchard)
	if !ok || r.State != mucwatch.StateJoined || r.Stale || r.Occupants != 2 || r.StaleOccupants != 0 {
		t.Fatalf("room %+v", r)
	}

	// On the wire: the resumption carried the count from before the drop;
	// one roster fetch and one join in all; m1 re-sent once, before m2.
	resume, err := b.first.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "resume" })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hAttr(resume), hAttr(a); got != want || want == "0" {
		t.Fatalf("resumed with h=%s, the count before the drop was %s", got, want)
	}
	if _, err := b.first.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" && st.ID == "m2" }); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, st := range b.first.Stanzas() {
		if st.Name == "message" {
			ids = append(ids, st.ID)
		}
	}
	if strings.Join(ids, ",") != "m1,m2" {
		t.Fatalf("messages received by the server: %v, want m1 (re-sent) then m2", ids)
	}
	if n := countStanzas(b.first, isRosterGet); n != 1 {
		t.Fatalf("%d roster fetches", n)
	}
	if n := countStanzas(b.first, isJoin); n != 1 {
		t.Fatalf("%d joins", n)
	}
	select {
	case a := <-rec.action:
		if a.Kind == client.ActionRejoin {
			t.Fatalf("rejoined: %+v", a)
		}
	default:
	}
	select {
	case u := <-b.unacked:
		t.Fatalf("unacked after a resumption: %+v", u)
	default:
	}
}

// The hibernation ends during the gap: the resumption fails, and the client
// tells so (ConnConnected, not ConnResumed), binds a new session and
// resyncs in full (roster fetch, rejoin, sweep); the stanza the server never
// acknowledged is handed to OnUnacked, not re-sent.
func TestResumeFailed(t *testing.T) {
	b := newBlip(t, nil, client.WithSettle(50*time.Millisecond))
	ctx, rec := b.ctx, b.rec
	b.first.LoseInput()
	if err := b.c.Send(ctx, stanza.Message{ID: "m1", To: juliet, Type: stanza.ChatMessage}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	release := b.drop(t)
	b.first.Expire()
	b.srv.ClearContactPresence(romeo, nurse)
	release()

	evs := rec.connEventsUntil(ctx, t, client.ConnResynced)
	for _, e := range evs {
		if e.Kind == client.ConnResumed {
			t.Fatal("ConnResumed after a failed resumption")
		}
	}
	if evs[len(evs)-2].Kind != client.ConnConnected || evs[len(evs)-1].Swept != 1 {
		t.Fatalf("connection events %+v", evs)
	}
	u := <-b.unacked // queued before ConnConnected
	if !errors.Is(u.reason, client.ErrResumeFailed) || len(u.stanzas) != 1 || !strings.Contains(string(u.stanzas[0].Raw), `id="m1"`) {
		t.Fatalf("unacked %+v", u)
	}
	rec.nextRoster(ctx, t, "nurse swept", kindJID(roster.EventUnavailable, nurse))
	if a := rec.nextAction(ctx, t, client.ActionRejoin); a.Reason != "reconnect" {
		t.Fatalf("rejoin %+v", a)
	}
	second, err := b.srv.WaitAvailable(ctx, b.c.JID())
	if err != nil {
		t.Fatal(err)
	}
	if second == b.first {
		t.Fatal("the expired session came back")
	}
	if _, err := second.Next(ctx, isRosterGet); err != nil {
		t.Fatalf("no roster fetch on the new session: %v", err)
	}
	if n := countStanzas(second, func(st psatest.Stanza) bool { return st.Name == "message" }); n != 0 {
		t.Fatalf("%d messages re-sent on the new session", n)
	}
}

// WithStreamManagement(false): the client never enables it, and a drop
// takes the full path.
func TestStreamManagementOff(t *testing.T) {
	b := newBlip(t, nil, client.WithStreamManagement(false), client.WithSettle(50*time.Millisecond))
	release := b.drop(t)
	release()
	evs := b.rec.connEventsUntil(b.ctx, t, client.ConnResynced)
	if evs[len(evs)-2].Kind != client.ConnConnected {
		t.Fatalf("connection events %+v", evs)
	}
	if n := countStanzas(b.first, func(st psatest.Stanza) bool { return st.Name == "enable" }); n != 0 {
		t.Fatal("enabled stream management")
	}
}

// With stream management the keepalive asks for the server's count instead
// of pinging, and an unanswered <r/> is a network failure.
func TestKeepaliveAcks(t *testing.T) {
	b := newBlip(t, nil, client.WithKeepalive(50*time.Millisecond, 200*time.Millisecond))
	for range 3 {
		if _, err := b.first.Next(b.ctx, func(st psatest.Stanza) bool { return st.Name == "r" }); err != nil {
			t.Fatal(err)
		}
	}
	if n := countStanzas(b.first, func(st psatest.Stanza) bool {
		return st.Name == "iq" && strings.Contains(string(st.Raw), "urn:xmpp:ping")
	}); n != 0 {
		t.Fatalf("%d XEP-0199 pings on a managed stream", n)
	}
	b.proxy.freeze()
	d := b.rec.nextConn(b.ctx, t, client.ConnDisconnected)
	if !errors.Is(d.Err, client.ErrNoResponse) {
		t.Fatalf("disconnected with %v", d.Err)
	}
	b.proxy.thaw()
}

// The client asks for acknowledgements shortly after it sends, even with
// the keepalive off, so that what it keeps for re-sending empties on a busy
// stream; and when more than it keeps goes unacknowledged (a link that
// loses everything), the oldest are handed to OnUnacked.
func TestAcksAfterSends(t *testing.T) {
	b := newBlip(t, nil, client.WithKeepalive(0, 0))
	ctx := b.ctx
	if err := b.c.Send(ctx, stanza.Message{ID: "m1", To: juliet, Type: stanza.ChatMessage}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	// Next looks at the stanzas in the order they were sent.
	sent := false
	if _, err := b.first.Next(ctx, func(st psatest.Stanza) bool {
		sent = sent || st.Name == "message" && st.ID == "m1"
		return sent && st.Name == "r"
	}); err != nil {
		t.Fatalf("no <r/> after a send: %v", err)
	}

	b.first.LoseInput()
	body := strings.Repeat("x", 100<<10)
	for i := range 12 {
		m := stanza.Message{ID: fmt.Sprint("big", i), To: juliet, Type: stanza.ChatMessage}
		if err := b.c.Send(ctx, m.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}}))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case u := <-b.unacked:
		// The oldest go: big0, and whatever the server had not
		// acknowledged yet when it stopped reading.
		big0 := slices.IndexFunc(u.stanzas, func(s client.UnackedStanza) bool { return strings.Contains(string(s.Raw), `id="big0"`) })
		if !errors.Is(u.reason, client.ErrUnackedOverflow) || big0 < 0 {
			t.Fatalf("unacked %d stanzas, big0 at %d: %v", len(u.stanzas), big0, u.reason)
		}
	case <-ctx.Done():
		t.Fatal("no OnUnacked past the queue's size")
	}
}

// WithUnackedBytes sets what the client keeps for re-sending: past it the
// oldest unacknowledged stanzas go to OnUnacked.
func TestUnackedBytes(t *testing.T) {
	b := newBlip(t, nil, client.WithKeepalive(0, 0), client.WithUnackedBytes(4<<10))
	ctx := b.ctx
	b.first.LoseInput()
	send := func(id string, n int) {
		t.Helper()
		body := strings.Repeat("x", n)
		m := stanza.Message{ID: id, To: juliet, Type: stanza.ChatMessage}
		if err := b.c.Send(ctx, m.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}}))); err != nil {
			t.Fatal(err)
		}
	}
	next := func() unackedCall {
		t.Helper()
		select {
		case u := <-b.unacked:
			if !errors.Is(u.reason, client.ErrUnackedOverflow) {
				t.Fatalf("unacked for %v", u.reason)
			}
			return u
		case <-ctx.Done():
			t.Fatal("no OnUnacked past WithUnackedBytes")
		}
		return unackedCall{}
	}
	send("small0", 1500)
	send("small1", 1500)
	send("small2", 1500) // 4.5 KiB and more kept: small0 goes
	// What the client sent before and the server has not acknowledged yet
	// (the acknowledgement is asked for 250 ms after a send) goes with it.
	u := next()
	if len(u.stanzas) == 0 || !strings.Contains(string(u.stanzas[len(u.stanzas)-1].Raw), `id="small0"`) {
		t.Fatalf("got %d stanzas; want those up to small0, and small0 last", len(u.stanzas))
	}
}
