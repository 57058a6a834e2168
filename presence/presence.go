// Package presence decodes presence stanzas, once each, into the form the
// psakit models work on.
//
// mellium hands a handler a stream of XML tokens. Decode walks those tokens a
// single time and builds a [Presence] as it goes: the attributes, show,
// status and priority (RFC 6121), entity capabilities (XEP-0115), the delay
// stamp (XEP-0203), MUC user data (XEP-0045), the occupant id (XEP-0421) and
// every state annotation (XEP-0310). It does not use reflection, so it costs
// little more than reading the tokens, which a mellium handler has to do
// anyway.
//
// Decoding is defensive: a hostile peer cannot make it panic or keep more
// than the documented limits. Problems that leave the presence usable (a
// malformed annotation, an invalid priority, an oversized status cut short)
// are listed in Presence.Problems, the first few of them. The models act on
// malformed and dropped annotations, so those are also kept apart, whatever
// came before them (Presence.Malformed, Presence.DroppedAnnotations). Only
// problems that make the stanza unusable (not a presence, an invalid from or
// type) are returned as errors.
package presence

import (
	"time"

	"golang.org/x/text/language"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/langmatch"
	"github.com/psakit/psakit/psa"
)

// Namespaces of the children Decode understands.
const (
	NSCaps       = "http://jabber.org/protocol/caps"
	NSDelay      = "urn:xmpp:delay"
	NSMUCUser    = "http://jabber.org/protocol/muc#user"
	NSOccupantID = "urn:xmpp:occupant-id:0"
)

// Limits applied while decoding.
const (
	// MaxStatusBytes is the longest status text kept; longer text is cut at a
	// rune boundary.
	MaxStatusBytes = 2048
	// MaxStatuses is the number of status elements (one per language) kept.
	MaxStatuses = 8
	// MaxAttrBytes is the longest caps node, ver or hash, occupant id, MUC nick,
	// role or affiliation kept; a longer one is dropped.
	MaxAttrBytes = 512
	// MaxMUCStatusCodes is the number of MUC status codes kept.
	MaxMUCStatusCodes = 16
	// MaxAnnotations is the number of state-annotation elements decoded per
	// presence, malformed ones included. A presence carries one per
	// annotator, and a client trusts at most two annotators for any presence;
	// further ones are dropped and counted (Presence.DroppedAnnotations),
	// with a problem.
	MaxAnnotations = 4
)

// Show is the availability sub-state of an available presence.
type Show string

// The values RFC 6121 defines. ShowNone means plainly available.
const (
	ShowNone Show = ""
	ShowAway Show = "away"
	ShowChat Show = "chat"
	ShowDND  Show = "dnd"
	ShowXA   Show = "xa"
)

// Text is a human-readable text with its language.
type Text struct {
	Lang  string
	Value string
}

// Caps is an entity capabilities element (XEP-0115) as it was sent: it has not
// been verified.
type Caps struct {
	Hash string // the hash function name, e.g. "sha-1"
	Node string
	Ver  string
}

// Presence is a decoded presence stanza.
type Presence struct {
	ID   string
	Type stanza.PresenceType
	From jid.JID // zero when the stanza had no from (it came from the account itself)
	To   jid.JID
	Lang string // the stanza's xml:lang

	// State is what a model keeps of the presence: show, status, priority,
	// caps and delay.
	State

	// MUC is the XEP-0045 user data of a presence from a room occupant, nil
	// when absent.
	MUC *MUCUser
	// OccupantID is the XEP-0421 stable occupant id, "" when absent.
	OccupantID string

	// Annotations are the presence's XEP-0310 state annotations, well formed
	// but not yet checked for trust (psa.CheckTrust).
	Annotations []psa.Annotation
	// Malformed lists the state-annotation elements that could not be
	// decoded, as errors matching psa.ErrMalformed, in stanza order. With
	// Annotations they hold at most MaxAnnotations elements.
	Malformed []error
	// DroppedAnnotations counts the state-annotation elements past
	// MaxAnnotations, which were not decoded.
	DroppedAnnotations int

	// Error is the stanza error of a presence of type error, nil otherwise.
	Error *stanza.Error

	// Problems lists what was wrong with the stanza but did not make it
	// unusable: malformed annotations (matching the psa errors), an invalid
	// priority, oversized values that were cut or dropped. It holds at most
	// the first 8 problems: the annotation fields above, not Problems, say
	// which annotations were malformed or dropped.
	Problems []error

	// fromKey is the string form of fromJID, the From the decoder set: the
	// attribute itself when it was already in normal form.
	fromKey string
	fromJID jid.JID
}

// FromString returns p.From.String(). For a presence made by Decode it costs
// no allocation: the decoder keeps the from attribute when it is already in
// normal form, so the models can key their maps with it on every presence
// of a burst. After p.From is changed it computes the string again.
func (p *Presence) FromString() string {
	if p.fromKey != "" && p.From.Equal(p.fromJID) {
		return p.fromKey
	}
	return p.From.String()
}

// StatusText returns the status text that best fits the preferred languages,
// most preferred first; with no preference, or no match, the one in the
// stanza's language, else the first. It returns "" when there is no status.
func (p *Presence) StatusText(prefs ...language.Tag) string {
	return bestText(p.Status, p.Lang, prefs...)
}

// bestText picks from texts the one that best fits the preferred languages.
// Without preferences, or when none matches, it picks the one in
// defaultLang, else the first; "" when there is none.
func bestText(texts []Text, defaultLang string, prefs ...language.Tag) string {
	i := langmatch.Best(texts, func(t Text) string { return t.Lang }, defaultLang, prefs)
	if i < 0 {
		return ""
	}
	return texts[i].Value
}

// State is the part of an available presence that a model keeps per entity
// and a user interface shows.
type State struct {
	Show     Show
	Status   []Text // at most one per language
	Priority int8
	Caps     Caps      // zero when absent
	Delay    time.Time // the XEP-0203 stamp, zero when absent
}

// StatusText returns the status text that best fits the preferred languages,
// most preferred first; with no preference, or no match, the first. It
// returns "" when there is no status.
func (s State) StatusText(prefs ...language.Tag) string {
	return bestText(s.Status, "", prefs...)
}

// Equal reports whether s and o are the same state, status texts included.
func (s State) Equal(o State) bool {
	if s.Show != o.Show || s.Priority != o.Priority || s.Caps != o.Caps || !s.Delay.Equal(o.Delay) || len(s.Status) != len(o.Status) {
		return false
	}
	for i := range s.Status {
		if s.Status[i] != o.Status[i] {
			return false
		}
	}
	return true
}

// SameContent is Equal without the delay stamp: a re-sent presence carries a
// new stamp but says nothing new.
func (s State) SameContent(o State) bool {
	o.Delay = s.Delay
	return s.Equal(o)
}

// MUCUser is the http://jabber.org/protocol/muc#user payload of an occupant
// presence.
type MUCUser struct {
	// Item describes the occupant. A presence carries one item.
	Item MUCItem
	// Status lists the status codes, e.g. 110 for the user's own presence.
	Status []int
	// Destroy is set when the room was destroyed.
	Destroy *MUCDestroy
}

// Has reports whether the status codes include code.
func (u *MUCUser) Has(code int) bool {
	if u == nil {
		return false
	}
	for _, c := range u.Status {
		if c == code {
			return true
		}
	}
	return false
}

// MUCItem is the item element of a MUC user payload.
type MUCItem struct {
	Affiliation string
	Role        string
	JID         jid.JID // the occupant's real JID, when the room shows it
	Nick        string  // the new nick in a nick change (status 303)
	Actor       string  // the nick of whoever kicked or banned, if given
	Reason      string
}

// MUCDestroy tells that a room was destroyed, and where to go instead.
type MUCDestroy struct {
	Venue  jid.JID // the alternate venue, zero when none
	Reason string
}
