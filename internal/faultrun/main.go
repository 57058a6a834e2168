// Command faultrun measures how long psakit's client takes to notice, or to
// get out of, what a failing or hostile server does: the figures of
// RELIABILITY.md. It runs only on loopback: scripted servers, psatest, and
// Prosody (for the frozen server) started by internal/prosodytest.
//
//	go run ./internal/faultrun [-runs 5] [-only dial,close,frozen]
//	go run ./internal/faultrun -only storm [-n 200]
//	go run ./internal/faultrun -only remote [-runs 5] [-soak 10m]
//
// Nothing here is a test: the figures are measured, never asserted.
package main

import (
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/psa/psatest"
)

var romeo = jid.MustParse("romeo@montague.lit")

const password = "pw"

func main() {
	runs := flag.Int("runs", 5, "measurements per figure")
	only := flag.String("only", "dial,close,frozen", "which figures: dial, close, frozen, storm, remote (comma-separated)")
	soakFor := flag.Duration("soak", 10*time.Minute, "for -only remote: how long the run without an outage lasts (0: none)")
	storms := flag.Int("n", 200, "reconnect storms (SIGKILL and restart of the client's Prosody) for -only storm")
	heapProfile := flag.String("heapprofile", "", "for -only storm: write a heap profile taken after the storms to this file")
	flag.Parse()
	want := func(s string) bool { return slices.Contains(strings.Split(*only, ","), s) }
	err := run(*runs, want)
	if err == nil && want("storm") {
		err = reportStorm(storm(*storms, time.Minute, *heapProfile))
	}
	if err == nil && want("remote") {
		err = remoteFigures(*runs, *soakFor)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultrun:", err)
		os.Exit(1)
	}
}

func run(runs int, want func(string) bool) error {
	if want("dial") {
		for _, f := range []struct {
			name   string
			script func(net.Conn)
		}{{"silent server", silent}, {"slow-loris server (1 byte/s)", slowLoris}} {
			ds, err := measure(runs, func() (time.Duration, error) { return dialHostile(f.script) })
			if err != nil {
				return err
			}
			report("Dial with a 1 s context, "+f.name, ds)
		}
	}
	if want("close") {
		ds, err := measure(runs, closeStoppedReader)
		if err != nil {
			return err
		}
		report("Close, server stopped reading (client blocked in a write)", ds)
	}
	if want("frozen") {
		for _, k := range []struct {
			name     string
			interval time.Duration
		}{{"-keepalive 5s", 5 * time.Second}, {"default keepalive", client.DefaultKeepaliveInterval}} {
			ds, err := measure(runs, func() (time.Duration, error) { return frozenProsody(k.interval) })
			if err != nil {
				return err
			}
			report("Prosody frozen (SIGSTOP) -> ConnDisconnected, "+k.name, ds)
		}
	}
	return nil
}

func measure(runs int, f func() (time.Duration, error)) ([]time.Duration, error) {
	var ds []time.Duration
	for range runs {
		d, err := f()
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func report(what string, ds []time.Duration) {
	slices.Sort(ds)
	r := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	fmt.Printf("%-62s n=%d min %s median %s max %s\n", what, len(ds), r(ds[0]), r(ds[len(ds)/2]), r(ds[len(ds)-1]))
}

// scripted listens on loopback and runs script on every connection.
func scripted(script func(net.Conn)) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				script(c)
			}()
		}
	}()
	return ln.Addr().String(), func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}

func silent(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

func slowLoris(c net.Conn) {
	go func() { _, _ = io.Copy(io.Discard, c) }()
	head := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='montague.lit' id='x'>"
	for i := 0; ; i++ {
		b := byte(' ')
		if i < len(head) {
			b = head[i]
		}
		if _, err := c.Write([]byte{b}); err != nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// dialHostile measures Dial with a 1 s context against script.
func dialHostile(script func(net.Conn)) (time.Duration, error) {
	addr, stop, err := scripted(script)
	if err != nil {
		return 0, err
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	c, err := client.Dial(ctx, romeo, password, client.WithAddress(addr), client.WithTLS(client.PlainText))
	d := time.Since(start)
	if err == nil {
		c.Close()
		return 0, errors.New("dialing a hostile server succeeded")
	}
	return d, nil
}

// proxy forwards to target until frozen; frozen, it neither reads nor
// writes, and keeps the connections open.
type proxy struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	thaw   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, thaw: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
	return p, nil
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32*1024)
	for {
		if p.frozen.Load() {
			<-p.thaw
			return
		}
		n, err := src.Read(buf)
		if p.frozen.Load() {
			<-p.thaw
			return
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	close(p.thaw)
	p.wg.Wait()
}

// closeStoppedReader measures Close while the client is blocked writing to
// a server that stopped reading.
func closeStoppedReader() (time.Duration, error) {
	srv := psatest.NewServer(psatest.WithUser("romeo", password))
	defer srv.Close()
	p, err := newProxy(srv.Addr())
	if err != nil {
		return 0, err
	}
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, romeo, password, client.WithAddress(p.ln.Addr().String()), client.WithTLS(client.PlainText))
	if err != nil {
		return 0, err
	}
	p.frozen.Store(true)
	// Fill the socket buffers: Send blocks once they are full.
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	body := strings.Repeat("x", 256*1024)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			msg := stanza.Message{To: jid.MustParse("juliet@capulet.lit"), Type: stanza.ChatMessage}.Wrap(
				xmlstream.Wrap(xmlstream.Token(xmlCharData(body)), xmlStart("body")))
			if err := c.Send(context.Background(), msg); err != nil {
				return
			}
			last.Store(time.Now().UnixNano())
		}
	}()
	// Blocked: no Send completed for a second.
	for time.Since(time.Unix(0, last.Load())) < time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	_ = c.Close()
	d := time.Since(start)
	<-sent
	return d, nil
}

// frozenProsody measures the time from SIGSTOP of the client's own Prosody
// to ConnDisconnected, with the keepalive interval given (its timeout: as
// the examples' -keepalive flag sets it).
func frozenProsody(interval time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := prosodytest.NewNetwork(ctx, nil, prosodytest.Spec{Domain: "montague.lit", Users: map[string]string{"romeo": password}})
	if err != nil {
		return 0, err
	}
	defer n.Close()
	srv := n.Server("montague.lit")
	events := make(chan client.ConnEvent, 100)
	c, err := client.Dial(ctx, romeo, password,
		client.WithAddress(srv.C2SAddr), client.WithTLS(client.PlainText),
		client.WithKeepalive(interval, 0),
		client.OnConnection(func(e client.ConnEvent) { events <- e }))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if err := srv.Freeze(); err != nil {
		return 0, err
	}
	defer func() { _ = srv.Thaw() }()
	for {
		select {
		case e := <-events:
			if e.Kind == client.ConnDisconnected {
				return time.Since(start), nil
			}
		case <-ctx.Done():
			return 0, errors.New("the frozen server was never noticed")
		}
	}
}

func xmlCharData(s string) xml.CharData { return xml.CharData(s) }

func xmlStart(local string) xml.StartElement { return xml.StartElement{Name: xml.Name{Local: local}} }
