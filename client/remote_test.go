package client_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
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
