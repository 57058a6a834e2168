package mucwatch

import (
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

// MarkUnreachable records that the client found by itself (no server told
// it) that the MUC service at domain is out of reach: every room on it that
// we are in or joining gets psa.InferredMark(domain) as a room mark, and so
// does every occupant in it, since their presence comes through the
// service. It returns an EventRoomStale per room that became stale and an
// EventOccupantStale per occupant newly marked; occupants' events are built
// only while their estimated size stays within maxBytes (negative: no
// bound), as MarkDisconnectedUpTo does, and omitted counts the others.
//
// The mark is the model's own: no annotation removes it. A new presence
// from an occupant removes it from that occupant (the path works again);
// ClearUnreachable removes it everywhere.
func (m *Model) MarkUnreachable(domain jid.JID, maxBytes int) (dst []Event, omitted int) {
	if domain.Domainpart() == "" {
		return nil, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mark := psa.InferredMark(domain, m.now())
	size := 0
	for _, r := range m.rooms {
		if !r.state.in() || r.jid.Domainpart() != domain.Domainpart() {
			continue
		}
		var n int
		dst, n = m.markRoom(dst, r, mark, &size, maxBytes)
		omitted += n
	}
	return dst, omitted
}

// ClearUnreachable removes the psa.InferredMark of domain from its rooms
// and their occupants, for when the service answers again. It returns an
// EventOccupantRestored per occupant, bounded by maxBytes as
// MarkUnreachable, and an EventRoomRestored per room that is no longer
// stale, whose Mark is the inferred one. Their Resent is set, as after an
// annotator's all-clear: what the model shows is from before the outage,
// and the service may have dropped us meanwhile (a self-ping tells).
func (m *Model) ClearUnreachable(domain jid.JID, maxBytes int) (dst []Event, omitted int) {
	if domain.Domainpart() == "" {
		return nil, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	by := psa.InferredBy(domain)
	size := 0
	for _, r := range m.rooms {
		if r.jid.Domainpart() != domain.Domainpart() {
			continue
		}
		var n int
		dst, n = m.unmarkRoom(dst, r, by, true, &size, maxBytes)
		omitted += n
	}
	return dst, omitted
}

// unmarkRoom removes by's mark from r and its occupants, and appends an
// EventOccupantRestored per occupant that carried it (those past maxBytes,
// counted in size, are omitted and counted) and the room's own event;
// resent says the events must be checked, as after an annotator's
// all-clear.
func (m *Model) unmarkRoom(dst []Event, r *room, by jid.JID, resent bool, size *int, maxBytes int) (_ []Event, omitted int) {
	c := cause{resent: resent}
	if next, old, ok := r.marks.Without(by); ok {
		r.marks = next
		c.note(psa.MarkRemoved, old)
	}
	for _, o := range r.occupants {
		next, old, ok := o.Marks.Without(by)
		if !ok {
			continue
		}
		m.setMarks(r, o, next)
		if o.Self {
			c.note(psa.MarkRemoved, old)
		}
		if !within(size, o, maxBytes) {
			omitted++
			continue
		}
		dst = append(dst, Event{Kind: EventOccupantRestored, Room: r.jid, JID: o.JID, Occupant: o.Occupant, Mark: old, Resent: resent})
	}
	return m.settle(dst, r, &c), omitted
}

// ClearDisconnected removes the psa.LocalDisconnected mark from every room
// and occupant, for when the account's stream was resumed (XEP-0198) and
// the stanzas the server kept meanwhile were applied: the service never saw
// us leave, nothing was lost, and no occupant is swept. It returns an
// EventOccupantRestored per occupant, bounded by maxBytes as
// MarkDisconnectedUpTo, and an EventRoomRestored per room that is no longer
// stale. Resent is false: there is nothing to check.
func (m *Model) ClearDisconnected(maxBytes int) (dst []Event, omitted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	by := m.account.Bare()
	size := 0
	for _, r := range m.rooms {
		var n int
		dst, n = m.unmarkRoom(dst, r, by, false, &size, maxBytes)
		omitted += n
	}
	return dst, omitted
}
