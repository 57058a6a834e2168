package cutproxy_test

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/cutproxy"
	"github.com/psakit/psakit/internal/leaktest"
)

// echo serves a line echo on loopback until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write(append(sc.Bytes(), '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, line string) error {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		t.Fatalf("echo %q, want %q", got, line)
	}
	return nil
}

// A cut ends the live connections and refuses new ones; after Restore
// connections go through again, and Observe sees what the target sends on
// them.
func TestCutRestoreObserve(t *testing.T) {
	leaktest.Check(t)
	p, err := cutproxy.New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(t, c, "before"); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if err := roundTrip(t, c, "during"); err == nil {
		t.Fatal("a cut connection still carries data")
	}
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		// Accepted by the kernel, then closed by the proxy.
		if err := roundTrip(t, c2, "new"); err == nil {
			t.Fatal("a new connection went through during the cut")
		}
		c2.Close()
	}
	var mu sync.Mutex
	var seen []byte
	p.Observe(func(b []byte) { mu.Lock(); seen = append(seen, b...); mu.Unlock() })
	p.Restore()
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(t, c3, "after"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(seen) != "after\n" {
		t.Fatalf("observed %q, want %q", seen, "after\n")
	}
}
