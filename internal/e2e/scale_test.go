package e2e_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// infoLog makes Prosody log at level info instead of the harness's debug, as
// a production server would: debug logging costs the servers a log line per
// stanza.
const infoLog = `log = { { levels = { min = "info" }, to = "console" } }`

// crowd is romeo's psakit client with n contacts on capulet.lit, all online.
type crowd struct {
	net   *prosodytest.Network
	romeo *client.Client
	rec   *recorder
	n     int
	prev  int // the record's mark at the last cut
}

// contactName is the user name of contact i.
func contactName(i int) string { return fmt.Sprintf("c%04d", i) }

// newCrowd starts montague.lit and capulet.lit with n users on capulet.lit,
// all in romeo's roster and he in theirs (subscription both), connects them
// (raw clients, without caps, a few at a time), then romeo's psakit client,
// and waits until his roster shows every contact online. The servers log at
// level info. A first cut and heal, not measured, warms the servers up.
func newCrowd(ctx context.Context, tb testing.TB, n int) *crowd {
	tb.Helper()
	opts := prosodytest.FastPSA()
	opts["psa_max_presences_per_session"] = strconv.Itoa(n + 100)
	romeoRoster := make(map[string]string, n)
	users := make(map[string]string, n)
	rosters := make(map[string]map[string]string, n)
	for i := range n {
		name := contactName(i)
		romeoRoster[name+"@"+capulet] = "both"
		users[name] = pw
		rosters[name] = map[string]string{"romeo@montague.lit": "both"}
	}
	began := time.Now()
	net := prosodytest.Start(tb,
		prosodytest.Spec{Domain: montague, Users: map[string]string{"romeo": pw},
			Roster: map[string]map[string]string{"romeo": romeoRoster}, PSAOptions: opts, ExtraConfig: infoLog},
		prosodytest.Spec{Domain: capulet, Users: users, Roster: rosters, PSAOptions: opts, ExtraConfig: infoLog},
	)
	mont, capu := net.Server(montague), net.Server(capulet)
	tb.Logf("%d users registered and two servers started in %v", n+1, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	contacts := make([]*rawclient.Client, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
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
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, c := range contacts {
			if c != nil {
				wg.Go(func() { _ = c.Close() })
			}
		}
		wg.Wait()
	})
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("contact %s: %v", contactName(i), err)
		}
	}
	tb.Logf("%d contacts online in %v", n, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	rec := newRecorder()
	opts2 := append(clientOptions(mont, "lane"), rec.options()...)
	// Verifying 1,000 restored contacts would go on (10 a second) into the
	// next measurement.
	opts2 = append(opts2, client.WithVerify(client.VerifyOff, 0))
	romeo, err := client.Dial(ctx, jid.MustParse("romeo@montague.lit"), pw, opts2...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = romeo.Close() })
	rec.until(ctx, tb, "every contact online", func() bool { return romeo.Roster().Stats().Resources == n })
	tb.Logf("romeo connected and has %d contacts online after %v", n, time.Since(began).Round(time.Millisecond))
	// montague.lit asked romeo's caps when he sent his presence, before it
	// probed his contacts; the client answered before it read their answers.
	// After a round trip montague.lit has processed the answer: annotations
	// are on (the servers log at level info: no log line to wait for).
	roundTrip(ctx, tb, romeo)

	c := &crowd{net: net, romeo: romeo, rec: rec, n: n}
	c.cutAndHeal(ctx, tb) // warm-up: annotations are on once it passes
	return c
}

// filterEvents returns the events match accepts.
func filterEvents(es []event, match func(event) bool) []event {
	var out []event
	for _, e := range es {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitCount waits until n events from index from on matched, and returns the
// n-th. It counts as events come, without scanning the record again.
func (r *recorder) waitCount(ctx context.Context, tb testing.TB, from, n int, what string, match func(event) bool) event {
	tb.Helper()
	seen, i := 0, from
	for {
		r.mu.Lock()
		for ; i < len(r.events); i++ {
			if match(r.events[i]) {
				seen++
				if seen == n {
					e := r.events[i]
					r.mu.Unlock()
					return e
				}
			}
		}
		next := r.notify
		r.mu.Unlock()
		select {
		case <-next:
		case <-ctx.Done():
			tb.Fatalf("waiting for %d %s events: got %d: %v", n, what, seen, ctx.Err())
		}
	}
}

// delays are what one cut and heal of a crowd measured.
type delays struct {
	firstStale, lastStale time.Duration // from the cut
	lastRestored          time.Duration // from the heal
}

// cutAndHeal cuts the link, waits for the last stale event, heals it and
// waits for the last restored event.
func (c *crowd) cutAndHeal(ctx context.Context, tb testing.TB) delays {
	tb.Helper()
	// Each phase takes well under a second: a minute means something is lost.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	staleEv := func(e event) bool {
		return e.roster != nil && e.roster.Kind == roster.EventStale && e.roster.Mark.Condition == psa.ServerUnavailable
	}
	restoredEv := func(e event) bool {
		return e.roster != nil && e.roster.Kind == roster.EventRestored && e.roster.Mark.Condition == psa.ServerUnavailable
	}
	var d delays
	from := c.rec.mark()
	prev := c.prev
	c.prev = from
	cut := time.Now()
	must(tb, c.net.Cut(montague, capulet))
	last := c.rec.waitCount(ctx, tb, from, c.n, "stale", staleEv)
	d.lastStale = last.at.Sub(cut)
	first, _ := c.rec.waitFrom(ctx, tb, from, "first stale", staleEv)
	d.firstStale = first.at.Sub(cut)
	if st := c.romeo.Roster().Stats(); st.Stale != c.n {
		tb.Errorf("after the cut: %+v, want %d stale", st, c.n)
		for r := range c.romeo.Roster().Resources() {
			if r.Fresh() {
				full := r.JID.String()
				tb.Errorf("%s is fresh; its events since the previous cut:\n%s", full,
					dumpEvents(filterEvents(c.rec.since(prev), func(e event) bool { return e.roster != nil && e.roster.JID.String() == full })))
			}
		}
	}

	from = c.rec.mark()
	heal := time.Now()
	must(tb, c.net.Heal(montague, capulet))
	last = c.rec.waitCount(ctx, tb, from, c.n, "restored", restoredEv)
	d.lastRestored = last.at.Sub(heal)
	if st := c.romeo.Roster().Stats(); st.Stale != 0 || st.Resources != c.n {
		tb.Errorf("after the heal: %+v, want %d fresh resources", st, c.n)
	}

	// Settle before the next cut: after the restore montague.lit probed the
	// contacts, and capulet.lit's answers may still be on their way. A ping
	// to a contact travels behind the probes and its answer behind theirs.
	// (A cut while they travel once left a contact fresh during the outage:
	// its probe answer reached the client after the annotation.)
	s := c.romeo.Session()
	if s == nil {
		tb.Fatal("romeo is not connected")
	}
	to := jid.MustParse(contactName(0) + "@" + capulet + "/r")
	if err := s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: to}}.TokenReader(), nil); err != nil {
		tb.Fatalf("ping %s after the heal: %v", to, err)
	}
	return d
}

// The measurement of BenchmarkCutThousandContacts, once, with every test
// run: a cut marks romeo's 1,000 online contacts stale, a heal makes them all
// fresh again. It logs the delays (under -race they are longer than the
// benchmark's).
func TestThousandContactsCut(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	c := newCrowd(ctx, t, 1000)
	d := c.cutAndHeal(ctx, t)
	timing(t, "1,000 contacts: cut -> first stale event", d.firstStale)
	timing(t, "1,000 contacts: cut -> last stale event", d.lastStale)
	timing(t, "1,000 contacts: heal -> last restored event", d.lastRestored)
}

// BenchmarkCutThousandContacts is the figure of BENCHMARKS.md, "Real
// servers": romeo has 1,000 contacts on capulet.lit, all online; the time
// from cutting the link between montague.lit and capulet.lit to the last of
// the 1,000 stale events at romeo's psakit client (ms-to-last-stale; the
// first one: ms-to-first-stale), and from the heal to the last restored
// event (ms-to-last-restored). Each
// iteration is one cut and one heal; setting up takes about half a minute.
//
//	go test -run '^$' -bench ThousandContacts -benchtime 5x ./internal/e2e/
func BenchmarkCutThousandContacts(b *testing.B) {
	const n = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := newCrowd(ctx, b, n)
	var sum delays
	iterations := 0
	for b.Loop() {
		d := c.cutAndHeal(ctx, b)
		sum.firstStale += d.firstStale
		sum.lastStale += d.lastStale
		sum.lastRestored += d.lastRestored
		iterations++
		b.Logf("cut -> first stale event %v, last of %d %v; heal -> last restored event %v",
			d.firstStale.Round(time.Millisecond), n, d.lastStale.Round(time.Millisecond), d.lastRestored.Round(time.Millisecond))
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(iterations) }
	b.ReportMetric(ms(sum.lastStale), "ms-to-last-stale")
	b.ReportMetric(ms(sum.firstStale), "ms-to-first-stale")
	b.ReportMetric(ms(sum.lastRestored), "ms-to-last-restored")
}
