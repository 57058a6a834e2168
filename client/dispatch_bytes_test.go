package client

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// bigEvent is an event that holds a status text of its own, of n bytes.
func bigEvent(i, n int) roster.Event {
	e := roster.Event{Kind: roster.EventAvailable, JID: jid.MustParse(fmt.Sprintf("big%d@example.com/x", i))}
	e.Resource.Status = []presence.Text{{Value: strings.Repeat("x", n)}}
	return e
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Events queued behind a blocked callback, at the default limits: what
// waits stays within the default byte budget, measured on the heap,
// whatever the count allows (4,000 events with 16 KiB each are 64 MiB), and
// the rest is reported as an overflow.
func TestDispatcherBytesDefault(t *testing.T) {
	leaktest.Check(t)
	g := newGate(t)
	report := make(chan int, 1)
	d := newDispatcher(callbacks{
		roster: func(e roster.Event) {
			if e.JID.Localpart() == "block0" {
				g.block()
			}
		},
		overflow: func(n int) { report <- n },
	}, DefaultQueueSize, DefaultQueueBytes)
	t.Cleanup(func() { g.release(); d.close() })
	d.pushRoster(rosterBatch(1, "block"))
	<-g.entered
	before := liveHeap()
	const n = 4000
	for i := range n {
		d.pushRoster([]roster.Event{bigEvent(i, 16<<10)})
	}
	held := liveHeap() - before
	if slack := uint64(2 << 20); held > DefaultQueueBytes+slack {
		t.Fatalf("the queue holds %d bytes of heap, over the %d-byte budget", held, DefaultQueueBytes)
	}
	g.release()
	if dropped := <-report; dropped == 0 || dropped >= n {
		t.Fatalf("overflow(%d)", dropped)
	}
}

// A batch that reaches the byte budget gets in up to it; the rest is
// counted, and reported in order.
func TestDispatcherBytesBatch(t *testing.T) {
	leaktest.Check(t)
	g := newGate(t)
	var got []string
	delivered := make(chan struct{}, 100)
	batch := []roster.Event{bigEvent(0, 1000), bigEvent(1, 1000), bigEvent(2, 1000), bigEvent(3, 1000), bigEvent(4, 1000)}
	size := rosterEventSize(&batch[0])
	d := newDispatcher(callbacks{
		roster: func(e roster.Event) {
			if e.JID.Localpart() == "block0" {
				g.block()
			}
			got = append(got, e.JID.Localpart())
			delivered <- struct{}{}
		},
		overflow: func(n int) {
			got = append(got, fmt.Sprintf("overflow(%d)", n))
			delivered <- struct{}{}
		},
	}, 100, 2*size+1) // three events reach it
	t.Cleanup(func() { g.release(); d.close() })
	d.pushRoster(rosterBatch(1, "block"))
	<-g.entered
	d.pushRoster(batch)
	d.pushRoster(batch[:1]) // over the budget: dropped
	g.release()
	for range 5 {
		<-delivered
	}
	if want := "[block0 big0 big1 big2 overflow(3)]"; fmt.Sprint(got) != want {
		t.Fatalf("delivered %v, want %s", got, want)
	}
}

// When the stream drops, the stale events of a large roster are built only
// up to the queue's byte budget; the others are reported as an overflow,
// and every resource is marked all the same.
func TestDisconnectedWithinQueueBytes(t *testing.T) {
	leaktest.Check(t)
	var stale, dropped int
	tr, err := NewTracker(jid.MustParse("romeo@montague.lit/lane"),
		WithQueueBytes(64<<10),
		OnRoster(func(e roster.Event) {
			if e.Kind == roster.EventStale {
				stale++
			}
		}),
		OnOverflow(func(n int) { dropped += n }))
	if err != nil {
		t.Fatal(err)
	}
	status := strings.Repeat("x", 1000)
	for i := range 200 {
		p, err := presence.Unmarshal([]byte(fmt.Sprintf(`<presence from="c%d@capulet.lit/x"><status>%s</status></presence>`, i, status)))
		if err != nil {
			t.Fatal(err)
		}
		tr.roster.ApplyPresence(&p)
	}
	tr.Disconnected()
	tr.Close() // delivers what was queued
	if stale == 0 || stale+dropped != 200 || stale*1000 > 64<<10 {
		t.Fatalf("%d stale events delivered, %d dropped", stale, dropped)
	}
	if s := tr.Roster().Stats(); s.Stale != 200 {
		t.Fatalf("stats %+v", s)
	}
}

// Stanzas handed to OnUnacked while its callback blocks: every batch is
// delivered (none is dropped: the application must learn what may be
// lost), but past the byte budget without their bytes, so what waits stays
// within the budget measured on the heap.
func TestDispatcherUnackedBytes(t *testing.T) {
	leaktest.Check(t)
	g := newGate(t)
	var batches, stanzas, withRaw int
	d := newDispatcher(callbacks{
		unacked: func(s []UnackedStanza, _ error) {
			if batches == 0 {
				g.block()
			}
			batches++
			stanzas += len(s)
			for _, u := range s {
				if u.Raw != nil {
					withRaw++
				}
			}
		},
	}, DefaultQueueSize, DefaultQueueBytes)
	t.Cleanup(func() { g.release(); d.close() })
	push := func(n int) {
		b := &unackedBatch{reason: ErrUnackedOverflow}
		for range n {
			b.stanzas = append(b.stanzas, UnackedStanza{Raw: make([]byte, 16<<10)})
		}
		d.push(rareEvent{unacked: b}, true)
	}
	push(1)
	<-g.entered
	before := liveHeap()
	const n = 4000
	for range n {
		push(1)
	}
	held := liveHeap() - before
	if slack := uint64(2 << 20); held > DefaultQueueBytes+slack {
		t.Fatalf("the queue holds %d bytes of heap, over the %d-byte budget", held, DefaultQueueBytes)
	}
	g.release()
	d.close()
	if batches != n+1 || stanzas != n+1 {
		t.Fatalf("delivered %d batches of %d stanzas, want %d", batches, stanzas, n+1)
	}
	if withRaw == 0 || withRaw == n+1 {
		t.Fatalf("%d of %d stanzas kept their bytes", withRaw, n+1)
	}
}

// A batch of stanzas for OnUnacked larger than the byte budget, while
// nothing waits (a resumption failed with more kept for re-sending, by
// WithUnackedBytes, than WithQueueBytes): the callback has not fallen
// behind, so the stanzas keep their bytes, as a large batch of model events
// gets in while the queue is below its budget.
func TestDispatcherUnackedBatchOverBudget(t *testing.T) {
	leaktest.Check(t)
	got := make(chan []UnackedStanza, 1)
	d := newDispatcher(callbacks{
		unacked: func(s []UnackedStanza, _ error) { got <- s },
	}, DefaultQueueSize, 64<<10)
	t.Cleanup(d.close)
	b := &unackedBatch{reason: ErrResumeFailed}
	for range 10 {
		b.stanzas = append(b.stanzas, UnackedStanza{Raw: make([]byte, 10<<10)})
	}
	d.push(rareEvent{unacked: b}, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s []UnackedStanza
	select {
	case s = <-got:
	case <-ctx.Done():
		t.Fatal("the batch never reached the callback")
	}
	for i, u := range s {
		if u.Raw == nil {
			t.Fatalf("stanza %d of %d lost its bytes with nothing waiting", i, len(s))
		}
	}
}
