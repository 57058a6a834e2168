package client_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa/psatest"
)

// A server that binds us to another account's JID is refused: its domain
// would otherwise become "our own server" for the trust rule.
func TestBindMismatch(t *testing.T) {
	for _, bound := range []string{
		"x@evil.example/r",           // another domain
		"juliet@montague.lit/lane",   // another user of our server
		"montague.lit/lane",          // the server itself
		"romeo@montague.lit.ev/lane", // a domain that only starts like ours
	} {
		t.Run(bound, func(t *testing.T) {
			answer := jid.MustParse(bound)
			srv, ctx := setup(t, psatest.WithBindAnswer(func(jid.JID) jid.JID { return answer }))
			c, err := client.Dial(ctx, romeo, password, client.WithAddress(srv.Addr()),
				client.WithTLS(client.PlainText), client.WithResource("lane"))
			if err == nil {
				c.Close()
				t.Fatalf("Dial accepted the session bound to %s", c.JID())
			}
			var be *client.BindError
			if !errors.Is(err, client.ErrBindMismatch) || !errors.As(err, &be) {
				t.Fatalf("Dial: %v, want ErrBindMismatch", err)
			}
			if !be.Bound.Equal(answer) || !be.Account.Bare().Equal(romeo) {
				t.Fatalf("BindError %+v", be)
			}
		})
	}
}

// A server that binds us elsewhere on a reconnect ends the client for good:
// retrying would only be bound elsewhere again.
func TestBindMismatchOnReconnect(t *testing.T) {
	var lie atomic.Bool
	evil := jid.MustParse("x@evil.example/r")
	srv, ctx := setup(t, psatest.WithBindAnswer(func(bound jid.JID) jid.JID {
		if lie.Load() {
			return evil
		}
		return bound
	}))
	rec := newRecorder()
	c := dial(ctx, t, srv, rec)
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	lie.Store(true)
	sess.Drop()
	// Read every connection event, so that a client that kept trying would
	// not block on the recorder.
	for closed := false; !closed; {
		select {
		case e := <-rec.conn:
			if e.Kind != client.ConnClosed {
				continue
			}
			if !errors.Is(e.Err, client.ErrBindMismatch) {
				t.Fatalf("closed with %v", e.Err)
			}
			closed = true
		case <-ctx.Done():
			t.Fatal("the client kept trying")
		}
	}
	<-c.Done()
	var de *client.DisconnectError
	if !errors.Is(c.Err(), client.ErrBindMismatch) || !errors.As(c.Err(), &de) || !de.Fatal() {
		t.Fatalf("Err() = %v", c.Err())
	}
	if a := c.Roster().Account(); !a.Bare().Equal(romeo) {
		t.Fatalf("the roster's account became %s", a)
	}
}

// The server may choose another resource than the one we asked for (RFC
// 6120 §7.6.2.1): the session is accepted with the server's resource.
func TestBindServerChoosesResource(t *testing.T) {
	answer := jid.MustParse("romeo@montague.lit/chosen-by-server")
	srv, ctx := setup(t, psatest.WithBindAnswer(func(jid.JID) jid.JID { return answer }))
	c := dial(ctx, t, srv, nil)
	if !c.JID().Equal(answer) {
		t.Fatalf("bound %s, want %s", c.JID(), answer)
	}
}

// A Tracker refuses a session that its application bound to another
// account's JID (here with mellium's own bind feature, which believes any
// answer), so that no annotation is ever judged against the wrong server.
func TestTrackerRefusesForeignBind(t *testing.T) {
	evil := jid.MustParse("x@evil.example/r")
	srv, ctx := setup(t, psatest.WithBindAnswer(func(jid.JID) jid.JID { return evil }))

	// psatest's own client bind refuses it already.
	if s, err := srv.Dial(ctx, romeo, password); !errors.Is(err, client.ErrBindMismatch) {
		if err == nil {
			s.Close()
			s.Conn().Close()
		}
		t.Fatalf("psatest.Server.Dial: %v, want ErrBindMismatch", err)
	}

	rec := newRecorder()
	tr, err := client.NewTracker(romeo, rec.trackerOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	s := dialMelliumBind(ctx, t, srv)
	served := make(chan error, 1)
	go func() { served <- s.Serve(tr.Handler(nil)) }()
	defer func() {
		s.Conn().Close()
		<-served
	}()
	if !s.LocalAddr().Equal(evil) {
		t.Fatalf("mellium bound %s", s.LocalAddr())
	}
	err = tr.Start(ctx, s)
	var be *client.BindError
	if !errors.Is(err, client.ErrBindMismatch) || !errors.As(err, &be) || !be.Bound.Equal(evil) {
		t.Fatalf("Start: %v, want a BindError for %s", err, evil)
	}
	if a := tr.Roster().Account(); !a.Equal(romeo) {
		t.Fatalf("the roster's account became %s", a)
	}
}

// dialMelliumBind logs romeo in to srv in plain text with mellium's own bind
// feature, which takes whatever JID the server answers.
func dialMelliumBind(ctx context.Context, t *testing.T, srv *psatest.Server) *xmpp.Session {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", password, sasl.Plain), xmpp.BindResource()}
	s, err := xmpp.NewSession(ctx, romeo.Domain(), romeo, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return s
}

// The resource of the account JID given to Dial is the one asked for
// (WithResource, if given too, wins); a JID that is no account is refused
// at once with ErrAccount, not sent to the server for a "not-authorized".
func TestDialAccountJID(t *testing.T) {
	srv, ctx := setup(t)
	c, err := client.Dial(ctx, jid.MustParse("romeo@montague.lit/kitchen"), password,
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.JID().String(); got != "romeo@montague.lit/kitchen" {
		t.Errorf("bound %s, want the account's resource kitchen", got)
	}
	c.Close()
	c = dial(ctx, t, srv, nil) // WithResource("lane") after the account's
	c.Close()
	c, err = client.Dial(ctx, jid.MustParse("romeo@montague.lit/kitchen"), password,
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText), client.WithResource("lane"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.JID().String(); got != "romeo@montague.lit/lane" {
		t.Errorf("bound %s, want WithResource's lane", got)
	}
	c.Close()

	for _, account := range []jid.JID{{}, jid.MustParse("montague.lit"), jid.MustParse("montague.lit/lane")} {
		c, err := client.Dial(ctx, account, password, client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText))
		if err == nil {
			c.Close()
			t.Errorf("Dial(%q) succeeded", account)
			continue
		}
		if !errors.Is(err, client.ErrAccount) || errors.Is(err, client.ErrAuth) {
			t.Errorf("Dial(%q): %v, want ErrAccount", account, err)
		}
	}
}
