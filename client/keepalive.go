package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
)

// The keepalive defaults.
//
// A frozen server (a stopped process, a dead host behind a NAT that keeps
// the TCP connection open, a cable pulled somewhere) sends nothing, and TCP
// says nothing either while we send nothing: without a check the client
// would show every entry fresh for as long as that lasts. With the defaults
// such a failure is noticed within DefaultKeepaliveInterval +
// DefaultKeepaliveTimeout = 45 s, the entries are marked local-disconnected
// and the client reconnects.
//
//   - 30 s of silence before a ping: below the idle timeouts of common NATs
//     and stateful firewalls (from about a minute up), so the pings also keep
//     the connection's mappings alive, and an idle client costs its server
//     two small IQs a minute. A busy connection, where something arrives
//     within every interval, sends no ping at all.
//   - 15 s for the answer: a server answers a ping addressed to itself
//     without routing it, in milliseconds; 15 s leaves room for a loaded
//     server and for TCP to retransmit a lost segment four times.
const (
	DefaultKeepaliveInterval = 30 * time.Second
	DefaultKeepaliveTimeout  = 15 * time.Second
)

// keepalive pings the own server whenever the connection has read nothing
// for the interval (with stream management, asks for its acknowledgement
// count), and ends the session as a network failure when no answer comes
// within the timeout. It returns when the session ends.
func (c *Client) keepalive(sess *session) {
	interval, timeout := c.cfg.keepaliveInterval, c.cfg.keepaliveTimeout
	if interval <= 0 {
		return
	}
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-sess.ctx.Done():
			return
		case <-timer.C:
		}
		if idle := sess.conn.idle(); idle < interval {
			timer.Reset(interval - idle)
			continue
		}
		ctx, cancel := context.WithTimeout(sess.ctx, timeout)
		var err error
		if sess.managed {
			// With stream management an <r/> is the ping: its <a/> also
			// empties the queue kept for re-sending.
			err = c.sm.Ping(ctx, sess.s)
		} else {
			err = sess.s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: c.account.Domain()}}.TokenReader(), nil)
		}
		cancel()
		var se stanza.Error
		switch {
		case sess.ctx.Err() != nil:
			return
		case err == nil || errors.As(err, &se):
			// Any answer, an error included, says the server is there.
		case sess.conn.idle() < timeout:
			// Something else arrived meanwhile: the server is there, the
			// answer was lost or refused in a way we cannot read.
		default:
			sess.fail(fmt.Errorf("%w: no answer to a ping within %v", ErrNoResponse, timeout))
			return
		}
		timer.Reset(interval)
	}
}
