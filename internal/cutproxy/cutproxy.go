// Package cutproxy is a loopback TCP proxy in front of a server's port
// whose connections a test or fault run can cut all at once, both ways, as
// a network failure does (no end of stream on either side), and refuse
// until restored.
package cutproxy

import (
	"io"
	"net"
	"sync"
)

// Proxy forwards the connections it accepts to its target.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu      sync.Mutex
	down    bool
	observe func([]byte)
	conns   map[net.Conn]struct{}
}

// New listens on a free loopback port and forwards to target (host:port).
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address to connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Observe has f see every byte the target sends on the connections
// accepted from now on (nil: none), in order, before it is passed on. f
// runs on the proxy's goroutines, one per connection.
func (p *Proxy) Observe(f func([]byte)) {
	p.mu.Lock()
	p.observe = f
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down, observe := p.down, p.observe
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		var down2 io.Writer = c
		if observe != nil {
			down2 = observer{c, observe}
		}
		p.wg.Add(2)
		go p.pipe(up, c, up, c)
		go p.pipe(down2, up, up, c)
	}
}

// observer shows what is written through it to f first.
type observer struct {
	w io.Writer
	f func([]byte)
}

func (o observer) Write(b []byte) (int, error) {
	o.f(b)
	return o.w.Write(b)
}

func (p *Proxy) pipe(dst io.Writer, src io.Reader, a, b net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = a.Close()
	_ = b.Close()
}

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// Close stops the proxy, cuts its connections, and waits for its
// goroutines.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
