package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa/psatest"
)

// A stanza over the size or depth limit ends the session with
// ErrStanzaLimit before it is decoded, and the client reconnects as after a
// network failure; stanzas within the limits pass, in plain text and over
// STARTTLS.
func TestStanzaLimits(t *testing.T) {
	const limit = 64 << 10
	cases := []struct {
		name string
		raw  string
	}{
		{"size", `<message from="juliet@capulet.lit/balcony"><body>` + strings.Repeat("x", limit) + `</body></message>`},
		{"depth", `<message from="juliet@capulet.lit/balcony">` + strings.Repeat("<a>", 20) + strings.Repeat("</a>", 20) + `</message>`},
	}
	for _, tls := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name
			if tls {
				name += " over STARTTLS"
			}
			t.Run(name, func(t *testing.T) {
				var srv *psatest.Server
				var ctx context.Context
				opts := []client.Option{client.WithMaxStanzaSize(limit), client.WithMaxStanzaDepth(16)}
				if tls {
					srv, ctx = setup(t, psatest.WithTLS())
					opts = append(opts, client.WithTLS(client.StartTLS), client.WithTLSConfig(srv.ClientTLSConfig()))
				} else {
					srv, ctx = setup(t)
				}
				rec := newRecorder()
				c := dial(ctx, t, srv, rec, opts...)
				rec.nextConn(ctx, t, client.ConnConnected)
				// Just within the limits: the session goes on.
				ok := `<message from="juliet@capulet.lit/balcony"><body>` + strings.Repeat("x", limit/2) + `</body>` +
					strings.Repeat("<a>", 10) + strings.Repeat("</a>", 10) + `</message>`
				if err := srv.SendRaw(ctx, c.JID(), ok); err != nil {
					t.Fatal(err)
				}
				if err := srv.Ping(ctx, c.JID()); err != nil {
					t.Fatalf("the session did not survive a stanza within the limits: %v", err)
				}
				if err := srv.SendRaw(ctx, c.JID(), tc.raw); err != nil {
					t.Fatal(err)
				}
				d := rec.nextConn(ctx, t, client.ConnDisconnected)
				var de *client.DisconnectError
				if !errors.As(d.Err, &de) || de.Reason != client.ReasonNetwork || !errors.Is(de, client.ErrStanzaLimit) || de.Fatal() {
					t.Fatalf("disconnected with %v", d.Err)
				}
				rec.nextConn(ctx, t, client.ConnConnected)
			})
		}
	}
}
