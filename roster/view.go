package roster

import (
	"iter"

	"mellium.im/xmpp/jid"
)

// View is a read-only view of a Model: what package client hands to
// applications, so that only its tracker, which feeds the model from the
// stream, can change it. Its methods are the Model's read methods, return
// snapshots, and are safe to call from any goroutine while the model
// changes. The zero View is empty.
type View struct{ m *Model }

// View returns a read-only view of m.
func (m *Model) View() View { return View{m} }

// Account returns the account JID.
func (v View) Account() jid.JID {
	if v.m == nil {
		return jid.JID{}
	}
	return v.m.Account()
}

// Version returns the roster version (RFC 6121 §2.6) of the items, "" when
// the server does not version rosters or no roster was fetched yet.
func (v View) Version() string {
	if v.m == nil {
		return ""
	}
	return v.m.Version()
}

// Stats returns counts of what the model holds.
func (v View) Stats() Stats {
	if v.m == nil {
		return Stats{}
	}
	return v.m.Stats()
}

// Contact returns a snapshot of the contact with j's bare JID.
func (v View) Contact(j jid.JID) (Contact, bool) {
	if v.m == nil {
		return Contact{}, false
	}
	return v.m.Contact(j)
}

// Resource returns a snapshot of the resource with full JID j.
func (v View) Resource(j jid.JID) (Resource, bool) {
	if v.m == nil {
		return Resource{}, false
	}
	return v.m.Resource(j)
}

// Contacts returns a snapshot of every contact: roster items, and bare JIDs
// outside the roster that have resources. The snapshot is taken when
// iteration starts; the model may change while the loop runs.
func (v View) Contacts() iter.Seq[Contact] {
	if v.m == nil {
		return func(func(Contact) bool) {}
	}
	return v.m.Contacts()
}

// Items returns a snapshot of the roster items.
func (v View) Items() iter.Seq[Item] {
	if v.m == nil {
		return func(func(Item) bool) {}
	}
	return v.m.Items()
}

// Resources returns a snapshot of every resource with presence.
func (v View) Resources() iter.Seq[Resource] {
	if v.m == nil {
		return func(func(Resource) bool) {}
	}
	return v.m.Resources()
}
