package client

import (
	"context"
	"encoding/xml"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp"
)

// The bounds the client keeps whatever the server does.
const (
	// WriteTimeout bounds every write on the connection. A write that cannot
	// hand its bytes to the kernel within it (the server stopped reading and
	// the socket buffers are full) ends the connection as a network failure,
	// and the client reconnects. So a Send, SetPresence, Join or Leave
	// returns within about WriteTimeout even when its context has no
	// deadline. 15 s is what TCP needs to retransmit a lost segment four
	// times (1+2+4+8 s of initial retransmission timeouts): a peer that
	// takes nothing for that long is not merely slow.
	WriteTimeout = 15 * time.Second
	// CloseTimeout bounds Client.Close and Tracker.Close: up to 5 s of it for ending the
	// session politely (unavailable presence, stream close, waiting for the
	// server to close its side) before the connection is cut, the rest for
	// the callbacks to receive the events still queued (all of it for a
	// Tracker, which has no session to end). 8 s leaves a program
	// that closes on SIGINT or SIGTERM time to exit before a supervisor's
	// usual 10 s grace period ends, even when a callback is stuck.
	CloseTimeout = 8 * time.Second
)

// guardedConn is the TCP connection under everything else (TLS, mellium):
// it puts a deadline on every write, closes itself when a write misses it
// (the stream cannot continue after a partial write), and records when it
// last read something, for the keepalive.
//
// mellium sets and clears deadlines on the connection during negotiation
// (a deadline in the past, then none), and a read or write blocked at that
// moment misses them; the client therefore does not rely on deadlines for
// reads at all, but closes the connection when a context ends or a
// keepalive ping goes unanswered.
type guardedConn struct {
	net.Conn
	timeout  time.Duration
	lastRead atomic.Int64 // unix nanoseconds

	mu       sync.Mutex
	deadline time.Time // the write deadline set from above (TLS, mellium), or zero
}

func newGuardedConn(c net.Conn, writeTimeout time.Duration) *guardedConn {
	g := &guardedConn{Conn: c, timeout: writeTimeout}
	g.lastRead.Store(time.Now().UnixNano())
	return g
}

// Read implements net.Conn.
func (g *guardedConn) Read(b []byte) (int, error) {
	n, err := g.Conn.Read(b)
	if n > 0 {
		g.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// Write implements net.Conn: it sets the write deadline to at most
// WriteTimeout from now (or the earlier one set from above), and closes the
// connection when it passes.
func (g *guardedConn) Write(b []byte) (int, error) {
	g.mu.Lock()
	d := time.Now().Add(g.timeout)
	if !g.deadline.IsZero() && g.deadline.Before(d) {
		d = g.deadline
	}
	err := g.Conn.SetWriteDeadline(d)
	g.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := g.Conn.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Part of a stanza may have gone out: nothing can follow it.
		g.Conn.Close()
	}
	return n, err
}

// SetDeadline implements net.Conn.
func (g *guardedConn) SetDeadline(t time.Time) error {
	g.mu.Lock()
	g.deadline = t
	g.mu.Unlock()
	return g.Conn.SetDeadline(t)
}

// SetWriteDeadline implements net.Conn.
func (g *guardedConn) SetWriteDeadline(t time.Time) error {
	g.mu.Lock()
	g.deadline = t
	g.mu.Unlock()
	return g.Conn.SetWriteDeadline(t)
}

// idle returns how long ago the connection last read something.
func (g *guardedConn) idle() time.Duration {
	return time.Since(time.Unix(0, g.lastRead.Load()))
}

// sendCtx is Session.Send that returns when ctx ends. mellium's Send waits
// for the session's output lock before it looks at its context, and a write
// holds that lock; the write itself is bounded by WriteTimeout, so the
// goroutine left behind when ctx ends first returns within that bound (at
// once once the connection is closed).
func sendCtx(ctx context.Context, s *xmpp.Session, r xml.TokenReader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Done() == nil {
		return s.Send(ctx, r)
	}
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, r) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
