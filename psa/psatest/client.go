package psatest

import (
	"context"
	"crypto/tls"
	"net"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/bind"
)

// Dial connects a mellium client session to the server as user, with
// password: over StartTLS trusting the server's certificate authority when
// the server was created WithTLS, over TLS from the first byte with
// WithDirectTLS, else in plain text; SASL PLAIN; and the feature of
// client.BindResource with user's resource (the server chooses one when user
// is a bare JID). ctx bounds the connection and negotiation only.
//
// The session is not served yet: call its Serve method with the client's
// handler. Close it with Close, which only ends the stream, and close its
// connection with Conn().Close().
func (s *Server) Dial(ctx context.Context, user jid.JID, password string) (*xmpp.Session, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	features := []xmpp.StreamFeature{
		xmpp.SASL("", password, sasl.Plain),
		bind.Feature(user.Resourcepart()),
	}
	state := xmpp.Secure // SASL needs it: plain text is fine on loopback
	switch cfg := s.ClientTLSConfig(); {
	case cfg != nil && s.directTLS:
		c = tls.Client(c, cfg)
	case cfg != nil:
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(cfg)}, features...)
		state = 0
	}
	sess, err := xmpp.NewSession(ctx, user.Domain(), user.Bare(), c, state,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		c.Close()
		return nil, err
	}
	return sess, nil
}
