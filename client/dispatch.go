package client

import (
	"sync"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// callbacks are the user's event handlers; any may be nil.
type callbacks struct {
	roster   func(roster.Event)
	room     func(mucwatch.Event)
	action   func(RoomAction)
	conn     func(ConnEvent)
	verify   func(VerifyResult)
	presence func(presence.Presence)
	overflow func(int)
}

// batch is what one model update produced: events of one kind, delivered in
// order. Exactly one field is set.
type batch struct {
	roster   []roster.Event
	room     []mucwatch.Event
	action   *RoomAction
	conn     *ConnEvent
	verify   *VerifyResult
	presence *presence.Presence
	overflow int
}

func (b *batch) len() int {
	if n := len(b.roster) + len(b.room); n > 0 {
		return n
	}
	return 1
}

// dispatcher delivers events to the callbacks on its own goroutine, in the
// order they were produced, so that a slow callback never stalls the XMPP
// stream.
//
// The overflow rule: while more than capacity events wait, further batches
// of model events are dropped and counted (connection events are never
// dropped, nor are room policy actions). The count is delivered to the overflow callback in order: after
// the events queued before the drop, before those queued after it. Since the
// models are always current, a user who sees an overflow re-reads their
// snapshots. A batch larger than the capacity is accepted when the queue is
// below capacity, so that one large event (every resource marked stale when
// the connection drops) is not lost while the callbacks keep up.
type dispatcher struct {
	cb       callbacks
	capacity int

	mu      sync.Mutex
	cond    sync.Cond
	q       []batch
	head    int
	queued  int // events in q[head:]
	dropped int // events dropped since the last overflow notice was queued
	closed  bool
	done    chan struct{}
}

func newDispatcher(cb callbacks, capacity int) *dispatcher {
	d := &dispatcher{cb: cb, capacity: capacity, done: make(chan struct{})}
	d.cond.L = &d.mu
	go d.run()
	return d
}

// push queues b. Model events are dropped when the queue is full; force
// queues b anyway (connection events).
func (d *dispatcher) push(b batch, force bool) {
	n := b.len()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if !force && d.queued >= d.capacity {
		d.dropped += n
		return
	}
	if d.dropped > 0 {
		d.q = append(d.q, batch{overflow: d.dropped})
		d.queued++
		d.dropped = 0
	}
	d.q = append(d.q, b)
	d.queued += n
	d.cond.Signal()
}

func (d *dispatcher) pushRoster(evs []roster.Event) {
	if len(evs) > 0 && d.cb.roster != nil {
		d.push(batch{roster: evs}, false)
	}
}

func (d *dispatcher) pushRoom(evs []mucwatch.Event) {
	if len(evs) > 0 && d.cb.room != nil {
		d.push(batch{room: evs}, false)
	}
}

// pushAction queues a policy action. Like connection events, actions are
// rare and never dropped.
func (d *dispatcher) pushAction(a RoomAction) {
	if d.cb.action != nil {
		d.push(batch{action: &a}, true)
	}
}

func (d *dispatcher) pushConn(e ConnEvent) {
	if d.cb.conn != nil {
		d.push(batch{conn: &e}, true)
	}
}

func (d *dispatcher) pushVerify(r VerifyResult) {
	if d.cb.verify != nil {
		d.push(batch{verify: &r}, false)
	}
}

func (d *dispatcher) pushPresence(p *presence.Presence) {
	if d.cb.presence != nil {
		d.push(batch{presence: p}, false)
	}
}

// close stops accepting events, lets the goroutine deliver what is queued,
// and waits for it to end. It must not be called from a callback.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.cond.Signal()
	d.mu.Unlock()
	<-d.done
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		for d.head == len(d.q) && d.dropped == 0 && !d.closed {
			d.cond.Wait()
		}
		var b batch
		switch {
		case d.head < len(d.q):
			b = d.q[d.head]
			d.q[d.head] = batch{} // let the events be collected
			d.head++
			d.queued -= b.len()
			if d.head == len(d.q) {
				d.q, d.head = d.q[:0], 0
			} else if d.head > 1024 && d.head > len(d.q)/2 {
				d.q = d.q[:copy(d.q, d.q[d.head:])]
				d.head = 0
			}
		case d.dropped > 0:
			b = batch{overflow: d.dropped}
			d.dropped = 0
		default: // closed and drained
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		d.deliver(&b)
	}
}

func (d *dispatcher) deliver(b *batch) {
	switch {
	case b.roster != nil:
		for _, e := range b.roster {
			d.cb.roster(e)
		}
	case b.room != nil:
		for _, e := range b.room {
			d.cb.room(e)
		}
	case b.action != nil:
		d.cb.action(*b.action)
	case b.conn != nil:
		d.cb.conn(*b.conn)
	case b.verify != nil:
		d.cb.verify(*b.verify)
	case b.presence != nil:
		d.cb.presence(*b.presence)
	case b.overflow > 0:
		if d.cb.overflow != nil {
			d.cb.overflow(b.overflow)
		}
	}
}
