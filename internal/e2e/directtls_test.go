package e2e_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/dnstest"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// A client on Prosody's direct TLS port (XEP-0368: TLS from the first byte,
// no StartTLS) gets the same service: its caps are verified, annotations
// are turned on for it, and a cut marks a remote contact stale. It finds the
// port as a client on the Internet does, through the _xmpps-client SRV
// record of montague.lit, here served by a DNS server on loopback.
func TestDirectTLS(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	host, port, err := net.SplitHostPort(mont.C2SDirectTLSAddr)
	must(t, err)
	p, err := strconv.ParseUint(port, 10, 16)
	must(t, err)
	dns := dnstest.Start(t, map[string][]dnstest.SRV{
		"_xmpps-client._tcp." + montague: {{Port: uint16(p), Target: "xmpp." + montague}},
	}, map[string][]netip.Addr{"xmpp." + montague: {netip.MustParseAddr(host)}})

	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "<show>away</show>",
		client.WithAddress(""), // no address: look the SRV record up
		client.WithResolver(dns.Resolver()),
		client.WithTLS(client.DirectTLS), client.WithTLSConfig(mont.TLSConfig()))
	if got := romeo.Session().Conn().RemoteAddr().String(); got != mont.C2SDirectTLSAddr {
		t.Fatalf("connected to %s, want the direct TLS port %s", got, mont.C2SDirectTLSAddr)
	}
	jfull := juliet.JID()
	// The session's connection is stream management's counter around the
	// client's stanza limiter around the TLS connection.
	var chain []string
	for c := romeo.Session().Conn(); ; {
		chain = append(chain, fmt.Sprintf("%T", c))
		if _, ok := c.(*tls.Conn); ok {
			break
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			t.Fatalf("the session runs over %v, not TLS", chain)
		}
		c = u.NetConn()
	}
	if got := strings.Join(chain, " > "); got != "*sm.Conn > *client.limitConn > *tls.Conn" {
		t.Fatalf("the session runs over %s", got)
	}
	if st := romeo.Session().ConnectionState(); !st.HandshakeComplete || st.ServerName != montague || len(st.PeerCertificates) == 0 ||
		st.PeerCertificates[0].VerifyHostname(montague) != nil {
		t.Fatalf("TLS state: handshake %v, server name %q, %d certificates", st.HandshakeComplete, st.ServerName, len(st.PeerCertificates))
	}

	must(t, n.Cut(montague, capulet))
	rec.expect(ctx, t, "juliet stale", marked(roster.EventStale, jfull, psa.ServerUnavailable, montague))
}
