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
	message  func(Message)
	overflow func(int)
	unacked  func([]UnackedStanza, error)
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
)

// queueKind says which queue the next events come from.
type queueKind uint8

const (
	kindRoster queueKind = iota
	kindRoom
	kindOther
)

// eventRun is a run of consecutive events of one kind.
type eventRun struct {
	kind queueKind
	n    int
}

// rareEvent is an event that is not a model's (the kindOther queue): a
// connection event, a room action, a verification result, a presence for
// the presence callback, a message or an overflow notice. Exactly one field is set.
type rareEvent struct {
	conn     *ConnEvent
	action   *RoomAction
	verify   *VerifyResult
	presence *presence.Presence
	message  *Message
	overflow int
	unacked  *unackedBatch
}

// dispatcher delivers events to the callbacks on its own goroutine, in the
// order they were produced, so that a slow callback never stalls the XMPP
// stream.
//
// It double-buffers: producers append events, by value, to the current
// buffer; the callback goroutine swaps it for an empty one and delivers from
// it without holding the lock. Queueing the events of a presence copies each
// once and allocates nothing once the buffers have grown; after a burst a
// large buffer is let go.
//
// The overflow rule: while more than capacity events wait, further model
// events are dropped and counted (connection events and room policy actions
// are never dropped). The count is delivered to the overflow callback in
// order: after the events queued before the drop, before those queued after
// it. Since the models are always current, a user who sees an overflow
// re-reads their snapshots. A batch larger than the capacity is accepted
// when the queue is below capacity, so that one large event (every resource
// marked stale when the connection drops) is not lost while the callbacks
// keep up. Besides the events waiting, the goroutine holds the ones it is
// delivering: at most twice the capacity in all (and such a large batch).
//
// The byte rule bounds the memory of what waits, whatever the count: events
// are accepted only while the estimated bytes of those waiting (eventsize.go)
// are below maxBytes; the rest of a batch that reaches it is dropped and
// counted as by the overflow rule. What waits and what is being delivered
// then hold at most twice maxBytes, plus one event.
type dispatcher struct {
	cb       callbacks
	capacity int
	maxBytes int
	// seeRoster and seeRoom, when set, see every batch of model events
	// before it is queued (the remote checks count entries with them).
	seeRoster func([]roster.Event)
	seeRoom   func([]mucwatch.Event)

	mu      sync.Mutex
	cond    sync.Cond
	cur     *buffer // the events waiting
	spare   *buffer // an empty buffer for the next swap, or nil
	dropped int     // events dropped since the last overflow notice was queued
	closed  bool    // no more events are accepted
	waiting bool    // the goroutine sleeps on cond
	armed   bool    // the wake-up timer runs
	timer   *time.Timer
	done    chan struct{}
}

// buffer holds events in order: runs of kinds, and the events of each kind.
type buffer struct {
	order   []eventRun
	rosters []roster.Event
	rooms   []mucwatch.Event
	others  []rareEvent
	n       int // events, notices included
	bytes   int // the estimated memory of the events
}

// keepEvents is the capacity beyond which an emptied buffer is dropped
// rather than kept for the next swap: a burst is over, give the memory back.
const keepEvents = 4096

func (b *buffer) reset() *buffer {
	if cap(b.rosters) > keepEvents || cap(b.rooms) > keepEvents {
		return nil
	}
	clear(b.rosters)
	clear(b.rooms)
	clear(b.others)
	b.order, b.rosters, b.rooms, b.others = b.order[:0], b.rosters[:0], b.rooms[:0], b.others[:0]
	b.n, b.bytes = 0, 0
	return b
}

func newDispatcher(cb callbacks, capacity, maxBytes int) *dispatcher {
	d := &dispatcher{cb: cb, capacity: capacity, maxBytes: maxBytes, cur: new(buffer), done: make(chan struct{})}
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
	if !force && (d.cur.n >= d.capacity || d.cur.bytes >= d.maxBytes) {
		d.dropped += n
		return false
	}
	if d.dropped > 0 {
		d.pushOther(rareEvent{overflow: d.dropped})
		d.dropped = 0
	}
	return true
}

// note records n events of kind k in the order, and wakes the goroutine as
// the tuning says. d.mu is held.
func (d *dispatcher) note(k queueKind, n int) {
	b := d.cur
	if len(b.order) > 0 && b.order[len(b.order)-1].kind == k {
		b.order[len(b.order)-1].n += n
	} else {
		b.order = append(b.order, eventRun{kind: k, n: n})
	}
	b.n += n
	switch {
	case !d.waiting:
		// It is running and will see the events without help.
	case b.n >= wakeBatch || k == kindOther:
		d.cond.Signal()
	case !d.armed:
		d.armed = true
		d.timer.Reset(wakeDelay)
	}
}

// otherSize is the estimate of a rare event but a presence.
const otherSize = 256

func (d *dispatcher) pushOther(o rareEvent) {
	switch {
	case o.presence != nil:
		d.cur.bytes += presenceSize(o.presence)
	case o.message != nil:
		d.cur.bytes += messageSize(o.message)
	case o.unacked != nil:
		if d.cur.bytes >= d.maxBytes {
			// Never dropped (the application must learn what may be
			// lost), but past the budget without the stanzas' bytes.
			// Below it a batch gets in whole, as a batch of model events
			// does: one batch holds at most what stream management kept.
			o.unacked.dropRaw()
		}
		d.cur.bytes += o.unacked.size()
	default:
		d.cur.bytes += otherSize
	}
	d.cur.others = append(d.cur.others, o)
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
	if d.seeRoster != nil && len(evs) > 0 {
		d.seeRoster(evs)
	}
	if len(evs) == 0 || d.cb.roster == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.accept(len(evs), false) {
		k := d.fit(len(evs), func(i int) int { return rosterEventSize(&evs[i]) })
		d.cur.rosters = append(d.cur.rosters, evs[:k]...)
		d.note(kindRoster, k)
	}
}

// fit returns how many of the n events of a batch fit the byte budget, at
// least one, and counts them in and the others as dropped. size returns the
// estimate of event i. d.mu is held.
func (d *dispatcher) fit(n int, size func(i int) int) int {
	k := 0
	for k < n && (k == 0 || d.cur.bytes < d.maxBytes) {
		d.cur.bytes += size(k)
		k++
	}
	d.dropped += n - k
	return k
}

// omit counts n events of kind k that a model did not build, to keep a
// batch within the byte budget (MarkDisconnectedUpTo), as dropped.
func (d *dispatcher) omit(k queueKind, n int) {
	if n == 0 || (k == kindRoster && d.cb.roster == nil) || (k == kindRoom && d.cb.room == nil) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.dropped += n
		if d.waiting {
			d.cond.Signal()
		}
	}
}

// pushRoom queues copies of evs; the caller may reuse the slice.
func (d *dispatcher) pushRoom(evs []mucwatch.Event) {
	if d.seeRoom != nil && len(evs) > 0 {
		d.seeRoom(evs)
	}
	if len(evs) == 0 || d.cb.room == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.accept(len(evs), false) {
		k := d.fit(len(evs), func(i int) int { return roomEventSize(&evs[i]) })
		d.cur.rooms = append(d.cur.rooms, evs[:k]...)
		d.note(kindRoom, k)
	}
}

func (d *dispatcher) push(o rareEvent, force bool) {
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
		d.push(rareEvent{action: &a}, true)
	}
}

func (d *dispatcher) pushConn(e ConnEvent) {
	if d.cb.conn != nil {
		d.push(rareEvent{conn: &e}, true)
	}
}

func (d *dispatcher) pushVerify(r VerifyResult) {
	if d.cb.verify != nil {
		d.push(rareEvent{verify: &r}, false)
	}
}

// pushPresence queues a copy of p.
func (d *dispatcher) pushPresence(p *presence.Presence) {
	if d.cb.presence != nil {
		cp := *p
		d.push(rareEvent{presence: &cp}, false)
	}
}

// pushMessage queues m. Like presences, messages are dropped and counted
// when the queue is full.
func (d *dispatcher) pushMessage(m *Message) {
	if d.cb.message != nil {
		d.push(rareEvent{message: m}, false)
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

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		for d.cur.n == 0 && d.dropped == 0 && !d.closed {
			d.waiting = true
			d.cond.Wait()
			d.waiting = false
		}
		if d.cur.n == 0 && d.dropped > 0 {
			// The callbacks caught up: report the drops now.
			d.pushOther(rareEvent{overflow: d.dropped})
			d.dropped = 0
		}
		if d.cur.n == 0 { // closed and drained
			d.mu.Unlock()
			return
		}
		b := d.cur
		d.cur = d.spare
		if d.cur == nil {
			d.cur = new(buffer)
		}
		d.spare = nil
		d.mu.Unlock()

		d.deliver(b)

		b = b.reset()
		d.mu.Lock()
		d.spare = b
		d.mu.Unlock()
	}
}

func (d *dispatcher) deliver(b *buffer) {
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

func (d *dispatcher) deliverOther(o rareEvent) {
	switch {
	case o.conn != nil:
		d.cb.conn(*o.conn)
	case o.action != nil:
		d.cb.action(*o.action)
	case o.verify != nil:
		d.cb.verify(*o.verify)
	case o.presence != nil:
		d.cb.presence(*o.presence)
	case o.message != nil:
		d.cb.message(*o.message)
	case o.unacked != nil:
		d.cb.unacked(o.unacked.stanzas, o.unacked.reason)
	case o.overflow > 0:
		if d.cb.overflow != nil {
			d.cb.overflow(o.overflow)
		}
	}
}
