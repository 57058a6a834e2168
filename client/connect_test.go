package client

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
)

func TestServerAddrs(t *testing.T) {
	records := map[string][]*net.SRV{
		"_xmpp-client._tcp.example.org":  {{Target: "a.example.org.", Port: 5222, Priority: 0}, {Target: "b.example.org.", Port: 15222, Priority: 10}},
		"_xmpps-client._tcp.example.org": {{Target: "tls.example.org.", Port: 443}},
		"_xmpp-client._tcp.none.example": {{Target: ".", Port: 0}},
	}
	lookup := func(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
		key := "_" + service + "._" + proto + "." + name
		if rr, ok := records[key]; ok {
			return key, rr, nil
		}
		return "", nil, &net.DNSError{Err: "no such host", Name: key, IsNotFound: true}
	}
	for _, tc := range []struct {
		name   string
		cfg    config
		domain string
		want   []string
		err    bool
	}{
		{"an explicit address wins", config{addr: "127.0.0.1:5299"}, "example.org", []string{"127.0.0.1:5299"}, false},
		{"StartTLS uses xmpp-client in order", config{}, "example.org", []string{"a.example.org.:5222", "b.example.org.:15222"}, false},
		{"direct TLS uses xmpps-client", config{tlsMode: DirectTLS}, "example.org", []string{"tls.example.org.:443"}, false},
		{"no record: the domain on 5222", config{}, "other.example", []string{"other.example:5222"}, false},
		{"no record: the domain on 5223 for direct TLS", config{tlsMode: DirectTLS}, "other.example", []string{"other.example:5223"}, false},
		{"a single '.' target means no service", config{}, "none.example", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.lookupSRV = lookup
			got, err := serverAddrs(context.Background(), tc.domain, &cfg)
			if tc.err != errors.Is(err, ErrNoService) || !slices.Equal(got, tc.want) {
				t.Fatalf("serverAddrs = %v, %v; want %v (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	// IP literals only: resolving a name could ask a DNS server.
	got, err := loopbackOnly(ctx, net.DefaultResolver, []string{"127.0.0.1:5222", "[::1]:5222", "127.1.2.3:5222"})
	if err != nil || !slices.Equal(got, []string{"127.0.0.1:5222", "[::1]:5222", "127.1.2.3:5222"}) {
		t.Fatalf("loopback addresses: %v, %v", got, err)
	}
	for _, addrs := range [][]string{{"192.0.2.1:5222"}, {"[2001:db8::1]:5222"}, {"127.0.0.1:5222", "192.0.2.1:5222"}} {
		if _, err := loopbackOnly(ctx, net.DefaultResolver, addrs); !errors.Is(err, ErrInsecure) {
			t.Errorf("%v: %v, want ErrInsecure", addrs, err)
		}
	}
}
