// Command psaload measures mod_psa's load on a real Prosody: the load figure
// of BENCHMARKS.md ("mod_psa under load").
//
// It starts montague.lit and capulet.lit with internal/prosodytest (their
// s2s link through the cuttable loopback forwarder), gives
// romeo@montague.lit N contacts on capulet.lit (subscription both), brings
// all of them online (one raw client session each, without caps), then
// romeo (a raw client that advertises urn:xmpp:psa in verified caps), and
// waits until romeo has every contact's presence. Then, per cycle, it cuts
// the link and waits until romeo has the N server-unavailable annotations
// from montague.lit, heals it and waits until he has the N empty ones, then
// waits until the servers are quiet (romeo has every contact's answer to
// mod_psa's after-restore probes, then a ping from romeo to capulet.lit
// answered). For each window it reports
// the time to the first and the last annotation at romeo and the CPU time of
// each Prosody process over the window: utime+stime from /proc/PID/stat
// (clock ticks, 10 ms) and the sum of /proc/PID/task/*/schedstat (ns).
//
//	PSAKIT_PROSODY=0.12 go run ./internal/psaload -runs 3
//	PSAKIT_PROSODY=13 go run ./internal/psaload -runs 3
//
// Each run is a fresh pair of servers: one unmeasured warm-up cycle, then
// -cycles measured ones. The servers log at level info, as a production
// server would (the harness's debug level costs a log line per stanza).
// mod_psa runs with its defaults except psa_recheck_interval and
// psa_recheck_max_interval (-recheck, -recheck-max; "" keeps the default):
// with the default 5 s the heal window is the re-check timer, not work.
//
// Nothing here is a test: the figures are measured, never asserted. Linux
// only (it reads /proc).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

const (
	montague = prosodytest.Montague
	capulet  = prosodytest.Capulet
	pw       = prosodytest.Password
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

type config struct {
	n          int
	runs       int
	cycles     int
	recheck    string
	recheckMax string
	debugLog   bool
	parallel   int
	timeout    time.Duration
	options    options
	extra      string
}

// options are -opt flags: more mod_psa options, name=value (a raw Lua value).
type options map[string]string

func (o options) String() string { return fmt.Sprint(map[string]string(o)) }

func (o options) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" || value == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	o[name] = value
	return nil
}

func main() {
	var cfg config
	flag.IntVar(&cfg.n, "n", 1000, "romeo's contacts on capulet.lit, all online")
	flag.IntVar(&cfg.runs, "runs", 3, "runs, each with fresh servers")
	flag.IntVar(&cfg.cycles, "cycles", 1, "measured cut-and-heal cycles per run, after one warm-up cycle")
	flag.StringVar(&cfg.recheck, "recheck", "0.1", `psa_recheck_interval ("" for mod_psa's default, 5 s)`)
	flag.StringVar(&cfg.recheckMax, "recheck-max", "0.4", `psa_recheck_max_interval ("" for mod_psa's default, 20 s)`)
	flag.BoolVar(&cfg.debugLog, "debug-log", false, "keep the harness's debug logging instead of level info")
	flag.IntVar(&cfg.parallel, "connect", 16, "contacts connecting at a time")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound of one run")
	cfg.options = options{}
	flag.Var(cfg.options, "opt", "a mod_psa option, name=value (raw Lua; repeatable), e.g. psa_max_presences_per_session=2100")
	flag.StringVar(&cfg.extra, "extra", "", "raw Lua appended to both servers' global configuration, e.g. network_settings = { send_buffer_chunks = 100000 }")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "psaload:", err)
		os.Exit(1)
	}
}

// window is what one cut or heal measured.
type window struct {
	first, last time.Duration // from the cut or heal to the first and last annotation at romeo
	settled     time.Duration // heal only: from the heal to the servers being quiet
	montCPU     cpu           // montague.lit's process, cut/heal to last annotation
	capuCPU     cpu           // capulet.lit's process, the same
	montSettled cpu           // heal only: montague.lit, heal to quiet
	capuSettled cpu
	other       int // stanzas romeo got in the window that were not the expected annotations
	afterLast   int // heal only: stanzas between the last annotation and quiet (probe answers)
}

type cycle struct{ cut, heal window }

func run(cfg config) error {
	ins, err := prosodytest.Installations()
	if len(ins) == 0 {
		return err
	}
	in := ins[0]
	host, _ := os.Hostname()
	fmt.Printf("# psaload: %v, %d contacts, %d runs x %d cycles, recheck %q/%q, options %v, extra %q, debug log %v\n",
		in, cfg.n, cfg.runs, cfg.cycles, cfg.recheck, cfg.recheckMax, cfg.options, cfg.extra, cfg.debugLog)
	fmt.Printf("# %s, %s, host %s\n", time.Now().UTC().Format(time.RFC3339), loadavg(), host)
	var all []cycle
	for r := range cfg.runs {
		cs, err := oneRun(cfg, r)
		if err != nil {
			return fmt.Errorf("run %d: %w", r+1, err)
		}
		all = append(all, cs...)
	}
	summarize(all)
	return nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load ?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load ?"
	}
	return "load " + strings.Join(f[:3], " ")
}

func contactName(i int) string { return fmt.Sprintf("c%04d", i) }

func oneRun(cfg config, r int) ([]cycle, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	opts := map[string]string{}
	for k, v := range cfg.options {
		opts[k] = v
	}
	if cfg.recheck != "" {
		opts["psa_recheck_interval"] = cfg.recheck
	}
	if cfg.recheckMax != "" {
		opts["psa_recheck_max_interval"] = cfg.recheckMax
	}
	extra := `log = { { levels = { min = "info" }, to = "console" } }`
	if cfg.debugLog {
		extra = ""
	}
	if cfg.extra != "" {
		extra += "\n" + cfg.extra
	}
	romeoRoster := make(map[string]string, cfg.n)
	users := make(map[string]string, cfg.n)
	rosters := make(map[string]map[string]string, cfg.n)
	for i := range cfg.n {
		name := contactName(i)
		romeoRoster[name+"@"+capulet] = "both"
		users[name] = pw
		rosters[name] = map[string]string{"romeo@" + montague: "both"}
	}
	began := time.Now()
	net, err := prosodytest.NewNetwork(ctx, nil,
		prosodytest.Spec{Domain: montague, Users: map[string]string{"romeo": pw},
			Roster: map[string]map[string]string{"romeo": romeoRoster}, PSAOptions: opts, ExtraConfig: extra},
		prosodytest.Spec{Domain: capulet, Users: users, Roster: rosters, PSAOptions: opts, ExtraConfig: extra},
	)
	if err != nil {
		return nil, err
	}
	defer net.Close()
	mont, capu := net.Server(montague), net.Server(capulet)
	montPID, err := pid(mont)
	if err != nil {
		return nil, err
	}
	capuPID, err := pid(capu)
	if err != nil {
		return nil, err
	}
	fmt.Printf("# run %d: servers started in %v (montague.lit pid %d, capulet.lit pid %d)\n",
		r+1, time.Since(began).Round(time.Millisecond), montPID, capuPID)

	began = time.Now()
	contacts := make([]*rawclient.Client, cfg.n)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range contacts {
			if c != nil {
				wg.Go(func() { _ = c.Close() })
			}
		}
		wg.Wait()
	}()
	errs := make([]error, cfg.n)
	sem := make(chan struct{}, cfg.parallel)
	var wg sync.WaitGroup
	for i := range cfg.n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := rawclient.Dial(ctx, rawclient.Config{Addr: capu.C2SAddr, Domain: capulet,
				User: contactName(i), Password: pw, Resource: "r", NoCaps: true})
			if err == nil {
				contacts[i] = c
				err = c.SendPresence(ctx, "<status>online</status>")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	fmt.Printf("# run %d: %d contacts online in %v\n", r+1, cfg.n, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	romeo, err := rawclient.Dial(ctx, rawclient.Config{Addr: mont.C2SAddr, Domain: montague,
		User: "romeo", Password: pw, Resource: "lane", Features: []string{rawclient.NSPSA}})
	if err != nil {
		return nil, err
	}
	defer romeo.Close()
	if err := romeo.SendPresence(ctx, ""); err != nil {
		return nil, err
	}
	if _, _, _, err := collect(ctx, romeo, cfg.n, func(e *rawclient.Element) bool {
		return isPresence(e) && annotation(e) == nil && e.Attr("type") == ""
	}, nil); err != nil {
		return nil, fmt.Errorf("romeo's contacts' presences: %w", err)
	}
	fmt.Printf("# run %d: romeo has %d contacts online after %v\n", r+1, cfg.n, time.Since(began).Round(time.Millisecond))

	var out []cycle
	for c := range cfg.cycles + 1 {
		cy, err := cutAndHeal(ctx, net, romeo, cfg.n, montPID, capuPID)
		if err != nil {
			return nil, fmt.Errorf("cycle %d: %w", c, err)
		}
		label := "warm-up"
		if c > 0 {
			label = "cycle " + strconv.Itoa(c)
			out = append(out, cy)
		}
		fmt.Printf("run %d %s: %s\n", r+1, label, cy)
	}
	return out, nil
}

// pid returns the pid of the server's Prosody process from its pidfile
// (written by Prosody itself, so not a launcher's).
func pid(s *prosodytest.Server) (int, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "prosody.pid"))
	if err != nil {
		return 0, fmt.Errorf("pid of %s: %w", s.Domain, err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid of %s: %w", s.Domain, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/stat", p)); err != nil {
		return 0, fmt.Errorf("pid of %s: %w", s.Domain, err)
	}
	return p, nil
}

func isPresence(e *rawclient.Element) bool {
	return e.Is(rawclient.NSClient, "presence") && strings.HasSuffix(bare(e.Attr("from")), "@"+capulet)
}

func bare(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

func annotation(e *rawclient.Element) *rawclient.Element {
	return e.Child(rawclient.NSPSA, "state-annotation")
}

// stale matches montague.lit's server-unavailable annotation on a contact's
// available presence.
func stale(e *rawclient.Element) bool {
	a := annotation(e)
	return isPresence(e) && e.Attr("type") == "" && a != nil && a.Attr("from") == montague &&
		a.Child(rawclient.NSPSA, "server-unavailable") != nil
}

// restored matches montague.lit's empty annotation.
func restored(e *rawclient.Element) bool {
	a := annotation(e)
	return isPresence(e) && e.Attr("type") == "" && a != nil && a.Attr("from") == montague && len(a.Children) == 0
}

// probeAnswer matches a contact's available presence that is not one of
// montague.lit's re-sends (those carry its <delay/>): the answer to one of
// the probes mod_psa sends after a restore, which may carry the empty
// annotation of the re-send it overtook.
func probeAnswer(e *rawclient.Element) bool {
	if !isPresence(e) || e.Attr("type") != "" {
		return false
	}
	d := e.Child("urn:xmpp:delay", "delay")
	return d == nil || d.Attr("from") != montague
}

// collect reads romeo's stanzas until match accepted one from each of n
// distinct full JIDs, and returns when the first and the last of them were
// read, and how many other stanzas came meanwhile. Every stanza read is
// shown to also, if not nil.
func collect(ctx context.Context, c *rawclient.Client, n int, match func(*rawclient.Element) bool, also func(*rawclient.Element)) (first, last time.Time, other int, err error) {
	seen := make(map[string]bool, n)
	for len(seen) < n {
		e, err := c.Next(ctx)
		if err != nil {
			return first, last, other, fmt.Errorf("%d of %d after %d other stanzas: %w", len(seen), n, other, err)
		}
		now := time.Now()
		if also != nil {
			also(e)
		}
		if !match(e) || seen[e.Attr("from")] {
			other++
			continue
		}
		if len(seen) == 0 {
			first = now
		}
		seen[e.Attr("from")] = true
		last = now
	}
	return first, last, other, nil
}

func cutAndHeal(ctx context.Context, net *prosodytest.Network, romeo *rawclient.Client, n, montPID, capuPID int) (cycle, error) {
	var cy cycle
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	m0, c0 := readCPU(montPID), readCPU(capuPID)
	t0 := time.Now()
	if err := net.Cut(montague, capulet); err != nil {
		return cy, err
	}
	first, last, other, err := collect(ctx, romeo, n, stale, nil)
	if err != nil {
		return cy, fmt.Errorf("after the cut: %w", err)
	}
	m1, c1 := readCPU(montPID), readCPU(capuPID)
	cy.cut = window{first: first.Sub(t0), last: last.Sub(t0), montCPU: m1.sub(m0), capuCPU: c1.sub(c0), other: other}

	m0, c0 = readCPU(montPID), readCPU(capuPID)
	t0 = time.Now()
	if err := net.Heal(montague, capulet); err != nil {
		return cy, err
	}
	answered := make(map[string]bool, n)
	answer := func(e *rawclient.Element) {
		if probeAnswer(e) {
			answered[e.Attr("from")] = true
		}
	}
	first, last, other, err = collect(ctx, romeo, n, restored, answer)
	if err != nil {
		return cy, fmt.Errorf("after the heal: %w", err)
	}
	m1, c1 = readCPU(montPID), readCPU(capuPID)
	cy.heal = window{first: first.Sub(t0), last: last.Sub(t0), montCPU: m1.sub(m0), capuCPU: c1.sub(c0), other: other}
	// With the empty annotations montague.lit probes the contacts (over
	// turns of its event loop, so a ping sent now could overtake the last
	// probes): wait for every contact's answer, then for a ping from romeo
	// to capulet.lit, which travels behind montague.lit's settling ping.
	for len(answered) < n {
		e, err := romeo.Next(ctx)
		if err != nil {
			return cy, fmt.Errorf("settling after the heal: %d of %d probe answers: %w", len(answered), n, err)
		}
		answer(e)
	}
	if err := romeo.RoundTrip(ctx, capulet); err != nil {
		return cy, fmt.Errorf("settling after the heal: %w", err)
	}
	cy.heal.settled = time.Since(t0)
	m2, c2 := readCPU(montPID), readCPU(capuPID)
	cy.heal.montSettled, cy.heal.capuSettled = m2.sub(m0), c2.sub(c0)
	cy.heal.afterLast = drain(romeo)
	return cy, nil
}

// drain takes the stanzas romeo received and no one read (the answers to
// mod_psa's probes, left queued by the round trip), so that the next window
// counts only its own, and returns how many there were.
func drain(c *rawclient.Client) int {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	for {
		if _, err := c.Next(ctx); err != nil {
			return n
		}
		n++
	}
}

// cpu is a process's CPU time so far.
type cpu struct {
	ticks int64         // utime+stime, /proc/PID/stat
	sched time.Duration // sum of the tasks' run time, /proc/PID/task/*/schedstat
	err   error
}

func (a cpu) sub(b cpu) cpu {
	return cpu{ticks: a.ticks - b.ticks, sched: a.sched - b.sched, err: errors.Join(a.err, b.err)}
}

func (a cpu) seconds() float64 { return float64(a.ticks) / clockTicks }

func (a cpu) String() string {
	if a.err != nil {
		return "cpu ? (" + a.err.Error() + ")"
	}
	return fmt.Sprintf("%.2f s (sched %.3f s)", a.seconds(), a.sched.Seconds())
}

func readCPU(pid int) cpu {
	var c cpu
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpu{err: err}
	}
	// The command name may hold spaces: the fields start after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return cpu{err: fmt.Errorf("/proc/%d/stat: no ')'", pid)}
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime 15.
	if len(f) < 13 {
		return cpu{err: fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))}
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return cpu{err: err}
	}
	c.ticks = ut + st
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		c.err = fmt.Errorf("/proc/%d/task: no schedstat", pid)
		return c
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // a task that ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			c.err = err
			return c
		}
		c.sched += time.Duration(ns)
	}
	return c
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func (cy cycle) String() string {
	return fmt.Sprintf("cut -> first %s, last %s; montague.lit CPU %v, capulet.lit %v; other stanzas %d | "+
		"heal -> first %s, last %s; montague.lit CPU %v, capulet.lit %v; other stanzas %d | "+
		"heal -> quiet %s (%d stanzas after the last annotation); montague.lit CPU %v, capulet.lit %v",
		ms(cy.cut.first), ms(cy.cut.last), cy.cut.montCPU, cy.cut.capuCPU, cy.cut.other,
		ms(cy.heal.first), ms(cy.heal.last), cy.heal.montCPU, cy.heal.capuCPU, cy.heal.other,
		ms(cy.heal.settled), cy.heal.afterLast, cy.heal.montSettled, cy.heal.capuSettled)
}

func summarize(all []cycle) {
	if len(all) == 0 {
		return
	}
	row := func(name string, unit string, get func(cycle) float64) {
		v := make([]float64, len(all))
		for i, c := range all {
			v[i] = get(c)
		}
		s := slices.Clone(v)
		slices.Sort(s)
		med := s[len(s)/2]
		if len(s)%2 == 0 {
			med = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		fmt.Printf("%-48s median %8.3f %s [%.3f-%.3f]  all: %v\n", name, med, unit, s[0], s[len(s)-1], v)
	}
	dms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Println("# summary over", len(all), "measured cycles")
	row("cut -> first server-unavailable", "ms", func(c cycle) float64 { return dms(c.cut.first) })
	row("cut -> last server-unavailable", "ms", func(c cycle) float64 { return dms(c.cut.last) })
	row("cut window: montague.lit CPU (stat)", "s", func(c cycle) float64 { return c.cut.montCPU.seconds() })
	row("cut window: montague.lit CPU (schedstat)", "s", func(c cycle) float64 { return c.cut.montCPU.sched.Seconds() })
	row("cut window: capulet.lit CPU (schedstat)", "s", func(c cycle) float64 { return c.cut.capuCPU.sched.Seconds() })
	row("heal -> first empty annotation", "ms", func(c cycle) float64 { return dms(c.heal.first) })
	row("heal -> last empty annotation", "ms", func(c cycle) float64 { return dms(c.heal.last) })
	row("heal window: montague.lit CPU (stat)", "s", func(c cycle) float64 { return c.heal.montCPU.seconds() })
	row("heal window: montague.lit CPU (schedstat)", "s", func(c cycle) float64 { return c.heal.montCPU.sched.Seconds() })
	row("heal window: capulet.lit CPU (schedstat)", "s", func(c cycle) float64 { return c.heal.capuCPU.sched.Seconds() })
	row("heal -> quiet (probes answered)", "ms", func(c cycle) float64 { return dms(c.heal.settled) })
	row("heal -> quiet: montague.lit CPU (stat)", "s", func(c cycle) float64 { return c.heal.montSettled.seconds() })
	row("heal -> quiet: montague.lit CPU (schedstat)", "s", func(c cycle) float64 { return c.heal.montSettled.sched.Seconds() })
	row("heal -> quiet: capulet.lit CPU (schedstat)", "s", func(c cycle) float64 { return c.heal.capuSettled.sched.Seconds() })
}
