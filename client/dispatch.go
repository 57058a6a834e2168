package client

import (
	"sync"
	"time"

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

// The tuning of the dispatcher's wake-ups. While the callback goroutine
// sleeps, queueing wakes it at once only once wakeBatch events wait;
// otherwise a timer wakes it after wakeDelay. Under a burst one wake-up then
// serves hundreds of presences instead of one (the wake-up, not the queue, is
// what a presence costs most here), and an isolated event waits at most
// wakeDelay.
const (
	wakeBatch = 64
	wakeDelay = 200 * time.Microsecond
	// chunk is how many events the callback goroutine takes per lock.
	chunk = 256
)

// kind says which queue the next events come from.
type kind uint8

const (
	kindRoster kind = iota
	kindRoom
	kindOther
)

// run is a run of consecutive events of one kind.
type run struct {
	kind kind
	n    int
}

// other is a rare event: exactly one field is set.
type other struct {
	conn     *ConnEvent
	action   *RoomAction
	verify   *VerifyResult
	presence *presence.Presence
	overflow int
}

// dispatcher delivers events to the callbacks on its own goroutine, in the
// order they were produced, so that a slow callback never stalls the XMPP
// stream.
//
// Events are held by value in rings that grow as needed and shrink back
// after a burst, so queueing the events of a presence allocates nothing.
//
// The overflow rule: while more than capacity events wait, further model
// events are dropped and counted (connection events and room policy actions
// are never dropped). The count is delivered to the overflow callback in
// order: after the events queued before the drop, before those queued after
// it. Since the models are always current, a user who sees an overflow
// re-reads their snapshots. A batch larger than the capacity is accepted
// when the queue is below capacity, so that one large event (every resource
// marked stale when the connection drops) is not lost while the callbacks
// keep up. The goroutine takes events by chunks of up to chunk, so at most
// capacity + chunk events are held (besides such a large batch).
type dispatcher struct {
	cb       callbacks
	capacity int

	mu      sync.Mutex
	cond    sync.Cond
	order   ring[run]
	rosters ring[roster.Event]
	rooms   ring[mucwatch.Event]
	others  ring[other]
	queued  int  // events waiting, notices included
	dropped int  // events dropped since the last overflow notice was queued
	closed  bool // no more events are accepted
	waiting bool // the goroutine sleeps on cond
	armed   bool // the wake-up timer runs
	timer   *time.Timer
	done    chan struct{}
}

func newDispatcher(cb callbacks, capacity int) *dispatcher {
	d := &dispatcher{cb: cb, capacity: capacity, done: make(chan struct{})}
	d.cond.L = &d.mu
	d.timer = time.AfterFunc(time.Hour, d.timeout)
	d.timer.Stop()
	go d.run()
	return d
}

// accept reports whether n model events may be queued, counting them as
// dropped when not; it queues the overflow notice that goes before them.
// d.mu is held.
func (d *dispatcher) accept(n int, force bool) bool {
	if d.closed {
		return false
	}
	if !force && d.queued >= d.capacity {
		d.dropped += n
		return false
	}
	if d.dropped > 0 {
		d.pushOther(other{overflow: d.dropped})
		d.dropped = 0
	}
	return true
}

// note records n events of kind k in the order, and wakes the goroutine as
// the tuning says. d.mu is held.
func (d *dispatcher) note(k kind, n int) {
	if last := d.order.last(); last != nil && last.kind == k {
		last.n += n
	} else {
		d.order.push(run{kind: k, n: n})
	}
	d.queued += n
	switch {
	case !d.waiting:
		// It is running and will see the events without help.
	case d.queued >= wakeBatch || k == kindOther:
		d.cond.Signal()
	case !d.armed:
		d.armed = true
		d.timer.Reset(wakeDelay)
	}
}

func (d *dispatcher) pushOther(o other) {
	d.others.push(o)
	d.note(kindOther, 1)
}

// timeout wakes the goroutine for the events that did not fill a batch.
func (d *dispatcher) timeout() {
	d.mu.Lock()
	d.armed = false
	d.cond.Signal()
	d.mu.Unlock()
}

// pushRoster queues copies of evs; the caller may reuse the slice.
func (d *dispatcher) pushRoster(evs []roster.Event) {
	if len(evs) == 0 || d.cb.roster == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.accept(len(evs), false) {
		for i := range evs {
			d.rosters.push(evs[i])
		}
		d.note(kindRoster, len(evs))
	}
}

// pushRoom queues copies of evs; the caller may reuse the slice.
func (d *dispatcher) pushRoom(evs []mucwatch.Event) {
	if len(evs) == 0 || d.cb.room == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.accept(len(evs), false) {
		for i := range evs {
			d.rooms.push(evs[i])
		}
		d.note(kindRoom, len(evs))
	}
}

func (d *dispatcher) push(o other, force bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.accept(1, force) {
		d.pushOther(o)
	}
}

// pushAction queues a policy action. Like connection events, actions are
// rare and never dropped.
func (d *dispatcher) pushAction(a RoomAction) {
	if d.cb.action != nil {
		d.push(other{action: &a}, true)
	}
}

func (d *dispatcher) pushConn(e ConnEvent) {
	if d.cb.conn != nil {
		d.push(other{conn: &e}, true)
	}
}

func (d *dispatcher) pushVerify(r VerifyResult) {
	if d.cb.verify != nil {
		d.push(other{verify: &r}, false)
	}
}

// pushPresence queues a copy of p.
func (d *dispatcher) pushPresence(p *presence.Presence) {
	if d.cb.presence != nil {
		cp := *p
		d.push(other{presence: &cp}, false)
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
	d.timer.Stop()
}

// batch is what the goroutine takes from the queue in one go, in order.
type batch struct {
	order   []run
	rosters []roster.Event
	rooms   []mucwatch.Event
	others  []other
}

func (b *batch) reset() {
	clear(b.rosters)
	clear(b.rooms)
	clear(b.others)
	b.order, b.rosters, b.rooms, b.others = b.order[:0], b.rosters[:0], b.rooms[:0], b.others[:0]
}

func (d *dispatcher) run() {
	defer close(d.done)
	var b batch
	for {
		d.mu.Lock()
		for d.queued == 0 && d.dropped == 0 && !d.closed {
			d.waiting = true
			d.cond.Wait()
			d.waiting = false
		}
		if d.queued == 0 && d.dropped > 0 {
			// The callbacks caught up: report the drops now.
			d.pushOther(other{overflow: d.dropped})
			d.dropped = 0
		}
		if d.queued == 0 { // closed and drained
			d.mu.Unlock()
			return
		}
		d.take(&b, chunk)
		d.mu.Unlock()
		d.deliver(&b)
		b.reset()
	}
}

// take moves up to max events from the queue to b, in order. d.mu is held.
func (d *dispatcher) take(b *batch, max int) {
	for max > 0 && d.queued > 0 {
		r := d.order.first()
		n := min(r.n, max)
		b.order = append(b.order, run{kind: r.kind, n: n})
		for range n {
			switch r.kind {
			case kindRoster:
				b.rosters = append(b.rosters, d.rosters.pop())
			case kindRoom:
				b.rooms = append(b.rooms, d.rooms.pop())
			case kindOther:
				b.others = append(b.others, d.others.pop())
			}
		}
		r.n -= n
		if r.n == 0 {
			d.order.pop()
		}
		d.queued -= n
		max -= n
	}
}

func (d *dispatcher) deliver(b *batch) {
	var ri, mi, oi int
	for _, r := range b.order {
		switch r.kind {
		case kindRoster:
			for _, e := range b.rosters[ri : ri+r.n] {
				d.cb.roster(e)
			}
			ri += r.n
		case kindRoom:
			for _, e := range b.rooms[mi : mi+r.n] {
				d.cb.room(e)
			}
			mi += r.n
		case kindOther:
			for _, o := range b.others[oi : oi+r.n] {
				d.deliverOther(o)
			}
			oi += r.n
		}
	}
}

func (d *dispatcher) deliverOther(o other) {
	switch {
	case o.conn != nil:
		d.cb.conn(*o.conn)
	case o.action != nil:
		d.cb.action(*o.action)
	case o.verify != nil:
		d.cb.verify(*o.verify)
	case o.presence != nil:
		d.cb.presence(*o.presence)
	case o.overflow > 0:
		if d.cb.overflow != nil {
			d.cb.overflow(o.overflow)
		}
	}
}

// ring is a FIFO of values that grows by doubling and gives its memory back
// when it empties after a burst.
type ring[T any] struct {
	buf  []T
	head int
	n    int
}

// ringKeep is the capacity a ring keeps when it empties.
const ringKeep = 256

func (q *ring[T]) push(v T) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
}

func (q *ring[T]) grow() {
	buf := make([]T, max(2*len(q.buf), 16))
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}

// first returns a pointer to the oldest value; the ring is not empty.
func (q *ring[T]) first() *T { return &q.buf[q.head] }

// last returns a pointer to the newest value, nil when the ring is empty.
func (q *ring[T]) last() *T {
	if q.n == 0 {
		return nil
	}
	return &q.buf[(q.head+q.n-1)%len(q.buf)]
}

func (q *ring[T]) pop() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero // let what it holds be collected
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > ringKeep {
			q.buf = nil // a burst is over: give the memory back
		}
	}
	return v
}
