package roster_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// bigPresence returns an available presence from from with the most status
// text the decoder keeps: MaxStatuses texts of MaxStatusBytes each.
func bigPresence(t testing.TB, from string) *presence.Presence {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `<presence from="%s">`, from)
	text := strings.Repeat("x", presence.MaxStatusBytes)
	for i := range presence.MaxStatuses {
		fmt.Fprintf(&b, `<status xml:lang="l%d">%s</status>`, i, text)
	}
	b.WriteString(`</presence>`)
	p, err := presence.Unmarshal([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return &p
}

// liveHeap returns the bytes of live heap objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Strangers flooding the model with large presences, at the default
// limits: what the model holds stays within the default stranger budget,
// measured on the heap, whatever the counts allow (64 strangers × 32
// resources × a 32 KiB block is 64 MiB).
func TestStrangerBytesDefault(t *testing.T) {
	const budget = roster.DefaultMaxStrangerBytes
	before := liveHeap()
	m, _ := newModel(t)
	rejected := 0
	for s := range 64 {
		for r := range roster.DefaultMaxResources {
			for _, e := range m.ApplyPresence(bigPresence(t, fmt.Sprintf("s%d@evil.example/r%d", s, r))) {
				if e.Kind == roster.EventRejected && errors.Is(e.Err, roster.ErrLimit) {
					rejected++
				}
			}
		}
	}
	held := liveHeap() - before
	runtime.KeepAlive(m)
	if slack := uint64(2 << 20); held > budget+slack {
		t.Fatalf("the model holds %d bytes of heap, over the %d-byte budget", held, budget)
	}
	if rejected == 0 {
		t.Fatalf("no presence was rejected")
	}
	checkStats(t, m)
}

func TestByteBudgets(t *testing.T) {
	// One large record takes a 32 KiB block.
	const block = 32 << 10
	t.Run("strangers", func(t *testing.T) {
		m, _ := newModel(t, roster.WithMaxStrangerBytes(3*block))
		friend := jid.MustParse("friend@capulet.lit")
		m.SetItems("", []roster.Item{{JID: friend, Subscription: roster.SubscriptionBoth}})
		for i := range 3 {
			expect(t, m.ApplyPresence(bigPresence(t, fmt.Sprintf("s%d@evil.example/x", i))), "available")
		}
		evs := m.ApplyPresence(bigPresence(t, "s3@evil.example/x"))
		if kinds(evs) != "rejected" || !errors.Is(evs[0].Err, roster.ErrLimit) {
			t.Fatalf("events %+v", evs)
		}
		// A known stranger may not grow either; it keeps its state.
		m.ApplyPresence(pres(t, `<presence from="s2@evil.example/x" type="unavailable"/>`))
		expect(t, m.ApplyPresence(pres(t, `<presence from="s2@evil.example/x"/>`)), "available")
		expect(t, m.ApplyPresence(pres(t, `<presence from="s4@evil.example/x"/>`)), "available")
		expect(t, m.ApplyPresence(bigPresence(t, "s2@evil.example/x")), "rejected")
		if r, _ := m.Resource(jid.MustParse("s2@evil.example/x")); len(r.Status) != 0 {
			t.Fatalf("a rejected update was applied: %+v", r)
		}
		if s := m.Stats(); s.StrangerBytes > 3*block {
			t.Fatalf("stats %+v", s)
		}
		// Roster contacts do not count against the strangers' budget.
		expect(t, m.ApplyPresence(bigPresence(t, "friend@capulet.lit/x")), "available")
		checkStats(t, m)
		// A removed item whose presence would break the budget loses it.
		evs, _ = m.ApplyPush(jid.JID{}, "", roster.Item{JID: friend, Subscription: roster.SubscriptionRemove})
		expect(t, evs, "item-removed,unavailable")
		checkStats(t, m)
	})
	t.Run("total", func(t *testing.T) {
		m, _ := newModel(t, roster.WithMaxBytes(2*block+1024))
		items := []roster.Item{{JID: jid.MustParse("a@capulet.lit")}, {JID: jid.MustParse("b@capulet.lit")}, {JID: jid.MustParse("c@capulet.lit")}}
		m.SetItems("", items)
		expect(t, m.ApplyPresence(bigPresence(t, "a@capulet.lit/x")), "available")
		expect(t, m.ApplyPresence(bigPresence(t, "b@capulet.lit/x")), "available")
		evs := m.ApplyPresence(bigPresence(t, "c@capulet.lit/x"))
		if kinds(evs) != "rejected" || !errors.Is(evs[0].Err, roster.ErrLimit) {
			t.Fatalf("events %+v", evs)
		}
		// Shrinking is always allowed, and frees room.
		expect(t, m.ApplyPresence(pres(t, `<presence from="a@capulet.lit/x"/>`)), "updated")
		expect(t, m.ApplyPresence(bigPresence(t, "c@capulet.lit/x")), "available")
		if s := m.Stats(); s.Bytes > 2*block+1024 {
			t.Fatalf("stats %+v", s)
		}
		checkStats(t, m)
	})
}

// MarkDisconnectedUpTo marks every resource but builds events within the
// bound: a disconnect does not snapshot a whole large roster at once.
func TestMarkDisconnectedUpTo(t *testing.T) {
	m, _ := newModel(t)
	for i := range 40 {
		m.ApplyPresence(bigPresence(t, fmt.Sprintf("s%d@evil.example/x", i)))
	}
	const bound = 10 * presence.MaxStatuses * presence.MaxStatusBytes
	evs, omitted := m.MarkDisconnectedUpTo(bound)
	size := 0
	for _, e := range evs {
		for _, s := range e.Resource.Status {
			size += len(s.Value)
		}
	}
	if size > bound || len(evs) == 0 || len(evs)+omitted != 40 {
		t.Fatalf("%d events holding %d bytes of status, %d omitted", len(evs), size, omitted)
	}
	if s := m.Stats(); s.Stale != 40 {
		t.Fatalf("stats %+v: not every resource was marked", s)
	}
	checkStats(t, m)
}

// The first roster fetch of a large roster allocates about what it keeps
// and returns, not five times the events: appending 20,000 events one by
// one grows the slice by a quarter at a time.
func TestSetItemsAllocation(t *testing.T) {
	const n = 20_000
	items := make([]roster.Item, n)
	for i := range items {
		items[i] = roster.Item{JID: jid.MustParse(fmt.Sprintf("c%d@capulet.lit", i)), Subscription: roster.SubscriptionBoth}
	}
	m, _ := newModel(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	evs := m.SetItems("v1", items)
	runtime.ReadMemStats(&after)
	if len(evs) != n {
		t.Fatalf("%d events", len(evs))
	}
	events := uint64(n) * uint64(unsafe.Sizeof(roster.Event{}))
	if got := after.TotalAlloc - before.TotalAlloc; got > 2*events {
		t.Fatalf("SetItems allocated %d bytes for %d bytes of events", got, events)
	}
}
