package mucwatch

import (
	"github.com/psakit/psakit/internal/stale"
	"github.com/psakit/psakit/psa"
)

// The bookkeeping below keeps the counts (Stats, and each room's stale
// occupants) in step with every change, so that staleness is
// known in O(1) after each presence.

// setState moves r to state s, keeping Stats.Joined in step.
func (m *Model) setState(r *room, s RoomState) {
	was := r.state == StateJoined || r.state == StateStale
	is := s == StateJoined || s == StateStale
	switch {
	case was && !is:
		m.stats.Joined--
	case is && !was:
		m.stats.Joined++
	}
	r.state = s
}

// full reports whether r holds as many occupants as the limit allows, our
// own not counted.
func (m *Model) full(r *room) bool {
	n := len(r.occupants)
	if r.self != nil {
		n--
	}
	return n >= m.maxOccupants
}

// setMarks replaces o's marks with next.
func (m *Model) setMarks(r *room, o *occ, next psa.Marks) {
	switch was, is := o.Marks.Stale(), next.Stale(); {
	case is && !was:
		r.staleOcc++
		m.stats.StaleOccupants++
	case was && !is:
		r.staleOcc--
		m.stats.StaleOccupants--
	}
	o.Marks = next
	r.recount(o)
}

// removeOccupant removes o from r and appends ev, completed with o's last
// state.
func (m *Model) removeOccupant(dst []Event, r *room, o *occ, ev Event, c *cause) []Event {
	delete(r.occupants, o.Nick)
	r.bytes -= o.bytes
	m.stats.Occupants--
	if o.Marks.Stale() {
		r.staleOcc--
		m.stats.StaleOccupants--
	}
	if r.self == o {
		r.self = nil
		for _, mk := range o.Marks {
			c.note(psa.MarkRemoved, mk)
		}
	}
	ev.Room, ev.JID, ev.Occupant = r.jid, o.JID, o.Occupant
	return append(dst, ev)
}

// sweep removes the occupants not refreshed since the last Joining or
// Rejoining, and those still marked psa.LocalDisconnected.
func (m *Model) sweep(dst []Event, r *room, c *cause) []Event {
	for _, o := range r.occupants {
		if o.epoch != r.epoch || stale.HasLocal(o.Marks, m.account) {
			dst = m.removeOccupant(dst, r, o, Event{Kind: EventOccupantUnavailable}, c)
		}
	}
	return dst
}

// clearRoom drops what we know of a room we are leaving or were taken out
// of: its occupants (without events), its marks and its verdict.
func (m *Model) clearRoom(r *room) {
	m.stats.Occupants -= len(r.occupants)
	m.stats.StaleOccupants -= r.staleOcc
	// A new map, so that the memory of a large room goes with it.
	r.occupants = make(map[string]*occ)
	r.self = nil
	r.staleOcc, r.bytes = 0, 0
	r.marks = nil
	r.verdict = VerdictNone
	r.leavePending = false
}

// removeRoom stops tracking r.
func (m *Model) removeRoom(r *room) {
	m.clearRoom(r)
	if r.stale {
		r.stale = false
		m.stats.StaleRooms--
	}
	m.setState(r, StateNone)
	delete(m.rooms, r.jid.String())
	m.stats.Rooms--
	m.tracked.Add(-1)
	if m.last == r {
		m.last = nil
	}
}

// settle recomputes whether r is stale, moves a joined room between
// StateJoined and StateStale accordingly, and reports a flip with
// EventRoomStale or EventRoomRestored. A room we are not in is never stale,
// and becomes so without an event: the event that took us out says more.
func (m *Model) settle(dst []Event, r *room, c *cause) []Event {
	if r.state == StateNone {
		return dst
	}
	// Only what concerns our own place: the room's marks, our own
	// occupant's, and the self-ping verdict. A mark on another occupant is
	// about that occupant, and may be its own forgery.
	isStale := r.state.in() &&
		(r.marks.Stale() || (r.self != nil && r.self.Marks.Stale()) || r.verdict == VerdictNotJoined)
	switch {
	case r.state == StateJoined && isStale:
		m.setState(r, StateStale)
	case r.state == StateStale && !isStale:
		m.setState(r, StateJoined)
	}
	if isStale == r.stale {
		return dst
	}
	r.stale = isStale
	if !isStale {
		m.stats.StaleRooms--
		if !r.state.in() {
			return dst
		}
		return append(dst, Event{Kind: EventRoomRestored, Room: r.jid, Mark: c.removed, Resent: c.resent})
	}
	m.stats.StaleRooms++
	mark := c.added
	if mark.Condition == "" {
		switch {
		case r.marks.Stale():
			mark = r.marks[0]
		case r.self != nil && r.self.Marks.Stale():
			mark = r.self.Marks[0]
		}
	}
	return append(dst, Event{Kind: EventRoomStale, Room: r.jid, Mark: mark, Resent: c.resent})
}
