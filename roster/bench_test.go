package roster_test

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

var benchSizes = []struct {
	name string
	n    int
}{{"1k", 1_000}, {"100k", 100_000}, {"1M", 1_000_000}}

func contactJID(i int) string {
	return "user" + strconv.Itoa(i) + "@remote" + strconv.Itoa(i%50) + ".example"
}

// filledModel returns a model with n roster contacts, each with one resource
// online. Models are built once per size and shared by the benchmarks.
func filledModel(n int) *roster.Model {
	filledMu.Lock()
	defer filledMu.Unlock()
	if m := filled[n]; m != nil {
		return m
	}
	m := roster.New(jid.MustParse("bench@bench.example/psakit"))
	fillModel(m, n, false)
	filled[n] = m
	return m
}

var (
	filledMu sync.Mutex
	filled   = map[int]*roster.Model{}
)

// fillModel puts n contacts in the roster, then one resource of each
// online.
func fillModel(m *roster.Model, n int, own bool) (peerBytes int) {
	setItems(m, n)
	return addResources(m, n, own)
}

func setItems(m *roster.Model, n int) {
	items := make([]roster.Item, n)
	for i := range items {
		items[i] = roster.Item{JID: jid.MustParse(contactJID(i)), Subscription: roster.SubscriptionBoth}
	}
	m.SetItems("v1", items)
}

// addResources puts one resource of each of the n contacts online and
// returns the bytes of the strings the resources keep that the peer sent
// (full JID, status, caps). With own set, every resource gets its own copy
// of each string, as decoding gives; else they share one.
func addResources(m *roster.Model, n int, own bool) (peerBytes int) {
	clone := func(s string) string { return s }
	if own {
		clone = strings.Clone
	}
	for i := range n {
		from := contactJID(i) + "/Conversations.Zx4u"
		p := &presence.Presence{From: jid.MustParse(from)}
		p.Show = presence.ShowAway
		p.Status = []presence.Text{{Lang: "en", Value: clone("On a call until 15:00, ping me later")}}
		p.Caps = presence.Caps{Hash: clone("sha-1"), Node: clone("http://conversations.im"), Ver: clone("wVW3JwD4+fiS6cwvOqFlUUbJ7ds=")}
		peerBytes += len(from) + len(p.Status[0].Value) + len(p.Caps.Hash) + len(p.Caps.Node) + len(p.Caps.Ver)
		m.ApplyPresence(p)
	}
	return peerBytes
}

// updates returns k decoded presences about random contacts of n: an
// annotation, then the empty annotation that restores it, so that applying
// them in a cycle marks and clears resources for ever.
func updates(b *testing.B, n, k int) []*presence.Presence {
	ps := make([]*presence.Presence, 0, k)
	seed := uint64(12345)
	for len(ps) < k {
		seed = seed*6364136223846793005 + 1442695040888963407
		i := int(seed>>33) % n
		from := contactJID(i) + "/Conversations.Zx4u"
		domain := "remote" + strconv.Itoa(i%50) + ".example"
		for _, cond := range []string{"<server-unavailable/>", ""} {
			p, err := presence.Unmarshal([]byte(fmt.Sprintf(`<presence xml:lang="en" from="%s" to="bench@bench.example/psakit"><show>away</show>`+
				`<status>On a call until 15:00, ping me later</status><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="http://conversations.im" ver="wVW3JwD4+fiS6cwvOqFlUUbJ7ds="/>`+
				`<delay xmlns="urn:xmpp:delay" from="%s" stamp="2026-11-24T10:00:00Z"/><state-annotation xmlns="urn:xmpp:psa" from="%s">%s</state-annotation></presence>`,
				from, domain, domain, cond)))
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, &p)
		}
	}
	return ps
}

// BenchmarkApplyPresence measures one annotated presence (a mark set or
// cleared) on a resource of a roster of 1k, 100k or 1M online contacts,
// chosen at random: the model's share of a burst. Decoding is not measured;
// the events go to one reused slice (AppendPresence).
func BenchmarkApplyPresence(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("entries="+size.name, func(b *testing.B) {
			m := filledModel(size.n)
			ps := updates(b, size.n, 1<<14)
			dst := make([]roster.Event, 0, 8)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dst = m.AppendPresence(dst[:0], ps[i%len(ps)])
				if len(dst) != 1 {
					b.Fatalf("%d events: %+v", len(dst), dst)
				}
			}
			b.StopTimer()
			// Leave every resource fresh for the next run.
			for i := b.N; i%2 != 0; i++ {
				m.AppendPresence(dst[:0], ps[i%len(ps)])
			}
		})
	}
}

// BenchmarkResourceMemory measures the heap a resource costs: 1M roster
// contacts, then one resource of each online, with its own copy of every
// string as decoding gives (runtime.MemStats after GC). B/resource is
// everything the resources added; B/resource-own leaves out the bytes of the
// strings the peer sent (full JID, status, caps), which a client must keep
// in some form. Run it with -benchtime=1x.
func BenchmarkResourceMemory(b *testing.B) {
	const n = 1_000_000
	for range b.N {
		b.StopTimer()
		m := roster.New(jid.MustParse("bench@bench.example/psakit"))
		var m0, m1, m2 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		setItems(m, n)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.StartTimer()
		peer := addResources(m, n, true)
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&m2)
		if s := m.Stats(); s.Resources != n {
			b.Fatalf("%+v", s)
		}
		res := float64(int64(m2.HeapAlloc)-int64(m1.HeapAlloc)) / n
		b.ReportMetric(res, "B/resource")
		b.ReportMetric(res-float64(peer)/n, "B/resource-own")
		b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/n, "B/contact")
		runtime.KeepAlive(m)
		b.StartTimer()
	}
}

// BenchmarkMarkModel measures what a roster of 1M online contacts (one
// resource each, every string its own copy as decoding gives) costs the
// garbage collector: one op is a full collection with the model live, less
// a collection of what was live before (the models other benchmarks of the
// process keep, for one). In a client every cycle pays this, and the
// tokenizer's allocation rate sets how often cycles come (see
// BENCHMARKS.md, flat cost). The model's storage is pointer-free, so a
// cycle should cost about a nanosecond per contact; the first version, with
// ten heap objects per contact, cost 340-510 ns. Run it alone (-bench
// '^BenchmarkMarkModel$'): other benchmarks' leftovers add noise to the
// subtraction.
func BenchmarkMarkModel(b *testing.B) {
	const n = 1_000_000
	collect := func() time.Duration {
		start := time.Now()
		for range b.N {
			runtime.GC()
		}
		return time.Since(start)
	}
	b.StopTimer()
	var m0, m1 runtime.MemStats
	runtime.GC()
	base := collect()
	runtime.ReadMemStats(&m0)
	m := roster.New(jid.MustParse("bench@bench.example/psakit"))
	fillModel(m, n, true)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.StartTimer()
	for range b.N {
		runtime.GC()
	}
	b.StopTimer()
	b.ReportMetric(float64(int64(m1.HeapObjects)-int64(m0.HeapObjects))/n, "objects/contact")
	b.ReportMetric(float64((b.Elapsed()-base).Nanoseconds())/float64(b.N)/n, "ns/contact")
	runtime.KeepAlive(m)
}
