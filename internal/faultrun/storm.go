package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

// stormResult is what a reconnect storm measured.
type stormResult struct {
	storms, survived int
	back             []time.Duration // server restarted -> romeo's models equal the truth
	goroutines       [4]int          // before the psakit clients, before the storms, after them, after Close
	heap             [2]uint64       // live heap after GC before and after the storms
	err              error           // why the run stopped early
}

// changes wakes up waiters on every client event.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func (c *changes) notify() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

func (c *changes) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// until waits until cond returns "" (checked now and after every event),
// or returns the last difference when ctx ends.
func (c *changes) until(ctx context.Context, cond func() string) error {
	for {
		next := c.next()
		why := cond()
		if why == "" {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), why)
		}
	}
}

// storm kills the client's own Prosody with SIGKILL n times and restarts
// it, with two psakit clients on it (romeo and benvolio, in one room) and
// juliet on another server changing her status while it is down. After
// every restart it waits, at most perStorm, until romeo's roster and room
// equal the servers' truth, and measures how long that took.
//
// If heapProfile is not empty, a heap profile taken after the storms is
// written there (go tool pprof -sample_index=inuse_space).
func storm(n int, perStorm time.Duration, heapProfile string) (res stormResult) {
	res.storms = n
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startCtx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelStart()
	const (
		mont = prosodytest.Montague
		capu = prosodytest.Capulet
		pw   = prosodytest.Password
	)
	netw, err := prosodytest.NewNetwork(startCtx, nil,
		prosodytest.Spec{
			Domain: mont, MUC: prosodytest.Conference,
			Users: map[string]string{"romeo": pw, "benvolio": pw},
			Roster: map[string]map[string]string{
				"romeo":    {"juliet@" + capu: "both", "benvolio@" + mont: "both"},
				"benvolio": {"romeo@" + mont: "both"},
			},
			PSAOptions: prosodytest.FastPSA(),
		},
		prosodytest.Spec{
			Domain:     capu,
			Users:      map[string]string{"juliet": pw},
			Roster:     map[string]map[string]string{"juliet": {"romeo@" + mont: "both"}},
			PSAOptions: prosodytest.FastPSA(),
		})
	if err != nil {
		res.err = err
		return res
	}
	defer netw.Close()
	srv := netw.Server(mont)
	room := "storm@" + prosodytest.Conference

	juliet, err := rawclient.Dial(startCtx, rawclient.Config{Addr: netw.Server(capu).C2SAddr, Domain: capu, User: "juliet", Password: pw, Resource: "balcony"})
	if err != nil {
		res.err = err
		return res
	}
	defer juliet.Close()
	if err := juliet.SendPresence(startCtx, "<status>storm 0</status>"); err != nil {
		res.err = err
		return res
	}

	ch := &changes{ch: make(chan struct{})}
	var disconnects atomic.Int64
	opts := func(resource string) []client.Option {
		return []client.Option{
			client.WithAddress(srv.C2SAddr), client.WithTLS(client.PlainText),
			client.WithResource(resource),
			client.WithReconnect(50*time.Millisecond, 500*time.Millisecond),
			client.WithSettle(2 * time.Second),
			client.WithRemoteCheck(0), // the storms measure mod_psa and reconnects
		}
	}
	romeoOpts := append(opts("lane"),
		client.OnRoster(func(roster.Event) { ch.notify() }),
		client.OnRoom(func(mucwatch.Event) { ch.notify() }),
		client.OnConnection(func(e client.ConnEvent) {
			if e.Kind == client.ConnDisconnected {
				disconnects.Add(1)
			}
			ch.notify()
		}))
	res.goroutines[0] = runtime.NumGoroutine()
	rom, err := client.Dial(startCtx, romeo, pw, romeoOpts...)
	if err != nil {
		res.err = err
		return res
	}
	defer rom.Close()
	ben, err := client.Dial(startCtx, jid.MustParse("benvolio@"+mont), pw, opts("square")...)
	if err != nil {
		res.err = err
		return res
	}
	defer ben.Close()
	for _, j := range []struct {
		c    *client.Client
		nick string
	}{{rom, "Romeo"}, {ben, "Benvolio"}} {
		if err := j.c.Join(startCtx, jid.MustParse(room+"/"+j.nick)); err != nil {
			res.err = err
			return res
		}
	}

	jfull := juliet.JID()
	bfull := ben.JID().String()
	truth := func(status string) func() string {
		return func() string {
			if rom.Session() == nil {
				return "romeo is not connected"
			}
			j, ok := rom.Roster().Resource(jid.MustParse(jfull))
			if !ok || !j.Fresh() || j.StatusText() != status {
				return fmt.Sprintf("juliet: present=%v fresh=%v status %q, want %q", ok, j.Fresh(), j.StatusText(), status)
			}
			if b, ok := rom.Roster().Resource(jid.MustParse(bfull)); !ok || !b.Fresh() {
				return fmt.Sprintf("benvolio: present=%v fresh=%v", ok, b.Fresh())
			}
			st := rom.Roster().Stats()
			st.Bytes = 0
			if st != (roster.Stats{Items: 2, Contacts: 2, Resources: 2}) {
				return fmt.Sprintf("roster stats %+v", st)
			}
			for _, nick := range []string{"Romeo", "Benvolio"} {
				if o, ok := rom.Rooms().Occupant(jid.MustParse(room + "/" + nick)); !ok || !o.Fresh() {
					return fmt.Sprintf("occupant %s: present=%v fresh=%v", nick, ok, o.Fresh())
				}
			}
			if st := rom.Rooms().Stats(); st != (mucwatch.Stats{Rooms: 1, Joined: 1, Occupants: 2}) {
				return fmt.Sprintf("rooms stats %+v", st)
			}
			return ""
		}
	}
	if err := ch.until(startCtx, truth("storm 0")); err != nil {
		res.err = fmt.Errorf("before the storms: %w", err)
		return res
	}
	res.goroutines[1], res.heap[0] = runtime.NumGoroutine(), liveHeap()

	for i := 1; i <= n; i++ {
		err := func() error {
			sctx, cancel := context.WithTimeout(ctx, perStorm)
			defer cancel()
			before := disconnects.Load()
			if err := srv.Kill(); err != nil {
				return err
			}
			if err := ch.until(sctx, func() string {
				if disconnects.Load() == before {
					return "romeo did not notice the kill"
				}
				return ""
			}); err != nil {
				return err
			}
			status := fmt.Sprintf("storm %d", i)
			if err := juliet.Send("<presence><status>" + status + "</status></presence>"); err != nil {
				return err
			}
			if err := srv.Restart(sctx); err != nil {
				return err
			}
			back := time.Now()
			if err := ch.until(sctx, truth(status)); err != nil {
				return err
			}
			res.back = append(res.back, time.Since(back))
			return nil
		}()
		if err != nil {
			res.err = fmt.Errorf("storm %d: %w", i, err)
			break
		}
		res.survived++
	}
	res.goroutines[2], res.heap[1] = runtime.NumGoroutine(), liveHeap()
	if heapProfile != "" {
		if err := writeHeapProfile(heapProfile); err != nil && res.err == nil {
			res.err = err
		}
	}
	_ = rom.Close()
	_ = ben.Close()
	// Goroutines of the clients end soon after Close; count once they did
	// or after 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > res.goroutines[0] && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	res.goroutines[3] = runtime.NumGoroutine()
	return res
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// liveHeap returns the heap in use after a garbage collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func reportStorm(r stormResult) error {
	fmt.Printf("Reconnect storm (own Prosody SIGKILLed and restarted): %d of %d survived\n", r.survived, r.storms)
	if len(r.back) > 0 {
		ds := slices.Clone(r.back)
		slices.Sort(ds)
		p := func(q float64) string {
			return ds[min(len(ds)-1, int(q*float64(len(ds))))].Round(10 * time.Millisecond).String()
		}
		fmt.Printf("  restart -> roster and room fresh and correct: n=%d min %s median %s p95 %s max %s\n",
			len(ds), p(0), p(0.5), p(0.95), ds[len(ds)-1].Round(10*time.Millisecond))
	}
	fmt.Printf("  goroutines: %d before the psakit clients, %d before the storms, %d after, %d after Close\n", r.goroutines[0], r.goroutines[1], r.goroutines[2], r.goroutines[3])
	fmt.Printf("  live heap after GC: %.1f MiB before the storms, %.1f MiB after\n", mib(r.heap[0]), mib(r.heap[1]))
	if r.err != nil {
		return errors.Join(errors.New("the storm stopped early"), r.err)
	}
	return nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
