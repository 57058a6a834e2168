package roster

import (
	"unsafe"

	"github.com/psakit/psakit/internal/stale"
	"github.com/psakit/psakit/presence"
)

// The byte budgets (WithMaxBytes, WithMaxStrangerBytes). The counts of
// strangers and resources alone let a hostile peer multiply them: 1024
// strangers × 32 resources × a 64 KiB record is 2 GiB. The model counts
// what the records of each resource take in the arena, in whole blocks
// (a record of 17 KiB takes a block of 32 KiB), per contact and in all, and
// rejects a presence that would take a budget past its figure before it
// changes anything.

// blockSize returns the bytes of the arena block that holds an n-byte
// record; 0 for none.
func blockSize(n int) int {
	if n == 0 {
		return 0
	}
	_, size := sizeClass(n)
	return size
}

// blockBytes returns the bytes of the arena blocks of r's records.
func (r *resourceSlot) blockBytes() int {
	return blockSize(int(r.state.n)) + blockSize(int(r.marks.n))
}

// marksBound returns an upper bound of the bytes that p's annotations add
// to a marks record (appendMarks): per mark a condition, an annotator, a
// stamp and the descriptions, each with its length.
func marksBound(p *presence.Presence) int {
	n := 0
	for _, a := range p.Annotations {
		n += 32 + len(a.Condition) + len(a.From.Domainpart()) + len(a.From.Localpart()) + len(a.From.Resourcepart()) + 2
		for _, d := range a.Descriptions {
			n += 20 + len(d.Lang) + len(d.Text)
		}
	}
	return n
}

// checkBytes reports whether the resource ri (0 for a new one) may take
// what applying p would store, and the rejection when not. changed says
// that p changes the state record, whose new encoding is in m.scratch;
// stranger that the resource is a stranger's.
func (m *Model) checkBytes(p *presence.Presence, ri resourceRef, changed, stranger bool) (Event, bool) {
	var old, stateLen, marksLen int
	if ri != 0 {
		r := m.st.resource(ri)
		old, stateLen, marksLen = r.blockBytes(), int(r.state.n), int(r.marks.n)
	}
	if changed {
		stateLen = len(m.scratch)
	}
	if stale.Annotated(p) {
		// The marks that stay and those the annotations may add.
		marksLen += marksBound(p)
	} else {
		// A new delivery clears every mark.
		marksLen = 0
	}
	grow := blockSize(stateLen) + blockSize(marksLen) - old
	switch {
	case grow <= 0:
		return Event{}, true
	case m.stats.Bytes+grow > m.maxBytes:
		return Event{Kind: EventRejected, JID: p.From, Err: errLimit("bytes of presence", m.maxBytes)}, false
	case stranger && m.stats.StrangerBytes+grow > m.maxStrangerBytes:
		return Event{Kind: EventRejected, JID: p.From, Err: errLimit("bytes of strangers' presence", m.maxStrangerBytes)}, false
	}
	return Event{}, true
}

// charge adds delta bytes (negative to free) to contact ci's count and the
// totals.
func (m *Model) charge(ci contactRef, stranger bool, delta int) {
	if delta == 0 {
		return
	}
	c := m.st.contact(ci)
	c.bytes = uint32(int(c.bytes) + delta)
	m.stats.Bytes += delta
	if stranger {
		m.stats.StrangerBytes += delta
	}
}

// withinEvents adds the size of resource ri's event (eventBytes) to *size
// and reports whether the events built so far stay within maxBytes; a
// negative maxBytes is no bound.
func (m *Model) withinEvents(ri resourceRef, size *int, maxBytes int) bool {
	if maxBytes < 0 {
		return true
	}
	*size += m.eventBytes(ri)
	return *size <= maxBytes
}

// isStranger reports whether contact ci counts as a stranger: not in the
// roster, and not the account itself.
func (m *Model) isStranger(ci contactRef) bool {
	c := m.st.contact(ci)
	return !c.inRoster && string(m.st.get(c.key)) != m.jidString(m.account.Bare())
}

// eventBytes estimates the memory of an event built from resource ri's
// snapshot: the event and the strings decoded from the records.
func (m *Model) eventBytes(ri resourceRef) int {
	r := m.st.resource(ri)
	return int(unsafe.Sizeof(Event{})) + int(r.state.n) + int(r.marks.n)
}
