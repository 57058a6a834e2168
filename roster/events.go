package roster

import (
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

// EventKind says what happened.
type EventKind uint8

// The kinds of events a Model returns.
const (
	// EventAvailable: a resource came online. Resource is its state.
	EventAvailable EventKind = iota + 1
	// EventUpdated: an online resource changed its show, status, priority or
	// caps.
	EventUpdated
	// EventUnavailable: a resource went offline or was swept. Resource is its
	// last state.
	EventUnavailable
	// EventStale: an annotator marked the resource (Mark), or changed the
	// condition of its mark.
	EventStale
	// EventRestored: a mark was removed (Mark is the removed one). The
	// resource may still carry other marks: see Event.Fresh.
	EventRestored
	// EventRejected: an annotation, a presence or a roster push was not
	// applied; Err says why (psa.ErrUntrusted, psa.ErrMalformed,
	// psa.ErrExcluded, ErrLimit, ErrSpoofedPush).
	EventRejected
	// EventItemAdded: a roster item appeared (Item).
	EventItemAdded
	// EventItemUpdated: a roster item changed (Item is the new one).
	EventItemUpdated
	// EventItemRemoved: a roster item was removed (Item is the old one).
	EventItemRemoved
)

var eventNames = [...]string{
	EventAvailable:   "available",
	EventUpdated:     "updated",
	EventUnavailable: "unavailable",
	EventStale:       "stale",
	EventRestored:    "restored",
	EventRejected:    "rejected",
	EventItemAdded:   "item-added",
	EventItemUpdated: "item-updated",
	EventItemRemoved: "item-removed",
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
	// JID is the full JID of the resource for presence events, the bare JID
	// for item events, the sender for rejections.
	JID jid.JID
	// Resource is the resource after the presence that caused the event was
	// applied (its last state for EventUnavailable).
	Resource Resource
	// Mark is the mark set (EventStale) or removed (EventRestored).
	Mark psa.Mark
	// Item is the roster item of item events.
	Item Item
	// Annotation is the rejected annotation, for EventRejected caused by one.
	Annotation psa.Annotation
	// Err says why, for EventRejected.
	Err error
	// Resent reports that the presence that caused the event carried
	// annotations: it is a server's re-send of what it delivered earlier, so
	// its content may be old. An EventRestored with Resent set is the moment
	// to verify the entity, if anything.
	Resent bool
}

// Fresh reports whether the resource carries no mark after the event. An
// EventRestored event can leave the resource stale when another annotator's
// mark remains; after EventUnavailable nothing is left to be stale.
func (e Event) Fresh() bool {
	return e.Kind == EventUnavailable || !e.Resource.Marks.Stale()
}
