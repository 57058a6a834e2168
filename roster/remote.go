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
	return m.remark(m.atDomain(domain), false, func(marks psa.Marks) (psa.Marks, psa.Mark, bool) {
		next, change, _ := marks.With(mark)
		return next, mark, change != psa.MarkUnchanged
	}, EventStale, false, maxBytes)
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
	return m.remark(m.atDomain(domain), true, func(marks psa.Marks) (psa.Marks, psa.Mark, bool) {
		return marks.Without(by)
	}, EventRestored, true, maxBytes)
}

// atDomain accepts the contacts at domain that have resources.
func (m *Model) atDomain(domain jid.JID) func(contactRef) bool {
	want := []byte(domain.Domainpart())
	return func(ci contactRef) bool {
		c := m.st.contact(ci)
		return c.nres != 0 && bytes.Equal(domainOf(m.st.get(c.key)), want)
	}
}

// domainOf returns the domainpart of a bare JID's string: what follows the
// '@', which a localpart cannot hold, or all of it.
func domainOf(bare []byte) []byte {
	if i := bytes.IndexByte(bare, '@'); i >= 0 {
		return bare[i+1:]
	}
	return bare
}
