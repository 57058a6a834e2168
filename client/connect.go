package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/bind"
	"github.com/psakit/psakit/internal/sm"
)

// BindResource returns a stream feature that binds the resource name on the
// client side of a session, or lets the server choose when name is empty.
//
// mellium v0.22's xmpp.BindResource writes the session's JID where the
// resource belongs, which is always empty on the client side, so the server
// picks one; this feature sends the name. The server may still assign another resource: read
// Session.LocalAddr after negotiation. A bound JID whose bare part is not
// the session's (the account's) fails the negotiation with a *BindError.
func BindResource(name string) xmpp.StreamFeature { return bind.Feature(name) }

// saslFeature returns the SASL feature with the mechanisms allowed on this
// connection, and tags its failures as ErrAuth (ErrTemporaryAuth when the
// server says to try later) unless the connection itself failed.
func saslFeature(account jid.JID, password string, secure bool) xmpp.StreamFeature {
	mechs := []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha1Plus, sasl.ScramSha256, sasl.ScramSha1, sasl.Plain}
	if !secure {
		// Without TLS there is nothing to bind a -PLUS mechanism to.
		mechs = []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha1, sasl.Plain}
	}
	f := xmpp.SASL("", password, mechs...)
	negotiate := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := negotiate(ctx, s, data)
		if err != nil && !isTransport(err) {
			kind := ErrAuth
			if transientSASL(saslCondition(err)) {
				kind = ErrTemporaryAuth
			}
			err = fmt.Errorf("%w: %s: %w", kind, account.Bare(), err)
		}
		return mask, rw, err
	}
	return f
}

// dialConn opens the TCP (and, for DirectTLS, TLS) connection. Under TLS is
// a *guardedConn, which returns with it (raw).
func dialConn(ctx context.Context, account jid.JID, cfg *config) (conn net.Conn, raw *guardedConn, err error) {
	d := net.Dialer{Resolver: cfg.resolver}
	addrs, err := serverAddrs(ctx, account.Domainpart(), cfg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.tlsMode == PlainText {
		// Check before dialing: nothing may leave the machine in plain text.
		if addrs, err = loopbackOnly(ctx, cfg.resolver, addrs); err != nil {
			return nil, nil, err
		}
	}
	var errs []error
	for _, addr := range addrs {
		tcp, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g := newGuardedConn(tcp, cfg.writeTimeout)
		if cfg.tlsMode == DirectTLS {
			tc := tls.Client(g, tlsConfig(account, cfg))
			if err := tc.HandshakeContext(ctx); err != nil {
				g.Close()
				errs = append(errs, fmt.Errorf("TLS with %s: %w", addr, err))
				continue
			}
			return tc, g, nil
		}
		return g, g, nil
	}
	return nil, nil, errors.Join(errs...)
}

// serverAddrs returns the addresses to try, in order: the configured one, or
// the SRV targets for the TLS mode, or the domain on the default port.
func serverAddrs(ctx context.Context, domain string, cfg *config) ([]string, error) {
	if cfg.addr != "" {
		return []string{cfg.addr}, nil
	}
	service, port := "xmpp-client", "5222"
	if cfg.tlsMode == DirectTLS {
		service, port = "xmpps-client", "5223"
	}
	_, srvs, err := cfg.lookupSRV(ctx, service, "tcp", domain)
	if err != nil {
		// No record, or no DNS at all: fall back to the domain itself
		// (RFC 6120 §3.2.2).
		srvs = nil
	}
	// RFC 6120 §3.2.1: a single record with target "." means no service.
	if len(srvs) == 1 && srvs[0].Target == "." {
		return nil, fmt.Errorf("%w: %s has no %s service", ErrNoService, domain, service)
	}
	addrs := make([]string, 0, len(srvs)+1)
	for _, s := range srvs {
		addrs = append(addrs, net.JoinHostPort(s.Target, strconv.Itoa(int(s.Port))))
	}
	if len(addrs) == 0 {
		addrs = append(addrs, net.JoinHostPort(domain, port))
	}
	return addrs, nil
}

func tlsConfig(account jid.JID, cfg *config) *tls.Config {
	c := cfg.tlsConfig.Clone()
	if c == nil {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = account.Domainpart()
	}
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	if cfg.tlsMode == DirectTLS && len(c.NextProtos) == 0 {
		c.NextProtos = []string{"xmpp-client"} // XEP-0368
	}
	return c
}

// loopbackOnly resolves each host:port with r and returns them as IP:port, or
// ErrInsecure if any host is, or resolves to, an address that is not a
// loopback address.
func loopbackOnly(ctx context.Context, r *net.Resolver, addrs []string) ([]string, error) {
	out := make([]string, 0, len(addrs))
	for _, addr := range addrs {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if !ip.Unmap().IsLoopback() {
				return nil, fmt.Errorf("%w: %s is %s", ErrInsecure, host, ip)
			}
			out = append(out, net.JoinHostPort(ip.Unmap().String(), port))
		}
	}
	return out, nil
}

// negotiate opens an XMPP session on conn: StartTLS when asked, SASL, and
// resource binding, or the resumption of m's session (m.Outcome says which).
func negotiate(ctx context.Context, conn net.Conn, account jid.JID, password string, cfg *config, m *sm.Manager) (*xmpp.Session, error) {
	var (
		features []xmpp.StreamFeature
		state    xmpp.SessionState
		lc       = newLimitConn(conn, cfg) // the stanza limits
		rw       = m.Wrap(lc)              // stream management counts above them
	)
	switch cfg.tlsMode {
	case StartTLS:
		features = append(features, m.WrapStartTLS(lc.startTLS(xmpp.StartTLS(tlsConfig(account, cfg)), cfg)), saslFeature(account, password, true))
	case DirectTLS:
		state = xmpp.Secure
		features = append(features, saslFeature(account, password, true))
	case PlainText:
		// mellium runs SASL only on a secure stream; the caller checked that
		// this one never leaves the machine.
		state = xmpp.Secure
		features = append(features, saslFeature(account, password, false))
	}
	// Binds cfg.resource, or resumes the session that dropped.
	features = append(features, m.Bind())
	origin := account.Bare()
	return xmpp.NewSession(ctx, account.Domain(), origin, rw, state, xmpp.NewNegotiator(
		func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
}
