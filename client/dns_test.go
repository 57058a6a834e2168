package client_test

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/dnstest"
	"github.com/psakit/psakit/psa/psatest"
)

var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

// TestDialThroughDNS checks SRV lookup, and the host names it gives, against
// a DNS server on loopback through Go's resolver (WithResolver).
func TestDialThroughDNS(t *testing.T) {
	srv, ctx := setup(t)
	port := portOf(t, srv.Addr())
	closed := closedPort(t)

	t.Run("SRV targets in priority order", func(t *testing.T) {
		// The preferred target refuses connections: the client goes on to the
		// next, and the names resolve through the same server.
		dns := dnstest.Start(t, map[string][]dnstest.SRV{
			"_xmpp-client._tcp.montague.lit": {
				{Priority: 20, Port: port, Target: "xmpp.montague.lit"},
				{Priority: 10, Port: closed, Target: "down.montague.lit"},
			},
		}, map[string][]netip.Addr{"xmpp.montague.lit": loopback, "down.montague.lit": loopback})
		c, err := client.Dial(ctx, romeo, password, client.WithTLS(client.PlainText), client.WithResolver(dns.Resolver()))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		if got := c.Session().Conn().RemoteAddr().String(); got != srv.Addr() {
			t.Errorf("connected to %s, want %s", got, srv.Addr())
		}
	})
	t.Run("no service", func(t *testing.T) {
		dns := dnstest.Start(t, map[string][]dnstest.SRV{"_xmpp-client._tcp.montague.lit": {{Target: "."}}}, nil)
		_, err := client.Dial(ctx, romeo, password, client.WithTLS(client.PlainText), client.WithResolver(dns.Resolver()))
		if !errors.Is(err, client.ErrNoService) {
			t.Fatalf("Dial: %v, want ErrNoService", err)
		}
	})
	t.Run("plain text to a name that is not on loopback", func(t *testing.T) {
		dns := dnstest.Start(t, map[string][]dnstest.SRV{
			"_xmpp-client._tcp.montague.lit": {{Port: port, Target: "xmpp.montague.lit"}},
		}, map[string][]netip.Addr{"xmpp.montague.lit": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.7")}})
		_, err := client.Dial(ctx, romeo, password, client.WithTLS(client.PlainText), client.WithResolver(dns.Resolver()))
		if !errors.Is(err, client.ErrInsecure) {
			t.Fatalf("Dial: %v, want ErrInsecure", err)
		}
	})
}

// portOf returns the port of hostport.
func portOf(t *testing.T, hostport string) uint16 {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(p)
}

// closedPort returns a loopback TCP port nothing listens on.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return uint16(port)
}

// TestDirectTLSThroughDNS checks that direct TLS looks up _xmpps-client
// (XEP-0368), that the dialer resolves the target through the same resolver,
// and that the certificate is checked against the account's domain, not the
// SRV target.
func TestDirectTLSThroughDNS(t *testing.T) {
	srv, ctx := setup(t, psatest.WithDirectTLS())
	port := portOf(t, srv.Addr())
	dns := dnstest.Start(t, map[string][]dnstest.SRV{
		"_xmpps-client._tcp.montague.lit": {{Port: port, Target: "xmpps.montague.lit"}},
		"_xmpp-client._tcp.montague.lit":  {{Port: closedPort(t), Target: "xmpps.montague.lit"}},
	}, map[string][]netip.Addr{"xmpps.montague.lit": loopback})
	c, err := client.Dial(ctx, romeo, password, client.WithTLS(client.DirectTLS),
		client.WithTLSConfig(srv.ClientTLSConfig()), client.WithResolver(dns.Resolver()))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got := c.Session().Conn().RemoteAddr().String(); got != srv.Addr() {
		t.Errorf("connected to %s, want %s", got, srv.Addr())
	}
}
