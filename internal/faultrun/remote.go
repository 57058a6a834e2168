package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/internal/reach"
	"github.com/psakit/psakit/roster"
)

// The remote checks' figures (-only remote): against two Prosody servers
// without mod_psa, the time from a server-to-server cut (refused, or
// blackholed) to juliet's inferred stale event and from the heal to her
// restored one, at -remote-check 5s and at the default interval; the checks
// per domain per hour at the default interval; and the false alarms of a
// run with no outage. Every measurement has a network of its own, and they
// run side by side: the default interval's take minutes each.

// vanilla starts montague.lit (romeo, benvolio) and capulet.lit (juliet),
// without mod_psa, all in each other's rosters.
func vanilla(ctx context.Context) (*prosodytest.Network, error) {
	const (
		mont = prosodytest.Montague
		capu = prosodytest.Capulet
	)
	return prosodytest.NewNetwork(ctx, nil,
		prosodytest.Spec{
			Domain: mont, WithoutPSA: true,
			Users: map[string]string{"romeo": prosodytest.Password, "benvolio": prosodytest.Password},
			Roster: map[string]map[string]string{
				"romeo":    {"juliet@" + capu: "both"},
				"benvolio": {"juliet@" + capu: "both"},
			},
		},
		prosodytest.Spec{
			Domain: capu, WithoutPSA: true,
			Users:  map[string]string{"juliet": prosodytest.Password},
			Roster: map[string]map[string]string{"juliet": {"romeo@" + mont: "both", "benvolio@" + mont: "both"}},
		})
}

// watcher is a psakit client of the vanilla network that counts what its
// remote checks did.
type watcher struct {
	c      *client.Client
	events chan roster.Event
	checks atomic.Int64 // checks answered or timed out
	stale  atomic.Int64 // inferred stale events
}

// countChecks is a slog handler that counts the client's remote checks.
type countChecks struct{ w *watcher }

func (h countChecks) Enabled(context.Context, slog.Level) bool { return true }
func (h countChecks) Handle(_ context.Context, r slog.Record) error {
	// The message, with or without a "psakit: " prefix.
	if strings.HasSuffix(r.Message, "remote check") {
		h.w.checks.Add(1)
	}
	return nil
}
func (h countChecks) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countChecks) WithGroup(string) slog.Handler      { return h }

// watch connects user@montague.lit with remote checks every interval, and
// waits until juliet (already online) is available in its roster.
func watch(ctx context.Context, n *prosodytest.Network, user string, interval time.Duration) (*watcher, error) {
	w := &watcher{events: make(chan roster.Event, 1024)}
	srv := n.Server(prosodytest.Montague)
	c, err := client.Dial(ctx, jid.MustParse(user+"@"+prosodytest.Montague), prosodytest.Password,
		client.WithAddress(srv.C2SAddr), client.WithTLS(client.PlainText), client.WithResource("watch"),
		client.WithRemoteCheck(interval),
		client.WithLogger(slog.New(countChecks{w})),
		client.OnRoster(func(e roster.Event) {
			if _, ok := e.Mark.InferredDomain(); ok && e.Kind == roster.EventStale {
				w.stale.Add(1)
			}
			select {
			case w.events <- e:
			default:
			}
		}))
	if err != nil {
		return nil, err
	}
	w.c = c
	if _, err := w.next(ctx, func(e roster.Event) bool { return e.Kind == roster.EventAvailable && e.JID.Localpart() == "juliet" }); err != nil {
		c.Close()
		return nil, err
	}
	return w, nil
}

func (w *watcher) next(ctx context.Context, match func(roster.Event) bool) (time.Time, error) {
	for {
		select {
		case e := <-w.events:
			if match(e) {
				return time.Now(), nil
			}
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// julietOnline connects juliet to capulet.lit with a status.
func julietOnline(ctx context.Context, n *prosodytest.Network) (*rawclient.Client, error) {
	capu := n.Server(prosodytest.Capulet)
	j, err := rawclient.Dial(ctx, rawclient.Config{Addr: capu.C2SAddr, Domain: capu.Domain, User: "juliet",
		Password: prosodytest.Password, Resource: "balcony", NoCaps: true})
	if err != nil {
		return nil, err
	}
	if err := j.SendPresence(ctx, "<status>Ay me!</status>"); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// outage measures one cut and heal: from the cut to juliet's inferred
// stale event, and from the heal to her restored event. The cut comes at a
// random time in the first interval and a quarter after login, so that it
// falls anywhere between two checks.
func outage(interval time.Duration, blackhole bool) (toStale, toFresh time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*interval+5*time.Minute)
	defer cancel()
	n, err := vanilla(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer n.Close()
	j, err := julietOnline(ctx, n)
	if err != nil {
		return 0, 0, err
	}
	defer j.Close()
	w, err := watch(ctx, n, "romeo", interval)
	if err != nil {
		return 0, 0, err
	}
	defer w.c.Close()
	select {
	case <-time.After(rand.N(interval + interval/4)):
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	inferred := func(kind roster.EventKind) func(roster.Event) bool {
		return func(e roster.Event) bool {
			d, ok := e.Mark.InferredDomain()
			return e.Kind == kind && ok && d.String() == prosodytest.Capulet
		}
	}
	cut := time.Now()
	if blackhole {
		err = n.Blackhole(prosodytest.Montague, prosodytest.Capulet)
	} else {
		err = n.Cut(prosodytest.Montague, prosodytest.Capulet)
	}
	if err != nil {
		return 0, 0, err
	}
	stale, err := w.next(ctx, inferred(roster.EventStale))
	if err != nil {
		return 0, 0, fmt.Errorf("no stale event: %w", err)
	}
	healed := time.Now()
	if err := n.Heal(prosodytest.Montague, prosodytest.Capulet); err != nil {
		return 0, 0, err
	}
	fresh, err := w.next(ctx, inferred(roster.EventRestored))
	if err != nil {
		return 0, 0, fmt.Errorf("no restored event: %w", err)
	}
	return stale.Sub(cut), fresh.Sub(healed), nil
}

// soak runs romeo (-remote-check 5s) and benvolio (default interval) for d
// with no outage, and returns their checks and their inferred stale events
// (false alarms).
func soak(d time.Duration) (fastChecks, fastAlarms, slowChecks, slowAlarms int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	n, err := vanilla(ctx)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer n.Close()
	j, err := julietOnline(ctx, n)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer j.Close()
	fast, err := watch(ctx, n, "romeo", 5*time.Second)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer fast.c.Close()
	slow, err := watch(ctx, n, "benvolio", client.DefaultRemoteCheck)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer slow.c.Close()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, 0, 0, 0, ctx.Err()
	}
	return fast.checks.Load(), fast.stale.Load(), slow.checks.Load(), slow.stale.Load(), nil
}

// checksPerHour runs a reach.Machine with the default configuration and
// random jitter on a simulated clock for hours, one reachable domain
// answering every check at once, and returns the checks per hour.
func checksPerHour(hours int) float64 {
	m := reach.New(reach.Config{Jitter: func(n time.Duration) time.Duration { return rand.N(n) }})
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	m.StreamUp(now)
	m.Gained("capulet.lit", now)
	end := now.Add(time.Duration(hours) * time.Hour)
	checks := 0
	for {
		next, ok := m.Next(now)
		if !ok || next.After(end) {
			break
		}
		now = next
		for _, a := range m.Tick(now) {
			if a.Kind == reach.ActCheck {
				checks++
				m.Result(a.Domain, a.Seq, reach.Reachable, now)
			}
		}
	}
	return float64(checks) / float64(hours)
}

func remoteFigures(runs int, soakFor time.Duration) error {
	fmt.Printf("remote checks, checks per domain per hour at the default interval (%v, simulated 10,000 h): %.2f\n",
		client.DefaultRemoteCheck, checksPerHour(10_000))
	type job struct {
		interval  time.Duration
		blackhole bool
	}
	var jobs []job
	for _, iv := range []time.Duration{5 * time.Second, client.DefaultRemoteCheck} {
		for _, bh := range []bool{false, true} {
			for range runs {
				jobs = append(jobs, job{iv, bh})
			}
		}
	}
	type result struct {
		stale, fresh time.Duration
		err          error
	}
	results := make([]result, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16) // networks at once
	var fast, fastAlarms, slow, slowAlarms int64
	var soakErr error
	if soakFor > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fast, fastAlarms, slow, slowAlarms, soakErr = soak(soakFor)
		}()
	}
	for i, jb := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s, f, err := outage(jb.interval, jb.blackhole)
			results[i] = result{s, f, err}
		}()
	}
	wg.Wait()
	var errs []error
	for i := 0; i < len(jobs); i += runs {
		jb := jobs[i]
		var stale, fresh []time.Duration
		for _, r := range results[i : i+runs] {
			if r.err != nil {
				errs = append(errs, r.err)
				continue
			}
			stale, fresh = append(stale, r.stale), append(fresh, r.fresh)
		}
		what := "refused"
		if jb.blackhole {
			what = "blackholed"
		}
		name := fmt.Sprintf("-remote-check %v", jb.interval)
		if jb.interval == client.DefaultRemoteCheck {
			name = "default -remote-check"
		}
		if len(stale) > 0 {
			report(fmt.Sprintf("vanilla Prosody, s2s %s -> inferred stale, %s", what, name), stale)
			report(fmt.Sprintf("vanilla Prosody, s2s %s, heal -> restored, %s", what, name), fresh)
		}
	}
	if soakFor > 0 {
		if soakErr != nil {
			errs = append(errs, soakErr)
		} else {
			fmt.Printf("no outage for %v: -remote-check 5s: %d checks, %d false alarms; default: %d checks, %d false alarms\n",
				soakFor, fast, fastAlarms, slow, slowAlarms)
		}
	}
	return errors.Join(errs...)
}
