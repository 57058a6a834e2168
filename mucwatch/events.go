package mucwatch

import (
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

// EventKind says what happened.
type EventKind uint8

// The kinds of events a Model returns.
const (
	// EventOccupantAvailable: an occupant entered the room, or we learned of
	// it (the occupant list sent on join). Occupant is its state.
	EventOccupantAvailable EventKind = iota + 1
	// EventOccupantUnavailable: an occupant left, was removed (Codes and
	// Removal say why: 301 banned, 307 kicked...) or was swept after a
	// rejoin. Occupant is its last state.
	EventOccupantUnavailable
	// EventOccupantUpdated: an occupant changed its show, status, caps, role,
	// affiliation, real JID or occupant id.
	EventOccupantUpdated
	// EventOccupantStale: an annotator marked the occupant (Mark), or changed
	// the condition of its mark.
	EventOccupantStale
	// EventOccupantRestored: a mark was removed from the occupant (Mark is
	// the removed one). Other marks may remain: see Event.Fresh.
	EventOccupantRestored
	// EventNickChanged: an occupant, or we (Occupant.Self), changed nick
	// (status 303), or the service assigned or changed our nick (status 210,
	// or a self presence from another nick than the one we asked for).
	// OldNick is the previous nick, JID the new occupant JID.
	EventNickChanged
	// EventJoining: Joining was called; the room is joining.
	EventJoining
	// EventRejoining: Rejoining was called; the room is rejoining (or still
	// joining, if the first join never completed).
	EventRejoining
	// EventLeaving: Leaving was called; the room waits for the service to
	// confirm (EventRoomLeft). Its occupants are dropped without events.
	EventLeaving
	// EventRoomJoined: our own presence (status 110) arrived: the join or
	// rejoin is complete. Occupant is our own occupant.
	EventRoomJoined
	// EventRoomCreated: the join created the room (status 201). The room
	// stays locked until its owner accepts the default configuration or
	// submits one (XEP-0045 §10.1).
	EventRoomCreated
	// EventRoomStale: the room became stale (see Room.Stale). Mark is the
	// mark that made it so; it is the zero Mark when a NotJoined self-ping
	// verdict did.
	EventRoomStale
	// EventRoomRestored: the room is no longer stale. Mark is the mark whose
	// removal made it so (psa.LocalDisconnected after a rejoin), or the zero
	// Mark. This is when a client checks with a self-ping (XEP-0410) that we
	// are still in the room, unless a rejoin just proved it (Mark is
	// psa.LocalDisconnected); Resent tells an annotator's all-clear from a
	// new delivery.
	EventRoomRestored
	// EventRoomLeft: the room is no longer tracked: the service confirmed our
	// leave, Forget was called, or our stream dropped while leaving.
	EventRoomLeft
	// EventRoomJoinFailed: the service answered a join or rejoin with an
	// error. Err is a *JoinError; the room is no longer tracked; JID is the
	// occupant JID we asked for.
	EventRoomJoinFailed
	// EventRoomError: the service answered a presence we sent while in the
	// room (a nick change, say) with an error. Err is a *JoinError; the room
	// does not change.
	EventRoomError
	// EventRoomKicked: the service removed us: banned (301), kicked (307),
	// removed by an affiliation change (321) or because the room became
	// members-only (322), or for no reason given. Removal says why; the room
	// is in StateKicked, without occupants.
	EventRoomKicked
	// EventRoomDropped: the service removed us for technical reasons: a
	// system shutdown (332) or a technical problem (333), such as a failed
	// server-to-server link. Rejoin after a delay. The room is in
	// StateKicked, without occupants.
	EventRoomDropped
	// EventRoomDestroyed: the room was destroyed. Removal.Venue is the
	// alternate room, if any, and Removal.Reason the reason. The room is in
	// StateDestroyed, without occupants.
	EventRoomDestroyed
	// EventRejected: an annotation, a presence or an intent was not applied;
	// Err says why (psa.ErrUntrusted, psa.ErrMalformed, psa.ErrExcluded,
	// ErrLimit, ErrNotOccupantJID, ErrUnknownRoom, ErrAlreadyJoined,
	// ErrNotSelf).
	EventRejected
)

var eventNames = [...]string{
	EventOccupantAvailable:   "occupant-available",
	EventOccupantUnavailable: "occupant-unavailable",
	EventOccupantUpdated:     "occupant-updated",
	EventOccupantStale:       "occupant-stale",
	EventOccupantRestored:    "occupant-restored",
	EventNickChanged:         "nick-changed",
	EventJoining:             "joining",
	EventRejoining:           "rejoining",
	EventLeaving:             "leaving",
	EventRoomJoined:          "room-joined",
	EventRoomCreated:         "room-created",
	EventRoomStale:           "room-stale",
	EventRoomRestored:        "room-restored",
	EventRoomLeft:            "room-left",
	EventRoomJoinFailed:      "room-join-failed",
	EventRoomError:           "room-error",
	EventRoomKicked:          "room-kicked",
	EventRoomDropped:         "room-dropped",
	EventRoomDestroyed:       "room-destroyed",
	EventRejected:            "rejected",
}

// String returns the lower-case, hyphenated name of the kind, as psawatch
// prints it, and "unknown" for a value that is no kind: a fixed word, which
// programs may compare with (stringer's EventKind(N) would not be).
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one change to the model.
type Event struct {
	Kind EventKind
	// Room is the room's bare JID.
	Room jid.JID
	// JID is an occupant JID: the occupant's for occupant events, the new one
	// for nick-changed, ours for room-joined, room-created, room-kicked,
	// room-dropped, room-destroyed and a confirmed room-left, the one we asked
	// for with room-join-failed. It is the sender for room-error and for
	// rejections of a presence, the JID given for rejected intents, and zero
	// for the other room events.
	JID jid.JID
	// Occupant is the occupant after the presence that caused the event was
	// applied (its last state for EventOccupantUnavailable); our own
	// occupant for room-joined, room-created, room-kicked, room-dropped and
	// room-destroyed, when the model had it.
	Occupant Occupant
	// OldNick is the previous nick, for EventNickChanged.
	OldNick string
	// Mark is the mark set (stale events) or removed (restored events).
	Mark psa.Mark
	// Codes are the MUC status codes of the presence that caused the event.
	Codes []int
	// Removal is what the service said when it took an occupant or us out of
	// the room: for occupant-unavailable, room-kicked, room-dropped,
	// room-destroyed and room-left.
	Removal Removal
	// Annotation is the rejected annotation, for EventRejected caused by one.
	Annotation psa.Annotation
	// Err says why, for EventRejected, EventRoomJoinFailed and EventRoomError.
	Err error
	// Resent reports that the presence that caused the event carried
	// annotations: it is a server's re-send of what it delivered earlier, so
	// its content may be old. An EventRoomRestored with Resent set is the
	// moment to self-ping the room.
	Resent bool
}

// Fresh reports whether what the event is about carries no mark after it,
// so that one call serves every kind:
//   - EventRoomStale: false; EventRoomRestored: true (the room is no
//     longer stale, see Room.Stale).
//   - EventOccupantUnavailable: true, nothing is left to be stale.
//   - The other events: whether Occupant carries no mark. An
//     EventOccupantRestored can leave the occupant stale when another
//     annotator's mark remains. For the room events that carry our own
//     occupant (room-joined, room-created...) that is our own occupant;
//     Room.Stale is the room's state.
func (e Event) Fresh() bool {
	switch e.Kind {
	case EventRoomStale:
		return false
	case EventRoomRestored, EventOccupantUnavailable:
		return true
	}
	return !e.Occupant.Marks.Stale()
}
