package psatest

import (
	"encoding/xml"
	"errors"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/xmltok"
	"github.com/psakit/psakit/presence"
)

// Stanza is a top-level element a client sent to the server, as the server
// received it: usually an iq, message or presence stanza.
type Stanza struct {
	// Name is the element's local name: "iq", "message", "presence", or the
	// name of another top-level element.
	Name string
	// Attr lists the attributes as sent (namespace declarations included).
	Attr []xml.Attr
	// ID, Type, To and From are the attributes of the same names; To and From
	// are zero when absent or not valid JIDs. Clients normally send no from.
	ID, Type string
	To, From jid.JID
	// Raw is the XML of the element, with xmlns='jabber:client' on the
	// outermost element and the namespaces of its children declared where
	// they change.
	Raw []byte
	// Presence is the decoded stanza (psakit's one-pass decoder) when Name is
	// "presence" and it decoded, nil otherwise.
	Presence *presence.Presence

	toks []xml.Token
}

func newStanza(toks []xml.Token) Stanza {
	start := toks[0].(xml.StartElement)
	st := Stanza{
		Name: start.Name.Local,
		Attr: start.Attr,
		ID:   attrValue(start.Attr, "id"),
		Type: attrValue(start.Attr, "type"),
		Raw:  encode(toks, ""),
		toks: toks,
	}
	st.To, _ = jid.Parse(attrValue(start.Attr, "to"))
	st.From, _ = jid.Parse(attrValue(start.Attr, "from"))
	if st.Name == "presence" {
		r := xmltok.NewReplayer(toks)
		if p, err := presence.Decode(r); err == nil {
			st.Presence = &p
		}
	}
	return st
}

// String returns the XML of the element.
func (s Stanza) String() string { return string(s.Raw) }

// Decode unmarshals the element into v with encoding/xml, for example into a
// mellium roster.IQ or a struct of the test's own.
func (s Stanza) Decode(v any) error { return xml.Unmarshal(s.Raw, v) }

// Has reports whether the element has a direct child named local in the
// namespace ns, such as ("http://jabber.org/protocol/muc", "x").
func (s Stanza) Has(ns, local string) bool {
	found := false
	childElements(s.toks, func(start xml.StartElement, _ []xml.Token) {
		if start.Name.Space == ns && start.Name.Local == local {
			found = true
		}
	})
	return found
}

// stanzaErr returns the stanza error of an error reply as a stanza.Error.
func stanzaErr(st Stanza) error {
	var v struct {
		Err *stanza.Error `xml:"error"`
	}
	if err := st.Decode(&v); err != nil || v.Err == nil {
		return stanza.Error{Type: stanza.Cancel, Condition: stanza.UndefinedCondition}
	}
	return *v.Err
}

// Errors a caller may need to tell apart, to be matched with errors.Is.
var (
	// ErrClosed: the server was closed.
	ErrClosed = errors.New("psatest: server closed")
	// ErrNoSession: no session is bound to the JID, or the session's stream
	// has already been closed.
	ErrNoSession = errors.New("psatest: no such session")
	// ErrSessionClosed: the session ended before the awaited stanza or reply
	// arrived.
	ErrSessionClosed = errors.New("psatest: session closed")
	// ErrNoPresence: there is no available presence to annotate: none was
	// delivered from that sender to that recipient since its last
	// unavailable presence.
	ErrNoPresence = errors.New("psatest: no presence to annotate")
	// ErrNoOccupant: the room has no occupant with that nickname.
	ErrNoOccupant = errors.New("psatest: no such occupant")
	// ErrNickInUse: the new nickname is taken by another occupant.
	ErrNickInUse = errors.New("psatest: nickname in use")
)
