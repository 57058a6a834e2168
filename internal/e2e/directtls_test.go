package e2e_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// A client on Prosody's direct TLS port (XEP-0368: TLS from the first byte,
// no StartTLS) gets the same service: its caps are verified, annotations
// are turned on for it, and a cut marks a remote contact stale.
func TestDirectTLS(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)

	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "<show>away</show>",
		client.WithAddress(mont.C2SDirectTLSAddr),
		client.WithTLS(client.DirectTLS), client.WithTLSConfig(mont.TLSConfig()))
	jfull := juliet.JID()
	conn, ok := romeo.Session().Conn().(*tls.Conn)
	if !ok {
		t.Fatalf("the session runs over %T, not TLS", romeo.Session().Conn())
	}
	if st := conn.ConnectionState(); !st.HandshakeComplete || st.ServerName != montague || len(st.PeerCertificates) == 0 ||
		st.PeerCertificates[0].VerifyHostname(montague) != nil {
		t.Fatalf("TLS state: handshake %v, server name %q, %d certificates", st.HandshakeComplete, st.ServerName, len(st.PeerCertificates))
	}

	must(t, n.Cut(montague, capulet))
	rec.expect(ctx, t, "juliet stale", marked(roster.EventStale, jfull, psa.ServerUnavailable, montague))
}
