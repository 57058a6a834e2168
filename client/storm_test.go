package client_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/roster"
)

// TestSessionDropStorm: the server drops the client's session again and
// again (psatest.DropAll, a network failure as the server sees it), with
// juliet's presence changing before each drop. After every drop the client
// reconnects by itself and its roster holds the server's truth: the items,
// juliet once, fresh, with her last status. The goroutines do not grow with
// the drops, and Close ends them all (setup checks with leaktest).
func TestSessionDropStorm(t *testing.T) {
	const drops = 30
	srv, ctx := setup(t)
	srv.SetRoster(romeo, "v1",
		roster.Item{JID: juliet.Bare(), Subscription: roster.SubscriptionBoth},
		roster.Item{JID: nurse.Bare(), Subscription: roster.SubscriptionTo})
	setStatus := func(status string) {
		t.Helper()
		if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'><status>`+status+`</status></presence>`); err != nil {
			t.Fatal(err)
		}
	}
	setStatus("drop 0")
	rec := newRecorder()
	c := dial(ctx, t, srv, rec)
	rec.nextConn(ctx, t, client.ConnConnected)

	truth := func(status string) string {
		r, ok := c.Roster().Resource(juliet)
		if !ok || !r.Fresh() || r.StatusText() != status {
			return fmt.Sprintf("juliet: present=%v %+v, want fresh with status %q", ok, r, status)
		}
		st := c.Roster().Stats()
		st.Bytes = 0
		if st != (roster.Stats{Items: 2, Contacts: 2, Resources: 1}) {
			return fmt.Sprintf("roster stats %+v", st)
		}
		return ""
	}
	settle := func(status string) {
		t.Helper()
		for {
			why := truth(status)
			if why == "" {
				return
			}
			select {
			case <-rec.roster:
			case <-ctx.Done():
				t.Fatalf("the roster never reached the truth: %s", why)
			}
		}
	}
	settle("drop 0")

	var goroutines int
	for i := 1; i <= drops; i++ {
		status := fmt.Sprintf("drop %d", i)
		setStatus(status)
		srv.DropAll()
		rec.nextConn(ctx, t, client.ConnDisconnected)
		rec.nextConn(ctx, t, client.ConnConnected)
		settle(status)
		if i == 1 {
			goroutines = runtime.NumGoroutine()
		}
	}
	// One goroutine left behind per reconnect would add drops-1; transient
	// ones end: wait for them, bounded by ctx.
	if err := fewerGoroutines(ctx, goroutines+3); err != nil {
		t.Errorf("after %d drops: %v (%d after the first)", drops, err, goroutines)
	}
}

// TestServerDeafAfterSASL: the server accepts the credentials and then
// stops reading and answering, the connection open. Dial returns when its
// context ends; a client reconnecting to such a server is still closed by
// Close. Neither leaves a goroutine behind.
func TestServerDeafAfterSASL(t *testing.T) {
	t.Run("dial", func(t *testing.T) {
		leaktest.Check(t)
		p := newFaultProxy(t, "127.0.0.1:1")
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) }) // before the proxy's cleanup waits for the script
		authed := make(chan struct{}, 1)
		p.script(deafAfterSASL(stop, authed))
		// Long enough for the client to authenticate on a loaded machine.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		returns(t, "Dial", func() {
			var c *client.Client
			c, err = client.Dial(ctx, romeo, password, client.WithAddress(p.addr()), client.WithTLS(client.PlainText))
			if c != nil {
				c.Close()
			}
		})
		select {
		case <-authed:
		default:
			t.Fatalf("Dial returned %v before it authenticated", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial: %v, want a context deadline error", err)
		}
	})
	t.Run("reconnect", func(t *testing.T) {
		srv, ctx := setup(t)
		p := newFaultProxy(t, srv.Addr())
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) })
		rec := newRecorder()
		c := dial(ctx, t, srv, rec, client.WithAddress(p.addr()))
		p.nextAccepted(ctx, t)
		rec.nextConn(ctx, t, client.ConnConnected)
		authed := make(chan struct{}, 1)
		p.script(deafAfterSASL(stop, authed))
		srv.DropAll()
		rec.nextConn(ctx, t, client.ConnDisconnected)
		select {
		case <-authed:
		case <-ctx.Done():
			t.Fatal("the client never authenticated with the deaf server")
		}
		if c.Session() != nil {
			t.Error("the client has a session with a server that never answered after SASL")
		}
		returns(t, "Close", func() { c.Close() })
	})
}

// deafAfterSASL returns a script that offers PLAIN, answers the
// authentication (signalling authed) with success, and then neither reads nor
// writes until stop is closed.
func deafAfterSASL(stop <-chan struct{}, authed chan<- struct{}) func(net.Conn) {
	return func(c net.Conn) {
		d := xml.NewDecoder(c)
		if !readUntil(d, "stream") {
			return
		}
		_, err := io.WriteString(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='montague.lit' id='x'>"+
			"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>")
		if err != nil || !readUntil(d, "auth") {
			return
		}
		authed <- struct{}{}
		if _, err := io.WriteString(c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"); err != nil {
			return
		}
		<-stop
	}
}

// fewerGoroutines waits until at most n goroutines run, or ctx ends.
func fewerGoroutines(ctx context.Context, n int) error {
	delay := time.Millisecond
	for {
		g := runtime.NumGoroutine()
		if g <= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d goroutines, want at most %d: %w", g, n, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}
