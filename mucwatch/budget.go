package mucwatch

import (
	"unsafe"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/stale"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// DefaultMaxRoomBytes is the memory that the occupants of one room may take
// (WithMaxRoomBytes): 32 MiB, room for 100,000 occupants with a status
// line each. At the decoder's limits one occupant can hold 50 KiB, so
// DefaultMaxOccupants alone would allow 5 GB.
const DefaultMaxRoomBytes = 32 << 20

// WithMaxRoomBytes sets how much memory the occupants of one room may take
// (DefaultMaxRoomBytes), counted as Room.Bytes counts it: an estimate from
// the strings each occupant holds (JIDs, nick, role, status texts, caps,
// marks and their descriptions) plus a fixed cost per occupant. Presence
// that would take a room past it is rejected with ErrLimit: a new occupant
// is not tracked, a known one keeps its previous state. Our own presence
// (status 110) is always accepted, as are the psa.LocalDisconnected marks
// of MarkDisconnected: they may take a room past the budget by their own
// size.
func WithMaxRoomBytes(n int) Option { return Option{func(m *Model) { m.maxRoomBytes = max(n, 0) }} }

// occFixed is the memory an occupant takes besides its strings: the entry,
// its map slot, a Status slice header's array.
const occFixed = int(unsafe.Sizeof(occ{})) + 64

func jidBytes(j jid.JID) int {
	return len(j.Localpart()) + len(j.Domainpart()) + len(j.Resourcepart()) + 2
}

func stateBytes(s *presence.State) int {
	n := len(s.Caps.Hash) + len(s.Caps.Node) + len(s.Caps.Ver) + len(s.Status)*int(unsafe.Sizeof(presence.Text{}))
	for _, t := range s.Status {
		n += len(t.Lang) + len(t.Value)
	}
	return n
}

func marksBytes(ms psa.Marks) int {
	n := 0
	for i := range ms {
		n += int(unsafe.Sizeof(psa.Mark{})) + len(ms[i].Condition) + jidBytes(ms[i].By)
		for _, d := range ms[i].Descriptions {
			n += int(unsafe.Sizeof(psa.Description{})) + len(d.Lang) + len(d.Text)
		}
	}
	return n
}

// annotationBytes bounds what p's annotations may add as marks.
func annotationBytes(p *presence.Presence) int {
	n := 0
	for _, a := range p.Annotations {
		n += int(unsafe.Sizeof(psa.Mark{})) + len(a.Condition) + jidBytes(a.From)
		for _, d := range a.Descriptions {
			n += int(unsafe.Sizeof(psa.Description{})) + len(d.Lang) + len(d.Text)
		}
	}
	return n
}

// contentBytes estimates the memory of o's data, its marks aside.
func (o *occ) contentBytes() int {
	return occFixed + jidBytes(o.JID) + len(o.Nick) + jidBytes(o.RealJID) +
		len(o.Role) + len(o.Affiliation) + len(o.OccupantID) + stateBytes(&o.State)
}

// fits reports whether applying the available presence p to occupant o of
// r (nil for a new one, whose nick is nick) keeps r within its byte
// budget, and the rejection when not. Our own presence always fits.
func (m *Model) fits(r *room, o *occ, nick string, p *presence.Presence, self bool) (Event, bool) {
	if self {
		return Event{}, true
	}
	var next occ
	old := 0
	if o != nil {
		next, old = *o, o.bytes
	} else {
		next.JID, next.Nick = p.From, nick
	}
	next.update(p)
	need := next.contentBytes()
	if stale.Annotated(p) {
		need += marksBytes(next.Marks) + annotationBytes(p)
	}
	if grow := need - old; grow > 0 && r.bytes+grow > m.maxRoomBytes {
		return Event{Kind: EventRejected, Room: r.jid, JID: p.From, Err: errLimit("bytes of occupants per room", m.maxRoomBytes)}, false
	}
	return Event{}, true
}

// recount updates o's and r's byte counts after o changed.
func (r *room) recount(o *occ) {
	n := o.contentBytes() + marksBytes(o.Marks)
	r.bytes += n - o.bytes
	o.bytes = n
}

// within adds the estimated size of an event about occupant o to *size and
// reports whether it stays within maxBytes, for MarkDisconnectedUpTo; a
// negative maxBytes is no bound.
func within(size *int, o *occ, maxBytes int) bool {
	if maxBytes < 0 {
		return true
	}
	*size += int(unsafe.Sizeof(Event{})) + o.bytes
	return *size <= maxBytes
}
