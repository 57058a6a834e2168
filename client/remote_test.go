package client_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

var capulet = jid.MustParse("capulet.lit")

// remoteSetup logs romeo in with juliet online on capulet.lit, and returns
// romeo's session on the server. capulet.lit is silent: the tests answer
// the checks themselves.
func remoteSetup(t *testing.T, opts ...client.Option) (*psatest.Server, context.Context, *recorder, *client.Client, *psatest.Session) {
	t.Helper()
	srv, ctx := setup(t)
	srv.SetReachability(capulet, psatest.Silent)
	srv.SetRoster(romeo, "v1", roster.Item{JID: juliet.Bare(), Subscription: roster.SubscriptionBoth})
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, opts...)
	rec.nextRoster(ctx, t, "juliet available", kindJID(roster.EventAvailable, juliet))
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	return srv, ctx, rec, c, sess
}

// nextCheck waits for the client's next ping to domain.
func nextCheck(ctx context.Context, t *testing.T, sess *psatest.Session, domain jid.JID) psatest.Stanza {
	t.Helper()
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool {
		return st.Name == "iq" && st.Type == "get" && st.To.Equal(domain) && bytes.Contains(st.Raw, []byte("urn:xmpp:ping"))
	})
	if err != nil {
		t.Fatalf("no check of %s: %v", domain, err)
	}
	return st
}

func inferred(kind roster.EventKind) func(roster.Event) bool {
	return func(e roster.Event) bool {
		d, ok := e.Mark.InferredDomain()
		return e.Kind == kind && e.JID.Equal(juliet) && ok && d.Equal(capulet)
	}
}

// Our own server bounces the check: juliet is marked, by psakit's own
// word; the domain answers the next check: the mark goes, and juliet is
// verified.
func TestRemoteCheckBounced(t *testing.T) {
	srv, ctx, rec, c, sess := remoteSetup(t, client.WithRemoteCheck(20*time.Millisecond))
	ping := nextCheck(ctx, t, sess, capulet)
	bounce := fmt.Sprintf(`<iq type='error' id='%s' from='capulet.lit' to='%s'><error type='cancel' by='montague.lit'>`+
		`<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, ping.ID, c.JID())
	if err := srv.SendRaw(ctx, c.JID(), bounce); err != nil {
		t.Fatal(err)
	}
	e := rec.nextRoster(ctx, t, "juliet marked", inferred(roster.EventStale))
	if e.Mark.Condition != psa.ServerUnavailable || e.Fresh() {
		t.Fatalf("mark %+v", e.Mark)
	}
	if r, _ := c.Roster().Resource(juliet); r.Fresh() {
		t.Fatal("the model does not show the mark")
	}

	ping = nextCheck(ctx, t, sess, capulet)
	if err := srv.SendRaw(ctx, c.JID(), fmt.Sprintf(`<iq type='result' id='%s' from='capulet.lit' to='%s'/>`, ping.ID, c.JID())); err != nil {
		t.Fatal(err)
	}
	e = rec.nextRoster(ctx, t, "juliet restored", inferred(roster.EventRestored))
	if !e.Fresh() || !e.Resent {
		t.Fatalf("restored %+v", e)
	}
	// The restore policy asks juliet herself.
	if _, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "iq" && st.To.Equal(juliet) }); err != nil {
		t.Fatalf("juliet not verified: %v", err)
	}
}

// The domain's own error proves its link works: nothing is marked.
func TestRemoteCheckDomainError(t *testing.T) {
	srv, ctx, _, c, sess := remoteSetup(t, client.WithRemoteCheck(20*time.Millisecond))
	for range 2 {
		ping := nextCheck(ctx, t, sess, capulet)
		answer := fmt.Sprintf(`<iq type='error' id='%s' from='capulet.lit' to='%s'><error type='cancel'>`+
			`<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, ping.ID, c.JID())
		if err := srv.SendRaw(ctx, c.JID(), answer); err != nil {
			t.Fatal(err)
		}
	}
	// The third check comes after the second's verdict was applied to the
	// model: had it been unreachable, juliet would carry the mark by now.
	nextCheck(ctx, t, sess, capulet)
	if r, _ := c.Roster().Resource(juliet); !r.Fresh() {
		t.Fatalf("juliet marked: %v", r.Marks)
	}
}

// A domain that does not answer is unreachable once the check times out.
func TestRemoteCheckSilent(t *testing.T) {
	_, ctx, rec, _, sess := remoteSetup(t, client.WithRemoteCheck(20*time.Millisecond), client.WithRemoteTimeout(50*time.Millisecond))
	nextCheck(ctx, t, sess, capulet)
	rec.nextRoster(ctx, t, "juliet marked after the timeout", inferred(roster.EventStale))
}

// A bounce of something else the client sent makes the domain suspect: it
// is checked at once, long before its interval.
func TestRemoteCheckAfterBounce(t *testing.T) {
	srv, ctx, _, c, sess := remoteSetup(t, client.WithRemoteCheck(time.Hour))
	bounce := `<presence type='error' from='juliet@capulet.lit'><error type='wait'>` +
		`<remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`
	if err := srv.SendRaw(ctx, c.JID(), bounce); err != nil {
		t.Fatal(err)
	}
	nextCheck(ctx, t, sess, capulet)
}

// The checks are on without any option: a bounce brings the first one
// forward from somewhere in its first five minutes to now.
func TestRemoteCheckOnByDefault(t *testing.T) {
	srv, ctx, _, c, sess := remoteSetup(t)
	bounce := `<presence type='error' from='juliet@capulet.lit'><error type='cancel'>` +
		`<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`
	if err := srv.SendRaw(ctx, c.JID(), bounce); err != nil {
		t.Fatal(err)
	}
	nextCheck(ctx, t, sess, capulet)
}

// bounceOf returns the error our own server sends back for the stanza st
// (a message or an IQ) it could not deliver, from the JID it was sent to.
func bounceOf(st psatest.Stanza, to jid.JID, cond string) string {
	return fmt.Sprintf(`<%s type='error' id='%s' from='%s' to='%s'><error type='cancel'>`+
		`<%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></%s>`, st.Name, st.ID, st.To, to, cond, st.Name)
}

// XEP-0310's business rule on the send path: our own server bounces a
// message, then an IQ, the application sent to juliet: each marks her at
// once, long before the hourly check, and the check that the bounce
// brings forward clears the mark when capulet.lit answers.
func TestBounceMarks(t *testing.T) {
	srv, ctx, rec, c, sess := remoteSetup(t, client.WithRemoteCheck(time.Hour))
	if err := c.SendMessage(ctx, juliet, "", "Juliet?"); err != nil {
		t.Fatal(err)
	}
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" && st.To.Equal(juliet) })
	if err != nil {
		t.Fatal(err)
	}
	if st.ID == "" {
		t.Fatal("a message to a remote contact went without an id")
	}
	if err := srv.SendRaw(ctx, c.JID(), bounceOf(st, c.JID(), "remote-server-not-found")); err != nil {
		t.Fatal(err)
	}
	rec.nextRoster(ctx, t, "juliet marked by the bounce", inferred(roster.EventStale))
	ping := nextCheck(ctx, t, sess, capulet)
	if err := srv.SendRaw(ctx, c.JID(), fmt.Sprintf(`<iq type='result' id='%s' from='capulet.lit' to='%s'/>`, ping.ID, c.JID())); err != nil {
		t.Fatal(err)
	}
	rec.nextRoster(ctx, t, "juliet restored by the check", inferred(roster.EventRestored))

	// An IQ sent with Send, without an id: it gets one, and its bounce
	// (remote-server-timeout, as Prosody sends when the link timed out)
	// brings a check forward: the last bounce was proven wrong, so this
	// one is believed only once the check confirms it.
	iq := `<iq type='get' to='juliet@capulet.lit/balcony'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`
	if err := c.Send(ctx, xml.NewDecoder(strings.NewReader(iq))); err != nil {
		t.Fatal(err)
	}
	st, err = sess.Next(ctx, func(st psatest.Stanza) bool {
		return st.Name == "iq" && st.To.Equal(juliet) && bytes.Contains(st.Raw, []byte("disco#info"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.ID == "" {
		t.Fatal("an IQ to a remote contact went without an id")
	}
	if err := srv.SendRaw(ctx, c.JID(), bounceOf(st, c.JID(), "remote-server-timeout")); err != nil {
		t.Fatal(err)
	}
	ping = nextCheck(ctx, t, sess, capulet)
	if err := srv.SendRaw(ctx, c.JID(), bounceOf(ping, c.JID(), "remote-server-timeout")); err != nil {
		t.Fatal(err)
	}
	rec.nextRoster(ctx, t, "juliet marked by the check after the IQ's bounce", inferred(roster.EventStale))
}

// Errors that do not answer a stanza we sent, or come from anyone but its
// recipient, mark nothing: mercutio (verona.lit) forges bounces, with an
// id he guessed and with the id of our message to juliet; only the bounce
// of our second message to juliet, from her JID, marks anyone.
func TestForgedBounces(t *testing.T) {
	srv, ctx := setup(t)
	mercutio := jid.MustParse("mercutio@verona.lit/street")
	srv.SetRoster(romeo, "v1",
		roster.Item{JID: juliet.Bare(), Subscription: roster.SubscriptionBoth},
		roster.Item{JID: mercutio.Bare(), Subscription: roster.SubscriptionBoth})
	for _, p := range []string{`<presence from='juliet@capulet.lit/balcony'/>`, `<presence from='mercutio@verona.lit/street'/>`} {
		if err := srv.SetContactPresence(romeo, p); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetReachability(capulet, psatest.Silent)
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithRemoteCheck(time.Hour))
	rec.waitRoster(ctx, t, "both available", kindJID(roster.EventAvailable, juliet), kindJID(roster.EventAvailable, mercutio))
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	toJuliet := func() psatest.Stanza {
		t.Helper()
		if err := c.SendMessage(ctx, juliet, "", "Juliet?"); err != nil {
			t.Fatal(err)
		}
		st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" && st.To.Equal(juliet) })
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := toJuliet()
	forged := []string{
		// An id nobody sent.
		bounceOf(psatest.Stanza{Name: "message", ID: "guessed", To: mercutio}, c.JID(), "remote-server-not-found"),
		// Our message's id, from someone it did not go to.
		bounceOf(psatest.Stanza{Name: "message", ID: first.ID, To: mercutio}, c.JID(), "remote-server-not-found"),
		bounceOf(psatest.Stanza{Name: "iq", ID: first.ID, To: mercutio.Domain()}, c.JID(), "remote-server-timeout"),
	}
	for _, f := range forged {
		if err := srv.SendRaw(ctx, c.JID(), f); err != nil {
			t.Fatal(err)
		}
	}
	second := toJuliet()
	if err := srv.SendRaw(ctx, c.JID(), bounceOf(second, c.JID(), "remote-server-not-found")); err != nil {
		t.Fatal(err)
	}
	// The marks come in the order of the bounces: a mark of mercutio would
	// come first.
	rec.nextRoster(ctx, t, "juliet marked", func(e roster.Event) bool {
		if e.JID.Equal(mercutio) && !e.Fresh() {
			t.Errorf("a forged bounce marked mercutio: %+v", e)
		}
		return inferred(roster.EventStale)(e)
	})
	if r, _ := c.Roster().Resource(mercutio); !r.Fresh() {
		t.Errorf("mercutio marked: %v", r.Marks)
	}
}

// A groupchat message to a room whose service our own server cannot reach
// bounces: the room is stale at once, by psakit's inferred mark, and the
// room policy self-pings it.
func TestRoomBounceMarks(t *testing.T) {
	srv, room, c, rec, ctx := joined(t, fastPolicy(), client.WithRemoteCheck(time.Hour))
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	srv.SetReachability(room.JID().Domain(), psatest.Bouncing)
	if err := c.SendMessage(ctx, room.JID(), stanza.GroupChatMessage, "Anyone?"); err != nil {
		t.Fatal(err)
	}
	for {
		e := rec.nextRoom(ctx, t, mucwatch.EventRoomStale)
		if d, ok := e.Mark.InferredDomain(); ok && d.Equal(room.JID().Domain()) && e.Room.Equal(room.JID()) {
			break
		}
	}
	a := rec.nextAction(ctx, t, client.ActionSelfPing)
	if !a.Room.Equal(room.JID()) {
		t.Fatalf("self-ping of %s", a.Room)
	}
}

// An error a room relays from an occupant (our private message to
// room/Juliet bounced, from her JID in the room) may be about her own
// server, not the room's service: the service is checked, and nothing is
// marked before the check says so.
func TestRelayedBounceOnlySuspects(t *testing.T) {
	srv, room, c, rec, ctx := joined(t, fastPolicy(), client.WithRemoteCheck(time.Hour))
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	service := room.JID().Domain()
	srv.SetReachability(service, psatest.Silent) // the test answers
	julietOcc := jid.MustParse(room.JID().String() + "/Juliet")
	if err := c.SendMessage(ctx, julietOcc, "", "Psst"); err != nil {
		t.Fatal(err)
	}
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" && st.To.Equal(julietOcc) })
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SendRaw(ctx, c.JID(), bounceOf(st, c.JID(), "remote-server-not-found")); err != nil {
		t.Fatal(err)
	}
	nextCheck(ctx, t, sess, service)
	// A mark would have been applied before the check went out.
	if r, _ := c.Rooms().Room(room.JID()); r.Stale {
		t.Fatalf("the room is stale after a relayed bounce: %+v", r)
	}
}

// An IQ the application sends with Client.SendIQ: its bounce marks juliet,
// and the application still gets the answer.
func TestSendIQBounceMarks(t *testing.T) {
	srv, ctx, rec, c, _ := remoteSetup(t, client.WithRemoteCheck(time.Hour))
	srv.SetReachability(capulet, psatest.Bouncing)
	iq := `<iq type='get' to='juliet@capulet.lit/balcony'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`
	resp, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(iq)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	from, se, err := readIQAnswer(resp)
	if err != nil || !from.Equal(juliet) || se == nil || se.Condition != stanza.RemoteServerNotFound {
		t.Fatalf("answer from %s: %+v, %v", from, se, err)
	}
	rec.nextRoster(ctx, t, "juliet marked by the IQ's bounce", inferred(roster.EventStale))
}

// readIQAnswer reads an IQ answer: its from and its error, if any.
func readIQAnswer(r xml.TokenReader) (jid.JID, *stanza.Error, error) {
	d := xml.NewTokenDecoder(r)
	var iq struct {
		From  string        `xml:"from,attr"`
		Error *stanza.Error `xml:"error"`
	}
	if err := d.Decode(&iq); err != nil {
		return jid.JID{}, nil, err
	}
	from, err := jid.Parse(iq.From)
	return from, iq.Error, err
}
