package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// streamUsers is the population of BenchmarkStream: 20,000 contacts with two
// resources each, plus 10 rooms of 500 occupants.
const streamUsers = 20_000

// meter measures the CPU time of a benchmark's window.
type meter struct {
	cpu, gc time.Duration
	cycles  uint64
}

func startMeter() meter { return meter{cpu: cpuTime(), gc: gcCPU(), cycles: gcCycles()} }

// report adds cpu-ns/op, the CPU time of the whole process (client, fake
// server, GC) per op since startMeter, less sensitive than wall time to
// other load on a shared machine; and gc-cpu-ns/op, the garbage
// collector's share (whole cycles only: see gcCPU); and gc-cycles, the
// collections completed in the window: those of the run, not of its setup.
func (m meter) report(b *testing.B) {
	b.ReportMetric(float64(gcCycles()-m.cycles), "gc-cycles")
	b.ReportMetric(float64((cpuTime()-m.cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64((gcCPU()-m.gc).Nanoseconds())/float64(b.N), "gc-cpu-ns/op")
}

// runStream logs peer in to a fresh server, writes st, and waits until the
// peer has handled every presence. With b set, the timer runs from the
// first byte written to the last presence handled, and nothing else.
func runStream(tb testing.TB, b *testing.B, peer Peer, rosterJIDs []string, st *Stream) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := NewServer(rosterJIDs)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	var once sync.Once
	stop, err := peer.Start(ctx, srv.Addr(), rosterJIDs, st.Presences, func() { once.Do(func() { close(done) }) })
	if err != nil {
		srv.Close()
		tb.Fatalf("%s: %v (server: %v)", peer.Name, err, srv.Err())
	}
	defer func() {
		srv.Close()
		stop()
	}()
	var m meter
	if b != nil {
		runtime.GC()
		m = startMeter()
		b.ResetTimer()
	}
	werr := make(chan error, 1)
	go func() { werr <- srv.WriteStream(st.Data) }()
	select {
	case <-done:
	case err := <-werr:
		if err == nil {
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				tb.Fatalf("%s: handled only part of the stream", peer.Name)
			}
		} else {
			tb.Fatalf("%s: writing the stream: %v", peer.Name, err)
		}
	}
	if b != nil {
		b.StopTimer()
		m.report(b)
	}
}

// TestPeers runs every peer on a short stream: each logs in and handles
// every presence. It checks the harness, not speed.
func TestPeers(t *testing.T) {
	for _, peer := range Peers {
		t.Run(peer.Name, func(t *testing.T) {
			pop := NewPopulation(200, 2, 1)
			runStream(t, nil, peer, pop.RosterJIDs(), pop.Generate(300))
		})
	}
}

// TestPsakitModelMatchesStream checks that after a stream the roster model
// holds what the stream says: the resources online and the ones marked.
func TestPsakitModelMatchesStream(t *testing.T) {
	pop := NewPopulation(300, 2, 3)
	st := pop.Generate(3000)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := NewServer(pop.RosterJIDs())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	tr, stop, err := startTracker(ctx, srv.Addr(), nil, nil, nil, func() { close(done) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Close(); stop() }()
	if err := srv.WriteStream(st.Data); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the end marker never reached the callback")
	}
	online, marked := pop.counts()
	stats := tr.Roster().Stats()
	// The end marker is one more resource, of a stranger.
	if stats.Resources != online+1 || stats.Stale != marked {
		t.Errorf("model %+v; stream: %d online, %d marked", stats, online, marked)
	}
}

func TestStreamMix(t *testing.T) {
	pop := NewPopulation(streamUsers, 2, 1)
	st := pop.Generate(200_000)
	m := st.Mix
	t.Logf("%d presences, %d bytes, %.0f bytes per stanza", st.Presences, m.Bytes, float64(m.Bytes)/float64(st.Presences))
	t.Logf("available %d, annotated %d, restored %d, unavailable %d, MUC %d; with delay %d",
		m.Available, m.Annotated, m.Restored, m.Unavailable, m.MUC, m.Delayed)
	if m.Available == 0 || m.Annotated == 0 || m.Restored == 0 || m.Unavailable == 0 || m.MUC == 0 {
		t.Error("a kind of stanza is missing")
	}
	// The stanzas decode without a problem.
	n := 0
	dec := xml.NewDecoder(bytes.NewReader(st.Data[:min(len(st.Data), 1<<20)]))
	for {
		p, err := presence.Decode(dec)
		if err != nil {
			break
		}
		if len(p.Problems) > 0 {
			t.Fatalf("problems in %+v", p)
		}
		n++
	}
	if n < 1000 {
		t.Errorf("only %d presences decoded", n)
	}
}

// BenchmarkStream is the comparison with the peers: b.N presence stanzas of
// the realistic mix over loopback TCP; ns/op, B/op and allocs/op are per
// stanza, from the first byte written to the last stanza handled. Run each
// peer in its own process, interleaved (scripts/bench.sh).
func BenchmarkStream(b *testing.B) {
	for _, peer := range Peers {
		b.Run("peer="+peer.Name, func(b *testing.B) {
			pop := NewPopulation(streamUsers, 2, 1)
			st := pop.Generate(b.N)
			b.ReportAllocs()
			runStream(b, b, peer, pop.RosterJIDs(), st)
		})
	}
}

var sizes = []struct {
	name string
	n    int
}{{"1k", 1_000}, {"100k", 100_000}, {"1M", 1_000_000}}

// fillRoster puts the population's contacts in the roster and their
// resources online, and returns the heap bytes the resources added per
// resource (runtime.MemStats after GC).
func fillRoster(m *roster.Model, pop *Population) (bytesPerResource float64) {
	bares := pop.RosterJIDs()
	items := make([]roster.Item, len(bares))
	for i, s := range bares {
		items[i] = roster.Item{JID: jid.MustParse(s), Subscription: roster.SubscriptionBoth}
	}
	m.SetItems("v1", items)
	items = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	pop.Online(func(p *presence.Presence) {
		m.ApplyPresence(p)
		n++
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// BenchmarkClientStack measures psakit's whole client stack per presence
// (loopback TCP, mellium session, Tracker, roster model, event queue, no-op
// callback) with 1k, 100k and 1M roster entries online, each with one
// resource: updates, annotations and restores spread uniformly over the
// roster. B/resource is the heap the model holds per online resource
// (runtime.MemStats after GC), its JID included; gc-cpu-ns/op is the
// runtime's estimate of the garbage collector's CPU time over the window
// (whole cycles only: see gcCPU), which is what grows with the roster.
func BenchmarkClientStack(b *testing.B) {
	for _, size := range sizes {
		b.Run("entries="+size.name, func(b *testing.B) {
			pop := NewPopulation(size.n, 1, 2)
			var perResource float64
			runTracker(b, pop, func(m *roster.Model) { perResource = fillRoster(m, pop) }, func() *Stream { return pop.GenerateOnline(b.N) })
			b.ReportMetric(perResource, "B/resource")
		})
	}
}

// runTracker runs psakit's Tracker with a roster filled by fill, then times
// the stream gen makes.
func runTracker(b *testing.B, pop *Population, fill func(*roster.Model), gen func() *Stream) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := NewServer(nil)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	var once sync.Once
	_, stop, err := startTracker(ctx, srv.Addr(), fill, nil, nil, func() { once.Do(func() { close(done) }) })
	if err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Close(); stop() }()
	st := gen()
	b.ReportAllocs()
	runtime.GC()
	m := startMeter()
	b.ResetTimer()
	go func() { _ = srv.WriteStream(st.Data) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatal("timeout")
	}
	b.StopTimer()
	m.report(b)
}

// burstSize is the number of annotated presences of BenchmarkBurst.
const burstSize = 50_000

// BenchmarkBurst measures a server outage: 50,000 contacts online, then
// 50,000 presences annotated server-unavailable in one burst over loopback.
// One op is the whole burst, from its first byte to the callback of its
// last event; the delay of each presence is from the moment mellium hands
// it to the client (the handler starts on it) to its EventStale callback.
func BenchmarkBurst(b *testing.B) {
	var delays []time.Duration
	var allocs, stanzas uint64
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		pop := NewPopulation(burstSize, 1, 4)
		arrived := make([]time.Time, 0, burstSize+1)
		delivered := make([]time.Time, 0, burstSize)
		wrap := func(h xmpp.Handler) xmpp.Handler {
			return xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
				if start.Name.Local == "presence" {
					arrived = append(arrived, time.Now())
				}
				return h.HandleXMPP(r, start)
			})
		}
		onEvent := func(e roster.Event) {
			if e.Kind == roster.EventStale {
				delivered = append(delivered, time.Now())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		srv, err := NewServer(nil)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		_, stop, err := startTracker(ctx, srv.Addr(), func(m *roster.Model) { fillRoster(m, pop) }, wrap, onEvent, func() { close(done) })
		if err != nil {
			b.Fatal(err)
		}
		st := pop.GenerateBurst(burstSize)
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		b.StartTimer()
		go func() { _ = srv.WriteStream(st.Data) }()
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			b.Fatal("timeout")
		}
		b.StopTimer()
		runtime.ReadMemStats(&m1)
		allocs += m1.Mallocs - m0.Mallocs
		stanzas += uint64(st.Presences)
		srv.Close()
		stop()
		cancel()
		if len(delivered) != burstSize || len(arrived) != burstSize+1 {
			b.Fatalf("%d stale events, %d presences arrived; want %d", len(delivered), len(arrived), burstSize)
		}
		for i := range delivered {
			delays = append(delays, delivered[i].Sub(arrived[i]))
		}
	}
	slices.Sort(delays)
	q := func(f float64) float64 {
		return float64(delays[min(len(delays)-1, int(f*float64(len(delays))))].Microseconds())
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(delays[len(delays)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(stanzas), "ns/stanza")
	b.ReportMetric(float64(allocs)/float64(stanzas), "allocs/stanza")
}

func (p *Population) counts() (online, marked int) {
	for _, u := range p.users {
		for _, r := range u.res {
			if r.online {
				online++
				if r.marker >= 0 {
					marked++
				}
			}
		}
	}
	return online, marked
}

func ExamplePeerByName() {
	p, _ := PeerByName("psakit")
	fmt.Println(p.Name)
	// Output: psakit
}
