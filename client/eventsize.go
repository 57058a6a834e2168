package client

import (
	"unsafe"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// The estimates of what a queued event holds, for the queue's byte budget
// (WithQueueBytes): the event itself and the strings it refers to. Strings
// that two fields share are counted twice, so the estimate errs high.

func jidSize(j jid.JID) int {
	return len(j.Localpart()) + len(j.Domainpart()) + len(j.Resourcepart())
}

func stateSize(s *presence.State) int {
	n := len(s.Caps.Hash) + len(s.Caps.Node) + len(s.Caps.Ver) + len(s.Status)*int(unsafe.Sizeof(presence.Text{}))
	for _, t := range s.Status {
		n += len(t.Lang) + len(t.Value)
	}
	return n
}

func descriptionsSize(ds []psa.Description) int {
	n := len(ds) * int(unsafe.Sizeof(psa.Description{}))
	for _, d := range ds {
		n += len(d.Lang) + len(d.Text)
	}
	return n
}

func markSize(m *psa.Mark) int {
	return len(m.Condition) + jidSize(m.By) + descriptionsSize(m.Descriptions)
}

func marksSize(ms psa.Marks) int {
	n := len(ms) * int(unsafe.Sizeof(psa.Mark{}))
	for i := range ms {
		n += markSize(&ms[i])
	}
	return n
}

func annotationSize(a *psa.Annotation) int {
	return len(a.Condition) + jidSize(a.From) + descriptionsSize(a.Descriptions)
}

func rosterEventSize(e *roster.Event) int {
	n := int(unsafe.Sizeof(*e)) + jidSize(e.JID) + jidSize(e.Resource.JID) + stateSize(&e.Resource.State) +
		marksSize(e.Resource.Marks) + markSize(&e.Mark) + annotationSize(&e.Annotation) +
		len(e.Item.Name) + len(e.Item.Subscription) + len(e.Item.Groups)*int(unsafe.Sizeof(""))
	for _, g := range e.Item.Groups {
		n += len(g)
	}
	return n
}

func roomEventSize(e *mucwatch.Event) int {
	o := &e.Occupant
	return int(unsafe.Sizeof(*e)) + jidSize(e.Room) + jidSize(e.JID) + len(e.OldNick) +
		jidSize(o.JID) + len(o.Nick) + jidSize(o.RealJID) + len(o.Role) + len(o.Affiliation) + len(o.OccupantID) +
		stateSize(&o.State) + marksSize(o.Marks) + markSize(&e.Mark) + 8*len(e.Codes) +
		8*len(e.Removal.Codes) + len(e.Removal.Actor) + len(e.Removal.Reason) + jidSize(e.Removal.Venue) +
		annotationSize(&e.Annotation)
}

// presenceSize estimates a copied presence: its state, annotations and the
// muc#user data (each status text of which is bounded by the decoder).
func presenceSize(p *presence.Presence) int {
	n := int(unsafe.Sizeof(*p)) + len(p.ID) + jidSize(p.From) + jidSize(p.To) + len(p.Lang) + stateSize(&p.State) + len(p.OccupantID)
	for i := range p.Annotations {
		n += int(unsafe.Sizeof(p.Annotations[i])) + annotationSize(&p.Annotations[i])
	}
	if u := p.MUC; u != nil {
		n += int(unsafe.Sizeof(*u)) + 8*len(u.Status) + len(u.Item.Nick) + len(u.Item.Role) + len(u.Item.Affiliation) +
			jidSize(u.Item.JID) + len(u.Item.Actor) + len(u.Item.Reason)
		if d := u.Destroy; d != nil {
			n += int(unsafe.Sizeof(*d)) + jidSize(d.Venue) + len(d.Reason)
		}
	}
	if e := p.Error; e != nil {
		n += int(unsafe.Sizeof(*e)) + len(e.Condition)
		for lang, text := range e.Text {
			n += len(lang) + len(text) + 16
		}
	}
	return n + len(p.Problems)*64
}
