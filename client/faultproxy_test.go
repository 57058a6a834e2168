package client_test

import (
	"context"
	"encoding/xml"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultProxy is a loopback TCP proxy in front of a server that misbehaves on
// demand: it forwards, or freezes (stops forwarding both ways and reading
// while keeping the connections open, like a server under SIGSTOP), and it
// can answer new connections with a script of its own instead.
type faultProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu       sync.Mutex
	thawed   chan struct{} // closed while not frozen
	scripts  []func(net.Conn)
	conns    map[net.Conn]struct{}
	closed   bool
	accepted chan string // the kind of each connection accepted: "forward" or "script"
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target, thawed: make(chan struct{}), conns: map[net.Conn]struct{}{}, accepted: make(chan string, 1000)}
	close(p.thawed)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

// script makes the next connections run f, one each, in order; later
// connections are forwarded again.
func (p *faultProxy) script(f ...func(net.Conn)) {
	p.mu.Lock()
	p.scripts = append(p.scripts, f...)
	p.mu.Unlock()
}

// freeze stops all forwarding, on the open connections and the new ones.
func (p *faultProxy) freeze() {
	p.mu.Lock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default:
	}
	p.mu.Unlock()
}

// thaw resumes forwarding.
func (p *faultProxy) thaw() {
	p.mu.Lock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
	p.mu.Unlock()
}

func (p *faultProxy) gate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.thawed
}

func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	if p.thawed != nil {
		select {
		case <-p.thawed:
		default:
			close(p.thawed)
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.mu.Lock()
		var f func(net.Conn)
		if len(p.scripts) > 0 {
			f, p.scripts = p.scripts[0], p.scripts[1:]
		}
		p.mu.Unlock()
		p.wg.Add(1)
		if f != nil {
			p.accepted <- "script"
			go func() {
				defer p.wg.Done()
				defer c.Close()
				f(c)
			}()
			continue
		}
		p.accepted <- "forward"
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

func (p *faultProxy) forward(c net.Conn) {
	defer c.Close()
	// A frozen server accepts TCP (the kernel does) but says nothing.
	<-p.gate()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	defer up.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		defer dst.Close()
		defer src.Close()
		buf := make([]byte, 32*1024)
		for {
			<-p.gate()
			n, err := src.Read(buf)
			if n > 0 {
				<-p.gate()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	wg.Wait()
}

// nextAccepted waits for the proxy to accept a connection and returns its
// kind.
func (p *faultProxy) nextAccepted(ctx context.Context, t *testing.T) string {
	t.Helper()
	select {
	case k := <-p.accepted:
		return k
	case <-ctx.Done():
		t.Fatal("the proxy accepted no connection")
		return ""
	}
}

// silent accepts the connection and never says anything, until the proxy
// closes.
func silent(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// slowLoris sends a stream header and then whitespace, one byte every 50 ms,
// for ever: the client always has something to read, and never enough.
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
		time.Sleep(50 * time.Millisecond) // the hostile server's pace, not a wait for an event
	}
}

// saslFailure returns a script that offers PLAIN and answers the
// authentication with a SASL failure with condition cond and the text text.
func saslFailure(cond, text string) func(net.Conn) {
	return func(c net.Conn) {
		d := xml.NewDecoder(c)
		if !readUntil(d, "stream") {
			return
		}
		_, err := io.WriteString(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='montague.lit' id='x'>"+
			"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>")
		if err != nil || !readUntil(d, "auth") {
			return
		}
		failure := "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><" + cond + "/>"
		if text != "" {
			failure += "<text>" + text + "</text>"
		}
		_, _ = io.WriteString(c, failure+"</failure></stream:stream>")
		_ = d.Skip()
	}
}

// readUntil reads tokens until a start element named local.
func readUntil(d *xml.Decoder, local string) bool {
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == local {
			return true
		}
	}
}

// waitBlockedWrite waits until a goroutine whose stack contains one of fns
// is blocked writing to a socket: what a client does when its server
// stopped reading and the socket buffers are full.
func waitBlockedWrite(ctx context.Context, t *testing.T, fns ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			for _, fn := range fns {
				if strings.Contains(g, fn) && strings.Contains(g, "internal/poll.(*FD).Write") && strings.Contains(g, "[IO wait") {
					return
				}
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("no goroutine of %s blocked in a write", fns)
		}
	}
}

type netConn = net.Conn

func xmlCharData(s string) xml.CharData { return xml.CharData(s) }

func xmlStart(local string) xml.StartElement { return xml.StartElement{Name: xml.Name{Local: local}} }
