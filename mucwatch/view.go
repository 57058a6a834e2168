package mucwatch

import (
	"iter"

	"mellium.im/xmpp/jid"
)

// View is a read-only view of a Model: what package client hands to
// applications, so that only its tracker, which feeds the model from the
// stream and joins and leaves, can change it. Its methods are the Model's
// read methods, return snapshots, and are safe to call from any goroutine
// while the model changes. The zero View is empty.
type View struct{ m *Model }

// View returns a read-only view of m.
func (m *Model) View() View { return View{m} }

// Account returns the account JID the model was made for.
func (v View) Account() jid.JID {
	if v.m == nil {
		return jid.JID{}
	}
	return v.m.Account()
}

// Stats returns counts of what the model holds.
func (v View) Stats() Stats {
	if v.m == nil {
		return Stats{}
	}
	return v.m.Stats()
}

// Tracks reports whether a presence from from belongs to a room the model
// tracks, in any state.
func (v View) Tracks(from jid.JID) bool { return v.m != nil && v.m.Tracks(from) }

// Room returns a snapshot of the room with j's bare JID.
func (v View) Room(j jid.JID) (Room, bool) {
	if v.m == nil {
		return Room{}, false
	}
	return v.m.Room(j)
}

// Rooms returns a snapshot of every room, in no particular order. The
// snapshot is taken when iteration starts; the model may change while the
// loop runs.
func (v View) Rooms() iter.Seq[Room] {
	if v.m == nil {
		return func(func(Room) bool) {}
	}
	return v.m.Rooms()
}

// Occupant returns a snapshot of the occupant with occupant JID j
// (room@service/nick). Nicks are compared exactly.
func (v View) Occupant(j jid.JID) (Occupant, bool) {
	if v.m == nil {
		return Occupant{}, false
	}
	return v.m.Occupant(j)
}

// Self returns a snapshot of our own occupant in the room with j's bare
// JID, when the model knows it.
func (v View) Self(j jid.JID) (Occupant, bool) {
	if v.m == nil {
		return Occupant{}, false
	}
	return v.m.Self(j)
}

// Occupants returns a snapshot of the occupants of the room with j's bare
// JID, ours included, in no particular order; nothing when the room is not
// tracked. The snapshot is taken when iteration starts.
func (v View) Occupants(j jid.JID) iter.Seq[Occupant] {
	if v.m == nil {
		return func(func(Occupant) bool) {}
	}
	return v.m.Occupants(j)
}
