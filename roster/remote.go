package roster

import (
	"bytes"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

// MarkUnreachable sets psa.InferredMark(domain) on every resource of every
// contact at domain, for when the client found by itself that the domain is
// out of reach (no server told it). It returns one EventStale per resource
// newly marked, built only while their estimated size stays within
// maxBytes (negative: no bound), as MarkDisconnectedUpTo does; omitted
// counts the resources marked without an event.
//
// The mark is the model's own, like psa.LocalDisconnected: no annotation
// removes it, while a new presence from the resource does (the path works
// again), as ClearUnreachable does.
func (m *Model) MarkUnreachable(domain jid.JID, maxBytes int) (evs []Event, omitted int) {
	if domain.Domainpart() == "" {
		return nil, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mark := psa.InferredMark(domain, m.now())
	return m.eachAt(domain, maxBytes, func(marks psa.Marks) (psa.Marks, bool) {
		next, change, _ := marks.With(mark)
		return next, change != psa.MarkUnchanged
	}, EventStale, mark)
}

// ClearUnreachable removes the psa.InferredMark of domain from every
// resource at domain, for when the domain answers again. It returns one
// EventRestored per resource, bounded by maxBytes as MarkUnreachable.
// Their Resent is set, as after an annotator's all-clear: the presence
// those resources show is from before the outage, the moment to verify
// them.
func (m *Model) ClearUnreachable(domain jid.JID, maxBytes int) (evs []Event, omitted int) {
	if domain.Domainpart() == "" {
		return nil, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	by := psa.InferredBy(domain)
	return m.eachAt(domain, maxBytes, func(marks psa.Marks) (psa.Marks, bool) {
		next, _, ok := marks.Without(by)
		return next, ok
	}, EventRestored, psa.Mark{})
}

// eachAt applies change to the marks of every resource of the contacts at
// domain, storing what it changed, and returns events of kind for them,
// with mark; an EventRestored carries the mark it removed (its Since differs
// per resource). Callers hold m.mu.
func (m *Model) eachAt(domain jid.JID, maxBytes int, change func(psa.Marks) (psa.Marks, bool), kind EventKind, mark psa.Mark) (evs []Event, omitted int) {
	want := []byte(domain.Domainpart())
	size := 0
	for ci := range m.st.allContacts() {
		c := m.st.contact(ci)
		if c.nres == 0 || !bytes.Equal(domainOf(m.st.get(c.key)), want) {
			continue
		}
		stranger := m.isStranger(ci)
		for ri := range m.st.resourcesOf(ci) {
			r := m.st.resource(ri)
			marks := m.readMarks(m.st.get(r.marks))
			next, ok := change(marks)
			if !ok {
				continue
			}
			m.replaceMarks(ci, ri, stranger, marks, next)
			if !m.withinEvents(ri, &size, maxBytes) {
				omitted++
				continue
			}
			ev := mark
			if kind == EventRestored {
				ev, _ = marks.Get(psa.InferredBy(domain))
			}
			snap := m.resourceSnapshot(ri, nil)
			evs = append(evs, Event{Kind: kind, JID: snap.JID, Resource: snap, Mark: ev, Resent: kind == EventRestored})
		}
	}
	m.st.maybeShrink()
	return evs, omitted
}

// domainOf returns the domainpart of a bare JID's string: what follows the
// '@', which a localpart cannot hold, or all of it.
func domainOf(bare []byte) []byte {
	if i := bytes.IndexByte(bare, '@'); i >= 0 {
		return bare[i+1:]
	}
	return bare
}
