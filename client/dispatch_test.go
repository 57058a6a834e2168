package client

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

func rosterBatch(n int, tag string) []roster.Event {
	evs := make([]roster.Event, n)
	for i := range evs {
		evs[i] = roster.Event{Kind: roster.EventAvailable, JID: jid.MustParse(fmt.Sprintf("%s%d@example.com", tag, i))}
	}
	return evs
}

// The overflow rule: past the capacity, model events are dropped and
// counted, connection events never are, and the count arrives in order.
func TestDispatcherOverflow(t *testing.T) {
	leaktest.Check(t)
	g := newGate(t)
	var got []string
	delivered := make(chan struct{}, 1000)
	d := newDispatcher(callbacks{
		roster: func(e roster.Event) {
			if e.JID.Localpart() == "block0" {
				g.block() // the slow callback
			}
			got = append(got, e.JID.Localpart())
			delivered <- struct{}{}
		},
		conn: func(e ConnEvent) {
			got = append(got, e.Kind.String())
			delivered <- struct{}{}
		},
		overflow: func(n int) {
			got = append(got, fmt.Sprintf("overflow(%d)", n))
			delivered <- struct{}{}
		},
	}, 3, DefaultQueueBytes)
	t.Cleanup(func() { g.release(); d.close() })
	d.pushRoster(rosterBatch(1, "block")) // taken by the goroutine, which blocks
	<-g.entered
	d.pushRoster(rosterBatch(2, "a"))       // queued: 2
	d.pushRoster(rosterBatch(1, "b"))       // queued: 3, at capacity
	d.pushRoster(rosterBatch(5, "dropped")) // dropped
	// Never dropped; the count of what was dropped before goes in first.
	d.pushConn(ConnEvent{Kind: ConnDisconnected})
	d.pushRoster(rosterBatch(1, "dropped")) // dropped too
	d.mu.Lock()
	queued, dropped := d.cur.n, d.dropped
	d.mu.Unlock()
	if queued != 5 || dropped != 1 {
		t.Fatalf("queued %d, dropped %d; want 5 and 1", queued, dropped)
	}
	g.release()
	// block0 a0 a1 b0 overflow(5) disconnected, then overflow(1) as soon as
	// the queue is empty.
	for range 7 {
		<-delivered
	}
	d.pushRoster(rosterBatch(1, "c"))
	<-delivered
	want := "[block0 a0 a1 b0 overflow(5) disconnected overflow(1) c0]"
	if fmt.Sprint(got) != want {
		t.Fatalf("delivered %v, want %s", got, want)
	}
}

// When the callbacks keep up, a drop is reported as soon as the queue is
// empty, without waiting for another event.
func TestDispatcherOverflowReportedWhenIdle(t *testing.T) {
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
	}, 1, DefaultQueueBytes)
	t.Cleanup(func() { g.release(); d.close() })
	d.pushRoster(rosterBatch(1, "block"))
	<-g.entered
	d.pushRoster(rosterBatch(1, "kept"))
	d.pushRoster(rosterBatch(3, "lost"))
	g.release()
	if n := <-report; n != 3 {
		t.Fatalf("overflow(%d), want 3", n)
	}
}

// A batch larger than the capacity gets in while the queue is below it.
func TestDispatcherLargeBatch(t *testing.T) {
	leaktest.Check(t)
	n := 0
	d := newDispatcher(callbacks{roster: func(roster.Event) { n++ }, overflow: func(int) { t.Error("overflow") }}, 10, DefaultQueueBytes)
	d.pushRoster(rosterBatch(1000, "x"))
	d.close()
	if n != 1000 {
		t.Fatalf("delivered %d events, want 1000", n)
	}
}

// Close delivers what is queued, then refuses more.
func TestDispatcherClose(t *testing.T) {
	leaktest.Check(t)
	var got []string
	d := newDispatcher(callbacks{conn: func(e ConnEvent) { got = append(got, e.Kind.String()) }}, 10, DefaultQueueBytes)
	d.pushConn(ConnEvent{Kind: ConnConnected})
	d.pushConn(ConnEvent{Kind: ConnClosed})
	d.close()
	d.pushConn(ConnEvent{Kind: ConnConnected})
	if fmt.Sprint(got) != "[connected closed]" {
		t.Fatalf("delivered %v", got)
	}
}

// gate lets a test hold a callback: block closes entered and waits until
// release. The test's cleanup releases it too, so that a failed test leaves
// no goroutine behind.
type gate struct {
	entered, open chan struct{}
	once          sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{entered: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *gate) block()   { close(g.entered); <-g.open }
func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// Events of every kind come out in the order they went in, across chunks.
func TestDispatcherOrderAcrossKinds(t *testing.T) {
	leaktest.Check(t)
	var got []string
	d := newDispatcher(callbacks{
		roster: func(e roster.Event) { got = append(got, e.JID.Localpart()) },
		room:   func(e mucwatch.Event) { got = append(got, e.JID.Localpart()) },
		conn:   func(e ConnEvent) { got = append(got, "conn") },
		action: func(a RoomAction) { got = append(got, "action") },
	}, 100_000, DefaultQueueBytes)
	var want []string
	for i := range 40 {
		n := 1 + i*7%50 // runs of varied length, some longer than a chunk together
		evs := rosterBatch(n, fmt.Sprintf("r%d-", i))
		d.pushRoster(evs)
		for _, e := range evs {
			want = append(want, e.JID.Localpart())
		}
		rooms := make([]mucwatch.Event, i%3)
		for j := range rooms {
			rooms[j].JID = jid.MustParse(fmt.Sprintf("m%d-%d@muc.example/x", i, j))
			want = append(want, rooms[j].JID.Localpart())
		}
		d.pushRoom(rooms)
		if i%5 == 0 {
			d.pushConn(ConnEvent{Kind: ConnConnected})
			want = append(want, "conn")
		}
		if i%7 == 0 {
			d.pushAction(RoomAction{Kind: ActionRejoin})
			want = append(want, "action")
		}
	}
	d.close()
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %d events, want %d, in order", len(got), len(want))
	}
}
