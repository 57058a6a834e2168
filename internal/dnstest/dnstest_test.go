package dnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestServer(t *testing.T) {
	s := Start(t, map[string][]SRV{
		"_xmpp-client._tcp.example.org": {{Priority: 10, Weight: 1, Port: 5222, Target: "a.example.org"}, {Priority: 5, Port: 5322, Target: "B.example.org."}},
	}, map[string][]netip.Addr{"a.example.org": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")}})
	udp := s.Resolver()
	// Go's resolver speaks DNS over a stream when Dial gives it one.
	tcp := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", s.tcp.Addr().String())
	}}
	ctx := context.Background()
	for name, r := range map[string]*net.Resolver{"udp": udp, "tcp": tcp} {
		t.Run(name, func(t *testing.T) {
			_, srvs, err := r.LookupSRV(ctx, "xmpp-client", "tcp", "example.org")
			if err != nil || len(srvs) != 2 || srvs[0].Target != "b.example.org." || srvs[0].Port != 5322 || srvs[1].Target != "a.example.org." {
				t.Fatalf("LookupSRV: %v, %v", srvs, err)
			}
			ips, err := r.LookupNetIP(ctx, "ip", "a.example.org")
			slices.SortFunc(ips, netip.Addr.Compare)
			if err != nil || !slices.Equal(ips, []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")}) {
				t.Fatalf("LookupNetIP: %v, %v", ips, err)
			}
			_, err = r.LookupNetIP(ctx, "ip", "nowhere.example.org")
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
				t.Fatalf("an unknown name: %v, want not found", err)
			}
		})
	}
}

// A connection the client keeps open does not keep Close waiting.
func TestCloseWithOpenConnection(t *testing.T) {
	s := Start(t, nil, nil)
	c, err := net.Dial("tcp", s.tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// An answered query proves the connection is being served.
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7})
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName("nowhere.example."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	q, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
		t.Fatal(err)
	}
	var n uint16
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil || m.ID != 7 || m.RCode != dnsmessage.RCodeNameError {
		t.Fatalf("answer %+v, %v", m.Header, err)
	}
	s.Close() // with c still open
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection is still open after Close")
	}
}

// TestListenPairPortTaken: the kernel picks the UDP port, and the TCP port
// of the same number may already be taken by another socket. listenPair
// must then try another port pair instead of failing the test that asked
// for a DNS server (the flake seen as "bind: address already in use").
func TestListenPairPortTaken(t *testing.T) {
	calls := 0
	udp, tcp, err := listenPair(func(network, addr string) (net.Listener, error) {
		calls++
		if calls == 1 {
			return nil, &net.OpError{Op: "listen", Net: network, Err: syscall.EADDRINUSE}
		}
		return net.Listen(network, addr)
	})
	if err != nil {
		t.Fatalf("listenPair with the first TCP port taken: %v", err)
	}
	defer udp.Close()
	defer tcp.Close()
	if calls != 2 {
		t.Errorf("listenTCP called %d times, want 2", calls)
	}
	if u, l := udp.LocalAddr().(*net.UDPAddr).Port, tcp.Addr().(*net.TCPAddr).Port; u != l {
		t.Errorf("UDP port %d, TCP port %d: want the same", u, l)
	}
}

// TestListenPairOtherErrors: an error other than a taken port is not
// retried.
func TestListenPairOtherErrors(t *testing.T) {
	calls := 0
	_, _, err := listenPair(func(network, addr string) (net.Listener, error) {
		calls++
		return nil, syscall.EACCES
	})
	if !errors.Is(err, syscall.EACCES) || calls != 1 {
		t.Errorf("got %v after %d calls, want EACCES after 1", err, calls)
	}
}
