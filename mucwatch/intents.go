package mucwatch

import (
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/stale"
	"github.com/psakit/psakit/psa"
)

// Joining records that the client is about to send a join presence to
// occupant, room@service/nick: the room is tracked, in StateJoining, and
// presence from it is now applied. It returns an EventJoining event, or an
// EventRejected event when occupant has no nick (ErrNotOccupantJID), when
// the room limit is reached (ErrLimit), or when the room is already joined
// or being joined (ErrAlreadyJoined: call Rejoining instead). A room we were
// kicked from, or that was destroyed, or that we are leaving, may be joined
// again.
func (m *Model) Joining(occupant jid.JID) []Event {
	nick := occupant.Resourcepart()
	bare := occupant.Bare()
	if nick == "" || bare.Localpart() == "" {
		return []Event{{Kind: EventRejected, Room: bare, JID: occupant, Err: ErrNotOccupantJID}}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := bare.String()
	r := m.rooms[key]
	switch {
	case r == nil:
		if len(m.rooms) >= m.maxRooms {
			return []Event{{Kind: EventRejected, Room: bare, JID: occupant, Err: errLimit("rooms", m.maxRooms)}}
		}
		r = &room{jid: bare, occupants: make(map[string]*occ)}
		m.rooms[key] = r
		m.stats.Rooms++
		m.tracked.Add(1)
	case r.state.in():
		return []Event{{Kind: EventRejected, Room: bare, JID: occupant, Err: ErrAlreadyJoined}}
	}
	r.nick = nick
	r.removal = Removal{}
	r.created = false
	r.epoch++
	m.setState(r, StateJoining)
	return []Event{{Kind: EventJoining, Room: bare, JID: occupant}}
}

// Rejoining records that the client is about to send the join presence
// again to a room it is in, may be in, or was dropped from: after a
// reconnect, a NotJoined self-ping verdict, or a removal for technical
// reasons. The room goes to StateRejoining (it stays in StateJoining if the
// first join never completed) and keeps its occupants until our own
// presence completes the rejoin; those not sent again by then are removed.
//
// Only call it when the service will treat the presence as a join, that is
// when we are not in the room as far as the service knows: a service that
// still has us sends no occupant list, only our own presence, and the
// occupant list would be emptied. To change nick, send the presence without
// telling the model: the 303 and 110 presences update it.
//
// It returns an EventRejoining event, or an EventRejected event
// (ErrUnknownRoom) when the room is not tracked.
func (m *Model) Rejoining(room jid.JID) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[room.Bare().String()]
	if r == nil {
		return []Event{{Kind: EventRejected, Room: room.Bare(), JID: room, Err: ErrUnknownRoom}}
	}
	r.epoch++
	if r.state != StateJoining {
		r.removal = Removal{}
		m.setState(r, StateRejoining)
	}
	var c cause
	return m.settle([]Event{{Kind: EventRejoining, Room: r.jid}}, r, &c)
}

// Leaving records that the client is about to send unavailable presence to a
// room. The room's occupants are dropped, and the room goes to StateLeft
// until the service confirms with our own unavailable presence
// (EventRoomLeft). If the confirmation never comes, call Forget. A room we
// are not in any more (kicked, destroyed) is forgotten at once.
// It returns EventLeaving, EventRoomLeft, or nothing when the room is not
// tracked or already left.
func (m *Model) Leaving(room jid.JID) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[room.Bare().String()]
	switch {
	case r == nil || r.state == StateLeft:
		return nil
	case !r.state.in():
		m.removeRoom(r)
		return []Event{{Kind: EventRoomLeft, Room: r.jid}}
	}
	m.clearRoom(r)
	r.leavePending = true
	m.setState(r, StateLeft)
	var c cause
	return m.settle([]Event{{Kind: EventLeaving, Room: r.jid}}, r, &c)
}

// Forget stops tracking a room, in whatever state, for instance when the
// service never confirmed a Leaving call. It returns an EventRoomLeft event, or
// nothing when the room was not tracked.
func (m *Model) Forget(room jid.JID) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[room.Bare().String()]
	if r == nil {
		return nil
	}
	m.removeRoom(r)
	return []Event{{Kind: EventRoomLeft, Room: r.jid}}
}

// RecordSelfPing records the verdict of a XEP-0410 self-ping to a joined room.
// NotJoined makes the room stale (the client rejoins it: Rejoining);
// Joined clears an earlier NotJoined; Undecided changes nothing. Verdicts for
// rooms that are not joined (being joined, left, kicked, not tracked) are
// ignored: the join in flight decides. It returns EventRoomStale or
// EventRoomRestored when the room's staleness flips.
func (m *Model) RecordSelfPing(room jid.JID, v Verdict) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[room.Bare().String()]
	if r == nil || (r.state != StateJoined && r.state != StateStale) {
		return nil
	}
	if v != VerdictJoined && v != VerdictNotJoined {
		return nil
	}
	r.verdict = v
	var c cause
	return m.settle(nil, r, &c)
}

// MarkDisconnected records that the account's own stream dropped: no update
// can arrive until it is back, and the service has taken us out of every
// room (our server sent unavailable for us), or soon will. Every room we are
// in or joining, and every occupant in it, gets the psa.LocalDisconnected
// mark; rooms being left are forgotten (EventRoomLeft). It returns an
// EventRoomStale per room that became stale, followed by an
// EventOccupantStale per occupant newly marked.
//
// After the reconnect, call Rejoining for every room: the occupant list the
// service sends clears the marks, and our own presence completes the rejoin
// and removes the occupants that were not sent again.
func (m *Model) MarkDisconnected() []Event {
	evs, _ := m.MarkDisconnectedUpTo(-1)
	return evs
}

// MarkDisconnectedUpTo is MarkDisconnected with a bound on the memory of
// the occupants' events: every occupant is marked, but its event is built
// only while the events' estimated size (the event and the occupant's data)
// stays within maxBytes; omitted counts the occupants marked without one.
// Room events are never omitted. A negative maxBytes means no bound.
func (m *Model) MarkDisconnectedUpTo(maxBytes int) (dst []Event, omitted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	mark := stale.LocalMark(m.account, now)
	size := 0
	for _, r := range m.rooms {
		if r.state == StateLeft {
			m.removeRoom(r)
			dst = append(dst, Event{Kind: EventRoomLeft, Room: r.jid})
			continue
		}
		if !r.state.in() {
			continue
		}
		var n int
		dst, n = m.markRoom(dst, r, mark, &size, maxBytes)
		omitted += n
	}
	return dst, omitted
}

// markRoom sets mark on room r and on each of its occupants, appending the
// events, and returns how many occupant events it left out to keep *size
// within maxBytes (negative: no bound). Callers hold m.mu.
func (m *Model) markRoom(dst []Event, r *room, mark psa.Mark, size *int, maxBytes int) ([]Event, int) {
	var (
		c       cause
		change  psa.MarkChange
		omitted int
	)
	r.marks, change, _ = r.marks.With(mark)
	if change != psa.MarkUnchanged {
		c.note(change, mark)
	}
	dst = m.settle(dst, r, &c)
	for _, o := range r.occupants {
		next, change, _ := o.Marks.With(mark)
		if change == psa.MarkUnchanged {
			continue
		}
		m.setMarks(r, o, next)
		if !within(size, o, maxBytes) {
			omitted++
			continue
		}
		dst = append(dst, Event{Kind: EventOccupantStale, Room: r.jid, JID: o.JID, Occupant: o.Occupant, Mark: mark})
	}
	return m.settle(dst, r, &c), omitted
}

// Sweep removes the occupants of a room that were not refreshed since the
// last Joining or Rejoining call, or that still carry the psa.LocalDisconnected
// mark. A completed rejoin sweeps by itself; Sweep is for a client that
// wants the list cleaned without waiting for our own presence. It returns an
// EventOccupantUnavailable per occupant removed.
func (m *Model) Sweep(room jid.JID) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[room.Bare().String()]
	if r == nil {
		return nil
	}
	var c cause
	dst := m.sweep(nil, r, &c)
	return m.settle(dst, r, &c)
}
