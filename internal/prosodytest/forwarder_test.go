package prosodytest

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// A stalled path holds new connections without a byte to the target; Heal
// resets them and lets new ones through.
func TestForwarderStall(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	f, err := newForwarder()
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	f.setTarget(target.Addr().String())

	held := f.stall()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", f.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the stalled path held no connection")
	}

	f.setCut(false) // heal
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("held connection after the heal: read gave %v, want a reset", err)
	}
	select {
	case c := <-accepted:
		t.Fatalf("the held connection reached the target (%v)", c.RemoteAddr())
	default:
	}

	// A new connection goes through.
	c2, err := d.DialContext(ctx, "tcp", f.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-accepted:
		defer in.Close()
		b := make([]byte, 1)
		if _, err := io.ReadFull(in, b); err != nil || b[0] != 'x' {
			t.Fatalf("target read %q, %v", b, err)
		}
	case <-ctx.Done():
		t.Fatal("the healed path forwarded nothing")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
