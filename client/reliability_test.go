package client_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// boundWait bounds the waits of these tests for a call that must return
// whatever the server does: above every documented bound (Close: 8 s), so
// that only a hang fails it.
const boundWait = 20 * time.Second

// returns runs f on its own goroutine and fails t if f has not returned
// within boundWait.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(boundWait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s did not return within %v", what, boundWait)
	}
}

// TestDialHostileServer: Dial honours its context during stream
// negotiation, whatever the server does once TCP is up.
func TestDialHostileServer(t *testing.T) {
	for name, script := range map[string]func(c netConn){"silent": silent, "slow loris": slowLoris} {
		t.Run(name, func(t *testing.T) {
			leaktest.Check(t)
			p := newFaultProxy(t, "127.0.0.1:1")
			p.script(script)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var err error
			returns(t, "Dial", func() {
				var c *client.Client
				c, err = client.Dial(ctx, romeo, password, client.WithAddress(p.addr()), client.WithTLS(client.PlainText))
				if c != nil {
					c.Close()
				}
			})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Dial: %v, want a context deadline error", err)
			}
		})
	}
}

// TestCloseDuringReconnectToSilentServer: Close ends a reconnection attempt
// blocked in negotiation.
func TestCloseDuringReconnectToSilentServer(t *testing.T) {
	srv, ctx := setup(t)
	p := newFaultProxy(t, srv.Addr())
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithAddress(p.addr()))
	p.nextAccepted(ctx, t)
	rec.nextConn(ctx, t, client.ConnConnected)
	p.script(silent)
	srv.DropAll()
	rec.nextConn(ctx, t, client.ConnDisconnected)
	if k := p.nextAccepted(ctx, t); k != "script" {
		t.Fatalf("reconnected to %s", k)
	}
	returns(t, "Close", func() { c.Close() })
}

// TestCloseWhenServerStopsReading: a server that stops reading blocks the
// client's writes; Close, and the Send blocked in the write, still return.
func TestCloseWhenServerStopsReading(t *testing.T) {
	srv, ctx := setup(t)
	p := newFaultProxy(t, srv.Addr())
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithAddress(p.addr()), client.WithKeepalive(0, 0))
	rec.nextConn(ctx, t, client.ConnConnected)
	p.freeze()

	big := strings.Repeat("x", 256*1024)
	sent := make(chan error, 1)
	go func() { sent <- floodSend(ctx, c, big) }()
	// Client.Send writes on a goroutine of its own, so that it can return
	// when its context ends.
	waitBlockedWrite(ctx, t, "client_test.floodSend", "client.sendCtx")
	returns(t, "Close", func() { c.Close() })
	select {
	case err := <-sent:
		if err == nil {
			t.Fatal("Send to a server that stopped reading succeeded")
		}
	case <-ctx.Done():
		t.Fatal("Send still blocked after Close")
	}
}

// floodSend sends messages carrying body until a Send fails.
func floodSend(ctx context.Context, c *client.Client, body string) error {
	for {
		msg := stanza.Message{To: juliet, Type: stanza.ChatMessage}.Wrap(
			xmlstream.Wrap(xmlstream.Token(xmlCharData(body)), xmlStart("body")))
		if err := c.Send(ctx, msg); err != nil {
			return err
		}
	}
}

// TestKeepaliveNoticesFrozenServer: with the server frozen (TCP up, nothing
// answered), the keepalive ping goes unanswered: the client marks every
// entry local-disconnected, and reconnects once the server answers again.
func TestKeepaliveNoticesFrozenServer(t *testing.T) {
	srv, ctx := setup(t)
	srv.SetRoster(romeo, "v1", roster.Item{JID: juliet.Bare()})
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
		t.Fatal(err)
	}
	p := newFaultProxy(t, srv.Addr())
	rec := newRecorder()
	dial(ctx, t, srv, rec, client.WithAddress(p.addr()), client.WithKeepalive(100*time.Millisecond, 200*time.Millisecond))
	rec.waitRoster(ctx, t, "juliet available", kindJID(roster.EventAvailable, juliet))
	rec.nextConn(ctx, t, client.ConnConnected)

	p.freeze()
	d := rec.nextConn(ctx, t, client.ConnDisconnected)
	var de *client.DisconnectError
	if !errors.As(d.Err, &de) || de.Reason != client.ReasonNetwork || !errors.Is(d.Err, client.ErrNoResponse) {
		t.Fatalf("disconnected with %v", d.Err)
	}
	e := rec.nextRoster(ctx, t, "juliet marked", kindJID(roster.EventStale, juliet))
	if e.Mark.Condition != psa.LocalDisconnected {
		t.Fatalf("stale event %+v", e)
	}
	p.thaw()
	rec.nextConn(ctx, t, client.ConnConnected)
	rec.nextRoster(ctx, t, "juliet refreshed", kindJID(roster.EventRestored, juliet))
}

// TestTransientSASLFailure: a SASL failure that says "later" is retried with
// the reconnect backoff; the conditions are read from the failure element,
// not from its text, which the server chooses.
func TestTransientSASLFailure(t *testing.T) {
	for _, cond := range []string{"temporary-auth-failure", "aborted", "malformed-request"} {
		t.Run(cond, func(t *testing.T) {
			srv, ctx := setup(t)
			p := newFaultProxy(t, srv.Addr())
			rec := newRecorder()
			c := dial(ctx, t, srv, rec, client.WithAddress(p.addr()))
			rec.nextConn(ctx, t, client.ConnConnected)
			p.script(saslFailure(cond, "not-authorized"), saslFailure(cond, ""))
			srv.DropAll()
			rec.nextConn(ctx, t, client.ConnDisconnected)
			rec.nextConn(ctx, t, client.ConnConnected)
			if err := c.Err(); err != nil {
				t.Fatalf("Err() = %v", err)
			}
		})
	}
	t.Run("not-authorized stays final", func(t *testing.T) {
		srv, ctx := setup(t)
		p := newFaultProxy(t, srv.Addr())
		rec := newRecorder()
		c := dial(ctx, t, srv, rec, client.WithAddress(p.addr()))
		rec.nextConn(ctx, t, client.ConnConnected)
		p.script(saslFailure("not-authorized", "temporary-auth-failure"))
		srv.DropAll()
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatal("the client kept trying")
		}
		if !errors.Is(c.Err(), client.ErrAuth) || errors.Is(c.Err(), client.ErrTemporaryAuth) {
			t.Fatalf("Err() = %v", c.Err())
		}
	})
}

// TestDialTransientSASLFailure: the first Dial does not retry; it returns
// ErrTemporaryAuth, which is not ErrAuth, so that the caller may.
func TestDialTransientSASLFailure(t *testing.T) {
	leaktest.Check(t)
	p := newFaultProxy(t, "127.0.0.1:1")
	p.script(saslFailure("temporary-auth-failure", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, romeo, password, client.WithAddress(p.addr()), client.WithTLS(client.PlainText))
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded")
	}
	if !errors.Is(err, client.ErrTemporaryAuth) || errors.Is(err, client.ErrAuth) {
		t.Fatalf("Dial: %v", err)
	}
}

// TestCloseWithBlockedCallback: Close does not wait for ever for a callback
// that does not return: it returns ErrCloseTimeout, the callbacks receive
// nothing more, and the client's goroutines end once that callback returns.
func TestCloseWithBlockedCallback(t *testing.T) {
	srv, ctx := setup(t)
	release := make(chan struct{})
	blocked := make(chan struct{})
	var after atomic.Int32
	c := dial(ctx, t, srv, nil, client.OnConnection(func(e client.ConnEvent) {
		select {
		case <-release:
			after.Add(1)
			return
		default:
		}
		if e.Kind == client.ConnConnected {
			close(blocked)
			<-release
		}
	}))
	select {
	case <-blocked:
	case <-ctx.Done():
		t.Fatal("no ConnConnected")
	}
	var err error
	returns(t, "Close", func() { err = c.Close() })
	if !errors.Is(err, client.ErrCloseTimeout) {
		t.Fatalf("Close with a blocked callback: %v, want ErrCloseTimeout", err)
	}
	close(release)
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the client did not end after the callback returned")
	}
	if n := after.Load(); n != 0 {
		t.Errorf("%d callbacks after Close gave up on them", n)
	}
}

// TestReconnectingSaysWhy: each reconnecting event carries why the client
// is not connected, the previous attempt's error (first the session's end,
// then the failed reconnection), with the delay it waits.
func TestReconnectingSaysWhy(t *testing.T) {
	srv, ctx := setup(t)
	p := newFaultProxy(t, srv.Addr())
	rec := newRecorder()
	dial(ctx, t, srv, rec, client.WithAddress(p.addr()), client.WithReconnect(time.Millisecond, time.Millisecond))
	rec.nextConn(ctx, t, client.ConnConnected)
	p.script(saslFailure("temporary-auth-failure", ""))
	srv.DropAll()
	d := rec.nextConn(ctx, t, client.ConnDisconnected)
	first := rec.nextConn(ctx, t, client.ConnReconnecting)
	var de *client.DisconnectError
	if first.Attempt != 1 || first.Err != d.Err || !errors.As(first.Err, &de) || first.Delay > time.Millisecond {
		t.Fatalf("first reconnecting %+v, want attempt 1 with the disconnect's error %v", first, d.Err)
	}
	second := rec.nextConn(ctx, t, client.ConnReconnecting)
	if second.Attempt != 2 || !errors.Is(second.Err, client.ErrTemporaryAuth) || !errors.As(second.Err, &de) || second.Delay > time.Millisecond {
		t.Fatalf("second reconnecting %+v, want attempt 2 with the failed attempt's ErrTemporaryAuth", second)
	}
	rec.nextConn(ctx, t, client.ConnConnected)
}

// TestDroppedStreamReadsWell: a connection that breaks in the middle of the
// stream is reported as "connection closed", not as the XML decoder's
// "XML syntax error on line 1: unexpected EOF", and still matches
// io.ErrUnexpectedEOF.
func TestDroppedStreamReadsWell(t *testing.T) {
	srv, ctx := setup(t)
	rec := newRecorder()
	dial(ctx, t, srv, rec)
	rec.nextConn(ctx, t, client.ConnConnected)
	srv.DropAll()
	d := rec.nextConn(ctx, t, client.ConnDisconnected)
	if got, want := d.Err.Error(), "client: disconnected (network): connection closed"; got != want || !errors.Is(d.Err, io.ErrUnexpectedEOF) {
		t.Fatalf("disconnected with %q (unexpected EOF: %v), want %q", got, errors.Is(d.Err, io.ErrUnexpectedEOF), want)
	}
}

// TestDialServerHangsUp: a server that hangs up in the middle of the
// stream makes Dial fail with "connection closed", not with the XML
// decoder's error.
func TestDialServerHangsUp(t *testing.T) {
	leaktest.Check(t)
	p := newFaultProxy(t, "127.0.0.1:1")
	p.script(func(c netConn) {
		d := xml.NewDecoder(c)
		if readUntil(d, "stream") {
			_, _ = io.WriteString(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='montague.lit' id='x'>")
		}
		c.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, romeo, password, client.WithAddress(p.addr()), client.WithTLS(client.PlainText))
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded")
	}
	if !strings.Contains(err.Error(), "connection closed") || strings.Contains(err.Error(), "XML syntax error") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Dial: %v", err)
	}
}
