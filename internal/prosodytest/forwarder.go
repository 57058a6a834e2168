package prosodytest

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// forwarder is a loopback TCP forwarder on one s2s path (from one server to
// another). While cut, it resets its live connections and every new one.
// While blackholed, it passes nothing on: connections stay open, new ones
// are accepted, and the bytes wait (as TCP retransmits them) until the
// blackhole ends. While stalled, it accepts new connections and holds them
// without a byte either way, until it is healed or cut (then it resets
// them).
type forwarder struct {
	ln net.Listener

	mu      sync.Mutex
	target  string
	cut     bool
	stalled bool
	closed  bool
	conns   map[net.Conn]struct{}
	held    map[net.Conn]struct{}
	holding chan struct{} // closed when a connection is held; replaced by each stall
	hole    chan struct{} // non-nil while blackholed; closed when it ends
	wg      sync.WaitGroup
}

func newForwarder() (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, conns: make(map[net.Conn]struct{}), held: make(map[net.Conn]struct{}), holding: make(chan struct{})}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

func (f *forwarder) setTarget(addr string) {
	f.mu.Lock()
	f.target = addr
	f.mu.Unlock()
}

// reset closes c with an RST, as a refused or broken connection looks.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		cut, target, closed := f.cut, f.target, f.closed
		if f.stalled && !cut && !closed {
			f.held[c] = struct{}{}
			select {
			case <-f.holding:
			default:
				close(f.holding)
			}
			f.mu.Unlock()
			continue
		}
		f.mu.Unlock()
		if cut || closed || target == "" {
			reset(c)
			continue
		}
		f.wg.Add(1)
		go f.pipe(c, target)
	}
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut || f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *forwarder) pipe(in net.Conn, target string) {
	defer f.wg.Done()
	out, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		reset(in)
		return
	}
	if !f.track(in) {
		reset(in)
		reset(out)
		return
	}
	if !f.track(out) {
		f.untrack(in)
		reset(in)
		reset(out)
		return
	}
	defer f.untrack(in)
	defer f.untrack(out)

	errc := make(chan error, 2)
	cp := func(dst, src net.Conn) {
		_, err := io.Copy(dst, holdReader{f, src})
		if err == nil {
			// A clean close (FIN) travels on as a clean close.
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}
		errc <- err
	}
	go cp(out, in)
	go cp(in, out)
	err1 := <-errc
	if err1 != nil {
		reset(in)
		reset(out)
	}
	err2 := <-errc
	if err2 != nil && !errors.Is(err2, net.ErrClosed) {
		reset(in)
		reset(out)
	}
	_ = in.Close()
	_ = out.Close()
}

// holdReader reads from r and holds what it read while its forwarder is
// blackholed.
type holdReader struct {
	f *forwarder
	r io.Reader
}

func (h holdReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.f.mu.Lock()
	hole := h.f.hole
	h.f.mu.Unlock()
	if hole != nil {
		<-hole
	}
	return n, err
}

// setBlackhole starts (true) or ends (false) a blackhole on the path.
func (f *forwarder) setBlackhole(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case on && f.hole == nil:
		f.hole = make(chan struct{})
	case !on && f.hole != nil:
		close(f.hole)
		f.hole = nil
	}
}

// setCut cuts (true) or heals (false) the path. Cutting resets every live
// connection. Both end a stall (the held connections are reset) and a
// blackhole.
func (f *forwarder) setCut(cut bool) {
	f.mu.Lock()
	f.cut = cut
	f.stalled = false
	if f.hole != nil {
		close(f.hole)
		f.hole = nil
	}
	var live []net.Conn
	if cut {
		for c := range f.conns {
			live = append(live, c)
		}
	}
	for c := range f.held {
		live = append(live, c)
	}
	clear(f.held)
	f.mu.Unlock()
	for _, c := range live {
		reset(c)
	}
}

// stall makes the path hold new connections (accepted, never answered, as
// a route that drops packets after the handshake looks) until setCut. It
// returns a channel closed when it holds one. Live connections stay as
// they are.
func (f *forwarder) stall() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = false
	f.stalled = true
	f.holding = make(chan struct{})
	return f.holding
}

func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	if f.hole != nil {
		close(f.hole)
		f.hole = nil
	}
	var live []net.Conn
	for c := range f.conns {
		live = append(live, c)
	}
	for c := range f.held {
		live = append(live, c)
	}
	clear(f.held)
	f.mu.Unlock()
	_ = f.ln.Close()
	for _, c := range live {
		reset(c)
	}
	f.wg.Wait()
}
