package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"mellium.im/xmpp"

	"github.com/psakit/psakit/internal/stanzalimit"
)

// Defaults of the stanza limits.
const (
	// DefaultMaxStanzaSize is the most bytes a stanza read from the server
	// may have: 4 MiB. Prosody limits what it accepts from clients to
	// 256 KiB and from other servers to 512 KiB, so no stanza from a remote
	// peer comes near it; the margin is for what the account's own server
	// writes, a roster of some 20,000 items in one answer. Decoding a stanza
	// of the limit costs a few times its size, transiently.
	DefaultMaxStanzaSize = 4 << 20
	// DefaultMaxStanzaDepth is the most elements a stanza may nest, itself
	// included: 64.
	DefaultMaxStanzaDepth = 64
)

// ErrStanzaLimit: the server sent a stanza over the size or depth limit
// (WithMaxStanzaSize, WithMaxStanzaDepth). The session ends, as after a
// network failure, and the client reconnects.
var ErrStanzaLimit = errors.New("client: stanza over the size or depth limit")

// limitConn checks the bytes read from the server with a stanzalimit
// Scanner before the XML decoder sees them. Once STARTTLS is negotiated, the
// bytes it reads are TLS records: it stops checking, and another limitConn
// wraps the TLS connection.
type limitConn struct {
	net.Conn
	sc  stanzalimit.Scanner
	off atomic.Bool
}

func newLimitConn(c net.Conn, cfg *config) *limitConn {
	return &limitConn{Conn: c, sc: stanzalimit.Scanner{MaxSize: cfg.maxStanzaSize, MaxDepth: cfg.maxStanzaDepth}}
}

// Read implements io.Reader.
func (c *limitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.off.Load() {
		if lerr := c.sc.Scan(p[:n]); lerr != nil {
			return 0, fmt.Errorf("%w: %w", ErrStanzaLimit, lerr)
		}
	}
	return n, err
}

// NetConn returns the connection the limiter reads from: a *tls.Conn once
// TLS is up, as tls.Conn.NetConn returns the one under TLS.
func (c *limitConn) NetConn() net.Conn { return c.Conn }

// ConnectionState returns the TLS state of the connection, for channel
// binding; the zero value before TLS.
func (c *limitConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// startTLS wraps the STARTTLS feature f so that the TLS connection it
// returns is checked in turn, and c no longer checks the records.
func (c *limitConn) startTLS(f xmpp.StreamFeature, cfg *config) xmpp.StreamFeature {
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if nc, ok := rw.(net.Conn); ok && err == nil {
			c.off.Store(true)
			rw = newLimitConn(nc, cfg)
		}
		return mask, rw, err
	}
	return f
}
