package caps_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"net"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/leaktest"
)

// testPair is a client session and the server session it is logged in to,
// over loopback TCP, both served in goroutines until the test ends.
type testPair struct {
	Client, Server *xmpp.Session
	clientDone     chan error // receives what Client.Serve returns
}

// newTestPair logs a client in to an in-process server and serves both
// sessions, the client with h. The server handles nothing: it only sends.
// When the test ends it closes both sessions and connections, waits for both
// Serve calls to return and for the number of goroutines to fall back to what
// it was before.
func newTestPair(t *testing.T, h xmpp.Handler) *testPair {
	t.Helper()
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type accepted struct {
		s    *xmpp.Session
		conn net.Conn
		err  error
	}
	acc := make(chan accepted, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			acc <- accepted{err: err}
			return
		}
		s, err := xmpp.ReceiveSession(ctx, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
				xmpp.SASLServer(func(n *sasl.Negotiator) bool {
					user, pass, _ := n.Credentials()
					return string(user) == "alice" && string(pass) == "secret"
				}, sasl.Plain),
				xmpp.BindCustom(func(j jid.JID, _ string) (jid.JID, error) {
					return j.WithResource("caps-test")
				}),
			}}
		}))
		acc <- accepted{s: s, conn: conn, err: err}
	}()

	cconn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	user := jid.MustParse("alice@example.net")
	cli, cerr := xmpp.NewSession(ctx, user.Domain(), user, cconn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", "secret", sasl.Plain),
			xmpp.BindResource(),
		}}
	}))
	if cerr != nil {
		cconn.Close() // unblocks the server's negotiation
	}
	a := <-acc
	if cerr != nil || a.err != nil {
		if a.conn != nil {
			a.conn.Close()
		}
		t.Fatalf("negotiation: client: %v, server: %v", cerr, a.err)
	}

	p := &testPair{Client: cli, Server: a.s, clientDone: make(chan error, 1)}
	serverDone := make(chan error, 1)
	go func() { p.clientDone <- cli.Serve(h) }()
	go func() { serverDone <- a.s.Serve(nil) }()

	t.Cleanup(func() {
		cli.Close()
		a.s.Close()
		cconn.Close()
		a.conn.Close()
		for _, done := range []chan error{p.clientDone, serverDone} {
			select {
			case <-done: // after a close, any result is fine
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return after Close")
			}
		}
	})
	return p
}

// checkAlive fails the test if the client session has ended, for example
// because a handler returned an error.
func (p *testPair) checkAlive(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.clientDone:
		p.clientDone <- err // for the cleanup
		t.Fatalf("client session ended: %v", err)
	default:
	}
}

// recorder is an xmlstream.TokenReadEncoder that records what a handler
// writes, for tests of handlers without a session.
type recorder struct {
	xml.TokenReader
	*xml.Encoder
	buf bytes.Buffer
}

func newRecorder() *recorder {
	r := &recorder{TokenReader: xmlstream.MultiReader()}
	r.Encoder = xml.NewEncoder(&r.buf)
	return r
}

// String returns what was written so far.
func (r *recorder) String() string {
	r.Flush()
	return r.buf.String()
}
