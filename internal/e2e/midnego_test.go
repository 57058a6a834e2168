package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/leaktest"
)

// bindTrap is a loopback TCP proxy in front of a server. Armed, it runs its
// hook (once) when a client sends a resource binding request, before it
// forwards it: the stream is open and authenticated, the session not yet
// bound.
type bindTrap struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	hook  func()
	conns map[net.Conn]struct{}
}

var bindNS = []byte("urn:ietf:params:xml:ns:xmpp-bind")

func newBindTrap(t *testing.T, target string) *bindTrap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &bindTrap{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(up, c, true)
			go p.pipe(c, up, false)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *bindTrap) addr() string { return p.ln.Addr().String() }

// arm makes the next binding request run hook first.
func (p *bindTrap) arm(hook func()) {
	p.mu.Lock()
	p.hook = hook
	p.mu.Unlock()
}

func (p *bindTrap) pipe(dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32*1024)
	var tail []byte // the end of the previous read, for a name split in two
	for {
		n, err := src.Read(buf)
		if n > 0 && fromClient {
			seen := append(tail, buf[:n]...)
			if bytes.Contains(seen, bindNS) {
				p.mu.Lock()
				hook := p.hook
				p.hook = nil
				p.mu.Unlock()
				if hook != nil {
					hook()
				}
			}
			tail = append(tail[:0], seen[max(0, len(seen)-len(bindNS)):]...)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Our own server is killed with SIGKILL while the client negotiates: after
// SASL, when it asks to bind a resource. On a reconnect the client keeps
// trying and, once the server is back, ends connected with juliet fresh and
// her status current; a first Dial returns an error (not a hang, not a
// session), and the next Dial works. Close leaves no goroutine behind.
//
// Not parallel: leaktest compares the goroutines before and after.
func TestKilledMidNegotiation(t *testing.T) {
	leaktest.Check(t) // first: its check runs after every other cleanup
	n := shakespeare(t, nil)
	ctx := testContext(t, 120*time.Second)
	mont := n.Server(montague)
	trap := newBindTrap(t, mont.C2SAddr)
	killed := make(chan error, 1)
	kill := func() { killed <- mont.Kill() }

	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "<status>before</status>", client.WithAddress(trap.addr()))
	jfull := juliet.JID()

	// A reconnect killed mid-negotiation.
	mark := rec.mark()
	must(t, mont.Kill())
	rec.waitFrom(ctx, t, mark, "disconnected", connEvent(client.ConnDisconnected))
	must(t, juliet.Send("<presence><status>after</status></presence>"))
	trap.arm(kill)
	must(t, mont.Restart(ctx))
	select {
	case err := <-killed:
		must(t, err)
	case <-ctx.Done():
		t.Fatal("the client never asked to bind a resource")
	}
	if romeo.Session() != nil {
		t.Error("the client has a session although its server died before binding")
	}
	mark = rec.mark()
	must(t, mont.Restart(ctx))
	rec.waitFrom(ctx, t, mark, "connected again", connEvent(client.ConnConnected))
	rec.until(ctx, t, "juliet fresh with her current status", func() bool {
		r, ok := romeo.Roster().Resource(jid.MustParse(jfull))
		return ok && r.Fresh() && r.StatusText() == "after"
	})
	roundTrip(ctx, t, romeo)

	// A first Dial killed mid-negotiation.
	mark = rec.mark()
	trap.arm(kill)
	dctx := testContext(t, 60*time.Second)
	c, err := client.Dial(dctx, jid.MustParse("benvolio@"+montague), pw, client.WithAddress(trap.addr()), client.WithTLS(client.PlainText))
	if err == nil {
		_ = c.Close()
		t.Fatal("Dial succeeded although the server died before binding")
	}
	if dctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial waited for its context instead of noticing the dead server: %v", err)
	}
	must(t, <-killed)
	// What the error is, not asserted: "connection closed" when the stream
	// just ended mid-negotiation, or the network error that noticed the
	// death; not a *client.DisconnectError.
	t.Logf("Dial: %T: %v", err, err)
	must(t, mont.Restart(ctx))
	c, err = client.Dial(ctx, jid.MustParse("benvolio@"+montague), pw, client.WithAddress(trap.addr()), client.WithTLS(client.PlainText))
	if err != nil {
		t.Fatalf("Dial after the restart: %v", err)
	}
	must(t, c.Close())
	rec.waitFrom(ctx, t, mark, "romeo connected once more", connEvent(client.ConnConnected))
	must(t, romeo.Close())
}
