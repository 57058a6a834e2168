// Package dnstest runs a DNS server on loopback for tests: it answers SRV, A
// and AAAA queries from fixed records over UDP and TCP, so that code which
// resolves names through a net.Resolver is tested against the DNS wire
// protocol and Go's own resolver, not against a replaced function.
package dnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/net/dns/dnsmessage"
)

// SRV is one SRV record of a Server.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string // a host name, or "." for "no service"
}

// Server answers DNS queries from its records; names it has no record of get
// NXDOMAIN. Its zero value is not usable: call Start.
type Server struct {
	udp  net.PacketConn
	tcp  net.Listener
	wg   sync.WaitGroup
	srv  map[string][]SRV
	addr map[string][]netip.Addr

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // open TCP connections
	closed bool
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
// srv maps names such as "_xmpp-client._tcp.example.org" to SRV records,
// addr maps host names to their addresses. Names are matched without the
// final dot and case-insensitively.
func Start(tb interface {
	Helper()
	Fatal(...any)
	Cleanup(func())
}, srv map[string][]SRV, addr map[string][]netip.Addr) *Server {
	tb.Helper()
	udp, tcp, err := listenPair(net.Listen)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{udp: udp, tcp: tcp, srv: map[string][]SRV{}, addr: map[string][]netip.Addr{}, conns: map[net.Conn]struct{}{}}
	for name, rr := range srv {
		s.srv[canonical(name)] = rr
	}
	for name, ips := range addr {
		s.addr[canonical(name)] = ips
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	tb.Cleanup(s.Close)
	return s
}

// listenPairAttempts is how many port pairs listenPair tries.
const listenPairAttempts = 20

// listenPair opens a UDP socket on a free loopback port and a TCP listener
// (made by listenTCP) on the same port. The kernel chooses the UDP port
// without regard to TCP, where another socket may hold that number: then it
// tries a fresh pair, up to listenPairAttempts times.
func listenPair(listenTCP func(network, addr string) (net.Listener, error)) (net.PacketConn, net.Listener, error) {
	var err error
	for range listenPairAttempts {
		var udp net.PacketConn
		udp, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		var tcp net.Listener
		tcp, err = listenTCP("tcp", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("dnstest: no free UDP and TCP port pair in %d attempts: %w", listenPairAttempts, err)
}

// Resolver returns a resolver that asks s, and only s.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			if strings.HasPrefix(network, "tcp") {
				return d.DialContext(ctx, "tcp", s.tcp.Addr().String())
			}
			return d.DialContext(ctx, "udp", s.udp.LocalAddr().String())
		},
	}
}

// Close stops the server, closes the connections it has open, and waits for
// its goroutines.
func (s *Server) Close() {
	s.udp.Close()
	s.tcp.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// track adds c to the open connections, or closes it when the server is
// closed; it reports whether c was added.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 512)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := s.answer(buf[:n]); ok {
			_, _ = s.udp.WriteTo(resp, from)
		}
	}
}

func (s *Server) serveTCP() {
	defer s.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer s.untrack(c)
			for {
				var n uint16
				if err := binary.Read(c, binary.BigEndian, &n); err != nil {
					return
				}
				q := make([]byte, n)
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				resp, ok := s.answer(q)
				if !ok {
					return
				}
				if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp)))); err != nil {
					return
				}
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}()
	}
}

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// answer builds the response to the query msg; ok is false when msg is not
// a query to answer.
func (s *Server) answer(msg []byte) (resp []byte, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := canonical(q.Name.String())
	srvs, hasSRV := s.srv[name] // read only after Start
	ips, hasAddr := s.addr[name]

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !hasSRV && !hasAddr {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	var berr error
	switch q.Type {
	case dnsmessage.TypeSRV:
		for _, r := range srvs {
			target, err := dnsmessage.NewName(canonical(r.Target) + ".")
			if err != nil {
				return nil, false
			}
			berr = errors.Join(berr, b.SRVResource(rr, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target}))
		}
	case dnsmessage.TypeA:
		for _, ip := range ips {
			if ip.Is4() {
				berr = errors.Join(berr, b.AResource(rr, dnsmessage.AResource{A: ip.As4()}))
			}
		}
	case dnsmessage.TypeAAAA:
		for _, ip := range ips {
			if ip.Is6() {
				berr = errors.Join(berr, b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: ip.As16()}))
			}
		}
	}
	if berr != nil {
		return nil, false
	}
	resp, err = b.Finish()
	return resp, err == nil
}
