// Command resumeload measures what a short drop of the client's own TCP
// connection costs, with and without XEP-0198 stream management: the
// stream management figure of RELIABILITY.md.
//
// It starts montague.lit (with its MUC service) with internal/prosodytest,
// gives romeo@montague.lit -contacts contacts on montague.lit (subscription
// both), all online (one raw client session each, without caps), puts
// -occupants of them in each of -rooms rooms, and connects romeo, a psakit
// client (package client), through a loopback proxy that can cut the TCP
// connection both ways without a stream close, as a network failure does.
// Once romeo has every contact and every occupant, it cuts the connection
// for -gap, refusing reconnections meanwhile, then lets them through, and
// reports:
//
//   - stanzas: the top-level elements (stanzas and stream management
//     elements) the server sent romeo on the new connection, from the
//     reconnection until ConnResynced, and their bytes;
//   - reconnected: from letting connections through to ConnResumed or
//     ConnConnected;
//   - fresh: from letting connections through until every roster entry and
//     every room and occupant is fresh again (none stale, all there);
//   - resynced: until ConnResynced (after the settle window without stream
//     management, at once after a resumption);
//   - paused (stream management, mod_psa, -watch): from the cut until every
//     contact has romeo's presence annotated connection-paused;
//   - cleared (the same): from letting connections through until every
//     contact has had the empty annotation that clears it.
//
// The client reconnects after 100 to 200 ms (WithReconnect), so that its
// backoff does not dominate what is measured; the settle window is the
// default 10 s. mod_psa is loaded unless -psa=false: while romeo's session
// hibernates it annotates his presence to each of his contacts, and clears
// the annotation once the session is resumed. With -watch (the default)
// the contacts announce annotations (XEP-0115 caps with urn:xmpp:psa), so
// that they receive them; -without=false leaves out the runs without
// stream management.
//
//	PSAKIT_PROSODY=0.12 go run ./internal/resumeload -runs 3
//	PSAKIT_PROSODY=13 go run ./internal/resumeload -runs 3
//	PSAKIT_PROSODY=13 go run ./internal/resumeload -runs 3 -without=false
//
// Nothing here is a test: the figures are measured, never asserted. The
// freshness is checked every 5 ms, the resolution of "fresh".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/cutproxy"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/internal/sm"
)

const (
	montague   = prosodytest.Montague
	conference = prosodytest.Conference
	pw         = prosodytest.Password
)

type config struct {
	contacts, rooms, occupants int
	gap                        time.Duration
	runs, parallel             int
	timeout                    time.Duration
	log                        bool
	psa                        bool
	without                    bool
	watch                      bool
}

func main() {
	var cfg config
	flag.IntVar(&cfg.contacts, "contacts", 2000, "romeo's contacts, all online")
	flag.IntVar(&cfg.rooms, "rooms", 3, "rooms romeo is in")
	flag.IntVar(&cfg.occupants, "occupants", 100, "other occupants per room (contacts; at most contacts/rooms)")
	flag.DurationVar(&cfg.gap, "gap", 5*time.Second, "how long the connection stays cut")
	flag.IntVar(&cfg.runs, "runs", 1, "runs per mode, each with a fresh server")
	flag.IntVar(&cfg.parallel, "connect", 16, "contacts connecting at a time")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound of one run")
	flag.BoolVar(&cfg.psa, "psa", true, "load mod_psa (which annotates romeo's presence to his contacts while his session hibernates)")
	flag.BoolVar(&cfg.without, "without", true, "also run each run without stream management (-without=false: only the resumption)")
	flag.BoolVar(&cfg.watch, "watch", true, "contacts announce annotations (urn:xmpp:psa), and the run reports when all had romeo's pause (paused) and its clearing (cleared)")
	flag.BoolVar(&cfg.log, "log", false, "log the client's reports (level debug) to stderr")
	flag.Parse()
	if cfg.occupants*cfg.rooms > cfg.contacts {
		fmt.Fprintln(os.Stderr, "resumeload: -occupants x -rooms must not exceed -contacts")
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "resumeload:", err)
		os.Exit(1)
	}
}

type result struct {
	sm                           bool
	resumed                      bool
	stanzas, bytes               int64
	reconnected, fresh, resynced time.Duration
	paused, cleared              time.Duration // 0: not watched
	swept                        int
}

func run(cfg config) error {
	ins, err := prosodytest.Installations()
	if len(ins) == 0 {
		return err
	}
	in := ins[0]
	fmt.Printf("# resumeload: %v, mod_psa %v, %d contacts, %d rooms x %d occupants, gap %v, %d runs per mode\n",
		in, cfg.psa, cfg.contacts, cfg.rooms, cfg.occupants, cfg.gap, cfg.runs)
	fmt.Printf("# %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%-8s %-8s %9s %11s %12s %10s %10s %6s %10s %10s\n", "sm", "outcome", "stanzas", "bytes", "reconnected", "fresh", "resynced", "swept", "paused", "cleared")
	byMode := map[bool][]result{}
	for r := range cfg.runs {
		for _, on := range modes(cfg) {
			res, err := oneRun(cfg, on)
			if err != nil {
				return fmt.Errorf("run %d (sm %v): %w", r+1, on, err)
			}
			outcome := "new"
			if res.resumed {
				outcome = "resumed"
			}
			fmt.Printf("%-8v %-8s %9d %11d %12v %10v %10v %6d %10v %10v\n", on, outcome, res.stanzas, res.bytes,
				res.reconnected.Round(time.Millisecond), res.fresh.Round(time.Millisecond), res.resynced.Round(time.Millisecond), res.swept,
				res.paused.Round(time.Millisecond), res.cleared.Round(time.Millisecond))
			byMode[on] = append(byMode[on], res)
		}
	}
	for _, on := range modes(cfg) {
		rs := byMode[on]
		med := func(f func(result) time.Duration) time.Duration {
			ds := make([]time.Duration, len(rs))
			for i, r := range rs {
				ds[i] = f(r)
			}
			slices.Sort(ds)
			return ds[len(ds)/2].Round(time.Millisecond)
		}
		fmt.Printf("# median sm=%v: reconnected %v, fresh %v, resynced %v, paused %v, cleared %v\n", on,
			med(func(r result) time.Duration { return r.reconnected }),
			med(func(r result) time.Duration { return r.fresh }),
			med(func(r result) time.Duration { return r.resynced }),
			med(func(r result) time.Duration { return r.paused }),
			med(func(r result) time.Duration { return r.cleared }))
	}
	return nil
}

// modes lists the stream management settings each run measures.
func modes(cfg config) []bool {
	if cfg.without {
		return []bool{true, false}
	}
	return []bool{true}
}

func contactName(i int) string { return fmt.Sprintf("c%04d", i) }

func roomJID(k int) string { return fmt.Sprintf("room%d@%s", k, conference) }

func oneRun(cfg config, smOn bool) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	romeoRoster := make(map[string]string, cfg.contacts)
	users := map[string]string{"romeo": pw}
	rosters := map[string]map[string]string{"romeo": romeoRoster}
	for i := range cfg.contacts {
		name := contactName(i)
		romeoRoster[name+"@"+montague] = "both"
		users[name] = pw
		rosters[name] = map[string]string{"romeo@" + montague: "both"}
	}
	network, err := prosodytest.NewNetwork(ctx, nil, prosodytest.Spec{
		Domain: montague, MUC: conference, Users: users, Roster: rosters, WithoutPSA: !cfg.psa,
		ExtraConfig: `log = { { levels = { min = "info" }, to = "console" } }`,
	})
	if err != nil {
		return result{}, err
	}
	defer network.Close()
	mont := network.Server(montague)

	// The contacts, online; the first rooms*occupants of them in the rooms.
	contacts := make([]*rawclient.Client, cfg.contacts)
	defer func() {
		for _, c := range contacts {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	// With stream management romeo's session hibernates: mod_psa annotates
	// his presence to every contact, and clears it once he resumed.
	watching := cfg.watch && cfg.psa && smOn
	romeoFull := "romeo@" + montague + "/lane"
	sem := make(chan struct{}, cfg.parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range cfg.contacts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ccfg := rawclient.Config{Addr: mont.C2SAddr, Domain: montague, User: contactName(i), Password: pw, Resource: "r", NoCaps: true}
			if watching {
				ccfg.NoCaps, ccfg.Features = false, []string{rawclient.NSPSA}
			}
			c, err := rawclient.Dial(ctx, ccfg)
			if err == nil {
				err = c.SendPresence(ctx, "")
			}
			if err == nil && i < cfg.rooms*cfg.occupants {
				err = c.JoinMUC(ctx, roomJID(i/cfg.occupants), contactName(i))
			}
			mu.Lock()
			contacts[i] = c
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("contact %d: %w", i, err)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}

	p, err := cutproxy.New(mont.C2SAddr)
	if err != nil {
		return result{}, err
	}
	defer p.Close()
	conn := make(chan client.ConnEvent, 100)
	logger := slog.New(slog.DiscardHandler)
	if cfg.log {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	romeo, err := client.Dial(ctx, jid.MustParse("romeo@"+montague), pw,
		client.WithAddress(p.Addr()), client.WithTLS(client.PlainText), client.WithResource("lane"),
		client.WithReconnect(100*time.Millisecond, 200*time.Millisecond),
		client.WithStreamManagement(smOn),
		client.WithLogger(logger),
		client.OnConnection(func(e client.ConnEvent) { conn <- e }))
	if err != nil {
		return result{}, err
	}
	defer romeo.Close()
	for k := range cfg.rooms {
		if err := romeo.Join(ctx, jid.MustParse(roomJID(k)+"/Romeo")); err != nil {
			return result{}, err
		}
	}
	fresh := func() bool {
		s := romeo.Roster().Stats()
		if s.Resources != cfg.contacts || s.Stale != 0 {
			return false
		}
		for k := range cfg.rooms {
			r, ok := romeo.Rooms().Room(jid.MustParse(roomJID(k)))
			if !ok || r.Stale || r.StaleOccupants != 0 || r.Occupants != cfg.occupants+1 {
				return false
			}
		}
		return true
	}
	if err := poll(ctx, fresh); err != nil {
		return result{}, fmt.Errorf("waiting for the population: %w", err)
	}
	time.Sleep(time.Second) // quiet

	p.Cut()
	if err := waitConn(ctx, conn, client.ConnDisconnected); err != nil {
		return result{}, err
	}
	cut := time.Now()
	var res result
	if watching {
		for _, c := range contacts {
			if _, err := c.Expect(ctx, annotatedBy(romeoFull, "connection-paused")); err != nil {
				return result{}, fmt.Errorf("waiting for the pause: %w", err)
			}
		}
		res.paused = time.Since(cut)
	}
	time.Sleep(cfg.gap - time.Since(cut))
	var count counter
	p.Observe(count.see)
	p.Restore()
	restored := time.Now()
	var cleared sync.WaitGroup
	defer func() {
		cancel()
		cleared.Wait()
	}()
	var clearedMu sync.Mutex
	var clearedErr error
	var clearedMax time.Duration
	if watching {
		for _, c := range contacts {
			cleared.Go(func() {
				_, err := c.Expect(ctx, annotatedBy(romeoFull, ""))
				d := time.Since(restored)
				clearedMu.Lock()
				defer clearedMu.Unlock()
				if err != nil && clearedErr == nil {
					clearedErr = fmt.Errorf("waiting for the clearing: %w", err)
				}
				clearedMax = max(clearedMax, d)
			})
		}
	}
	if cfg.log {
		logger.Info("resumeload: connections let through")
	}
	res.sm = smOn
	e, err := waitConnAny(ctx, conn, client.ConnResumed, client.ConnConnected)
	if err != nil {
		return result{}, err
	}
	res.reconnected = time.Since(restored)
	res.resumed = e.Kind == client.ConnResumed
	if err := poll(ctx, fresh); err != nil {
		return result{}, fmt.Errorf("waiting for freshness: %w", err)
	}
	res.fresh = time.Since(restored)
	e, err = waitConnAny(ctx, conn, client.ConnResynced)
	if err != nil {
		return result{}, err
	}
	res.resynced = time.Since(restored)
	res.swept = e.Swept
	res.stanzas, res.bytes = count.counts()
	cleared.Wait()
	if clearedErr != nil {
		return result{}, clearedErr
	}
	res.cleared = clearedMax
	return res, nil
}

// annotatedBy matches a presence from `from` annotated by montague.lit with
// cond ("" for the empty annotation that clears one).
func annotatedBy(from, cond string) func(*rawclient.Element) bool {
	return func(e *rawclient.Element) bool {
		if !e.Is(rawclient.NSClient, "presence") || e.Attr("from") != from || e.Attr("type") != "" {
			return false
		}
		a := e.Child(rawclient.NSPSA, "state-annotation")
		if a == nil || a.Attr("from") != montague {
			return false
		}
		if cond == "" {
			return len(a.Children) == 0
		}
		return a.Child(rawclient.NSPSA, cond) != nil
	}
}

func poll(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func waitConn(ctx context.Context, ch <-chan client.ConnEvent, kind client.ConnEventKind) error {
	_, err := waitConnAny(ctx, ch, kind)
	return err
}

func waitConnAny(ctx context.Context, ch <-chan client.ConnEvent, kinds ...client.ConnEventKind) (client.ConnEvent, error) {
	for {
		select {
		case e := <-ch:
			if slices.Contains(kinds, e.Kind) {
				return e, nil
			}
			if e.Kind == client.ConnClosed {
				return e, errors.New("the client stopped")
			}
		case <-ctx.Done():
			return client.ConnEvent{}, fmt.Errorf("waiting for %v: %w", kinds, ctx.Err())
		}
	}
}

// counter counts the top-level elements and bytes the server sends, as
// the client reads them.
type counter struct {
	mu              sync.Mutex
	sc              sm.Scanner
	elements, bytes int64
}

func (c *counter) see(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bytes += int64(len(b))
	c.sc.Feed(b, func(sm.Top) { c.elements++ })
}

func (c *counter) counts() (elements, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.elements, c.bytes
}
