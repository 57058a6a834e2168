package mucwatch

import (
	"errors"
	"fmt"
	"slices"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Errors reported in EventRejected events.
var (
	// ErrLimit: a room or an occupant was not tracked because of a limit.
	ErrLimit = errors.New("mucwatch: limit reached, not tracked")
	// ErrNotOccupantJID: Joining needs an occupant JID, room@service/nick.
	ErrNotOccupantJID = errors.New("mucwatch: not an occupant JID (room@service/nick)")
	// ErrUnknownRoom: Rejoining was called for a room the model does not
	// track; call Joining.
	ErrUnknownRoom = errors.New("mucwatch: room not tracked")
	// ErrAlreadyJoined: Joining was called for a room that is joined or being
	// joined. Call Rejoining to join it again, or Forget it first.
	ErrAlreadyJoined = errors.New("mucwatch: room already joined or being joined")
	// ErrNotSelf: a presence about our own occupant JID without status 110
	// was not applied. The service marks every presence about ourselves with
	// 110 (XEP-0045); without it the presence is not ours to believe, and
	// only a presence with 110 changes our own occupant.
	ErrNotSelf = errors.New("mucwatch: presence for our own occupant without status 110")
)

// Sentinel errors matched by a *JoinError with errors.Is, one per error
// condition XEP-0045 §7.2 gives a meaning to when entering a room.
var (
	// ErrNickInUse: conflict, the nick is taken or registered by someone else.
	ErrNickInUse = errors.New("mucwatch: nickname in use")
	// ErrPasswordRequired: not-authorized, the room needs a password (or got a
	// wrong one).
	ErrPasswordRequired = errors.New("mucwatch: password required")
	// ErrMembersOnly: registration-required, the room is members-only.
	ErrMembersOnly = errors.New("mucwatch: members-only room")
	// ErrBanned: forbidden, the account is banned from the room.
	ErrBanned = errors.New("mucwatch: banned from the room")
	// ErrRoomNotFound: item-not-found, the room does not exist (or is locked
	// while its creator configures it).
	ErrRoomNotFound = errors.New("mucwatch: room not found")
	// ErrRoomFull: service-unavailable, the room has reached its maximum
	// number of occupants.
	ErrRoomFull = errors.New("mucwatch: room full")
	// ErrNotAllowed: not-allowed, room creation is restricted.
	ErrNotAllowed = errors.New("mucwatch: not allowed to create the room")
	// ErrNickRequired: jid-malformed, the join had no nick.
	ErrNickRequired = errors.New("mucwatch: nickname required")
	// ErrNickReserved: not-acceptable, the account must use its reserved
	// nick.
	ErrNickReserved = errors.New("mucwatch: reserved nickname must be used")
)

var joinSentinels = map[stanza.Condition]error{
	stanza.Conflict:             ErrNickInUse,
	stanza.NotAuthorized:        ErrPasswordRequired,
	stanza.RegistrationRequired: ErrMembersOnly,
	stanza.Forbidden:            ErrBanned,
	stanza.ItemNotFound:         ErrRoomNotFound,
	stanza.ServiceUnavailable:   ErrRoomFull,
	stanza.NotAllowed:           ErrNotAllowed,
	stanza.JIDMalformed:         ErrNickRequired,
	stanza.NotAcceptable:        ErrNickReserved,
}

// JoinError is the error a room answered to a presence we sent: a join, a
// rejoin, or a presence while in the room. errors.Is matches it with the
// sentinel of its condition (ErrNickInUse for conflict...), and with a
// stanza.Error of the same condition. Any other condition still gives a
// JoinError: use errors.As.
type JoinError struct {
	Room      jid.JID          // the room's bare JID
	Condition stanza.Condition // stanza.UndefinedCondition when the error had none
	Text      string           // the error's text, "" when none
}

// Error implements error.
func (e *JoinError) Error() string {
	s := "mucwatch: " + e.Room.String() + ": " + string(e.Condition)
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is reports whether target is the sentinel error of e's condition.
func (e *JoinError) Is(target error) bool {
	s, ok := joinSentinels[e.Condition]
	return ok && s == target
}

// Unwrap returns the stanza error, so that
// errors.Is(err, stanza.Error{Condition: stanza.Conflict}) works too.
func (e *JoinError) Unwrap() error {
	return stanza.Error{Condition: e.Condition}
}

// newJoinError builds the JoinError of an error presence.
func newJoinError(room jid.JID, se *stanza.Error, lang string) *JoinError {
	e := &JoinError{Room: room, Condition: stanza.UndefinedCondition}
	if se == nil {
		return e
	}
	if se.Condition != "" {
		e.Condition = se.Condition
	}
	e.Text = pickText(se.Text, lang)
	return e
}

// pickText picks the text in no language, else in the stanza's, else the
// first by language tag, so that the choice does not depend on map order.
func pickText(texts map[string]string, lang string) string {
	if t, ok := texts[""]; ok {
		return t
	}
	if t, ok := texts[lang]; ok {
		return t
	}
	if len(texts) == 0 {
		return ""
	}
	langs := make([]string, 0, len(texts))
	for l := range texts {
		langs = append(langs, l)
	}
	slices.Sort(langs)
	return texts[langs[0]]
}

func errLimit(what string, n int) error {
	return fmt.Errorf("%w: %s capped at %d", ErrLimit, what, n)
}
