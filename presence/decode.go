package presence

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/fastjid"
	"github.com/psakit/psakit/internal/xmltok"
	"github.com/psakit/psakit/psa"
)

// Errors that make a stanza unusable. Decode wraps them with details; match
// them with errors.Is.
var (
	// ErrNotPresence: the element is not a presence stanza.
	ErrNotPresence = errors.New("presence: not a presence stanza")
	// ErrInvalidJID: the from or to attribute is not a valid JID.
	ErrInvalidJID = errors.New("presence: invalid JID")
	// ErrInvalidType: the type attribute is not one RFC 6121 defines.
	ErrInvalidType = errors.New("presence: invalid type")
)

// Problems found in a usable stanza, listed in Presence.Problems (wrapped
// with details). Malformed annotations are listed with the psa errors, which
// match psa.ErrMalformed.
var (
	// ErrInvalidValue: a show, priority, delay stamp or MUC status code that is
	// not valid was ignored.
	ErrInvalidValue = errors.New("presence: invalid value ignored")
	// ErrLimit: a value over one of the package's limits was cut or dropped.
	ErrLimit = errors.New("presence: value over limit cut or dropped")
)

var errTooManyAnnotations = fmt.Errorf("%w: more than %d state annotations", ErrLimit, MaxAnnotations)

// Unmarshal decodes a presence stanza from its XML text.
func Unmarshal(data []byte) (Presence, error) {
	return Decode(xml.NewDecoder(bytes.NewReader(data)))
}

// Decode reads the next element from r, which must be a presence stanza, and
// decodes it. Tokens before the first start element are skipped.
func Decode(r xml.TokenReader) (Presence, error) { return (*Decoder)(nil).Decode(r) }

// DecodeElement decodes the presence stanza whose start element was already
// read from r, as an xmpp.Handler receives it. It reads up to and including
// the matching end element, also when it returns an error about the stanza
// itself, so that a caller walking a stream stays in step; it stops early
// only when r fails.
func DecodeElement(r xml.TokenReader, start xml.StartElement) (Presence, error) {
	return (*Decoder)(nil).DecodeElement(r, start)
}

// Decoder decodes presence as the package functions do, and remembers what
// repeats from stanza to stanza on a stream: the to attribute (the account's
// own JID), the annotators, and the strings a model keeps per entry (caps,
// xml:lang), of which it hands out one shared copy. Models then keep one copy
// instead of one per entry, and compare them by pointer. Use one Decoder per
// stream or client. The zero value is ready to use, and a Decoder is safe for
// concurrent use; its memory is fixed (a few KiB). Caching is invisible in
// the results.
type Decoder struct {
	to   fastjid.Cache
	strs fastjid.Interner
	psa  psa.Decoder
}

// The caches of d, or nil ones (no caching) when d is nil.
func (d *Decoder) toCache() *fastjid.Cache {
	if d == nil {
		return nil
	}
	return &d.to
}

func (d *Decoder) intern(s string) string {
	if d == nil {
		return s
	}
	return d.strs.Intern(s)
}

func (d *Decoder) annotations() *psa.Decoder {
	if d == nil {
		return nil
	}
	return &d.psa
}

// Decode is the package's Decode through d's caches.
func (d *Decoder) Decode(r xml.TokenReader) (Presence, error) {
	for {
		tok, err := r.Token()
		if start, ok := tok.(xml.StartElement); ok {
			return d.DecodeElement(r, start)
		}
		if err != nil {
			return Presence{}, err
		}
	}
}

// DecodeElement is the package's DecodeElement through d's caches.
func (d *Decoder) DecodeElement(r xml.TokenReader, start xml.StartElement) (Presence, error) {
	var (
		p     Presence
		fatal error
	)
	if start.Name.Local != "presence" {
		fatal = fmt.Errorf("%w: got <%s>", ErrNotPresence, start.Name.Local)
	}
	for _, at := range start.Attr {
		if xmltok.IsLang(at.Name) {
			p.Lang = d.intern(at.Value)
			continue
		}
		if at.Name.Space != "" {
			continue
		}
		switch at.Name.Local {
		case "id":
			p.ID = at.Value
		case "type":
			p.Type = stanza.PresenceType(at.Value)
		case "from":
			if at.Value == "" {
				p.From = jid.JID{}
				break
			}
			j, canonical, err := fastjid.Parse(at.Value)
			if err != nil {
				if fatal == nil {
					fatal = fmt.Errorf("%w: from: %w", ErrInvalidJID, err)
				}
				break
			}
			p.From = j
			p.fromJID = j
			if canonical {
				p.fromKey = at.Value
			} else {
				p.fromKey = j.String()
			}
		case "to":
			if at.Value == "" {
				p.To = jid.JID{}
				break
			}
			// The to of every stanza on a stream is the account's own JID: keep
			// it parsed.
			j, _, err := d.toCache().Parse(at.Value)
			if err != nil && fatal == nil {
				fatal = fmt.Errorf("%w: to: %w", ErrInvalidJID, err)
			}
			p.To = j
		}
	}
	if fatal == nil && !validType(p.Type) {
		fatal = fmt.Errorf("%w: %q", ErrInvalidType, xmltok.Truncate(string(p.Type), 32))
	}

	// The hot loop walks the tokens itself: xmltok.Children's indirect call
	// made decoding 5% slower.
	ns := start.Name.Space
	for {
		tok, err := r.Token()
		switch t := tok.(type) {
		case xml.StartElement:
			var cerr error
			if fatal != nil {
				cerr = xmltok.Skip(r)
			} else {
				cerr = p.decodeChild(r, t, ns, d)
			}
			if cerr != nil {
				return Presence{}, cerr
			}
			continue
		case xml.EndElement:
			if fatal != nil {
				return Presence{}, fatal
			}
			return p, nil
		}
		if err != nil {
			return Presence{}, xmltok.UnexpectedEOF(err)
		}
	}
}

// parseJID parses a JID that is not expected to repeat from stanza to
// stanza, with the fast path for JIDs already in normal form.
func parseJID(s string) (jid.JID, error) {
	j, _, err := fastjid.Parse(s)
	return j, err
}

func validType(t stanza.PresenceType) bool {
	switch t {
	case stanza.AvailablePresence, stanza.UnavailablePresence, stanza.ErrorPresence,
		stanza.ProbePresence, stanza.SubscribePresence, stanza.SubscribedPresence,
		stanza.UnsubscribePresence, stanza.UnsubscribedPresence:
		return true
	}
	return false
}

func (p *Presence) problem(err error) {
	// A stanza can only carry so many problems worth reporting; past a few,
	// more of them say nothing new and would cost memory.
	if len(p.Problems) < 8 {
		p.Problems = append(p.Problems, err)
	}
}

// decodeChild decodes one direct child of the presence, start already read,
// and reads it to its end. It returns only errors of r.
func (p *Presence) decodeChild(r xml.TokenReader, t xml.StartElement, ns string, d *Decoder) error {
	switch t.Name.Space {
	case ns, "":
		return p.decodeCore(r, t, d)
	case psa.NS:
		if t.Name.Local != "state-annotation" {
			return xmltok.Skip(r)
		}
		// Counted apart from Problems, whose cap a stanza can fill first.
		if len(p.Annotations)+len(p.Malformed) >= MaxAnnotations {
			if p.DroppedAnnotations == 0 {
				p.problem(errTooManyAnnotations)
			}
			p.DroppedAnnotations++
			return xmltok.Skip(r)
		}
		a, err := d.annotations().DecodeElement(r, t)
		switch {
		case errors.Is(err, psa.ErrMalformed):
			p.Malformed = append(p.Malformed, err)
			p.problem(err)
			return nil
		case err != nil:
			return err
		}
		for i := range a.Descriptions {
			if a.Descriptions[i].Lang == "" {
				a.Descriptions[i].Lang = p.Lang
			}
		}
		if a.Truncated {
			p.problem(fmt.Errorf("%w: annotation from %s: descriptions", ErrLimit, a.From))
		}
		p.Annotations = append(p.Annotations, a)
		return nil
	case NSCaps:
		if t.Name.Local == "c" && p.Caps == (Caps{}) {
			var c Caps
			p.limitAttrs(t, []string{"hash", "node", "ver"}, []*string{&c.Hash, &c.Node, &c.Ver})
			c.Hash, c.Node, c.Ver = d.intern(c.Hash), d.intern(c.Node), d.intern(c.Ver)
			p.Caps = c
		}
	case NSDelay:
		if t.Name.Local == "delay" && p.Delay.IsZero() {
			if stamp, ok := xmltok.Attr(t, "stamp"); ok {
				d, err := time.Parse(time.RFC3339, stamp)
				if err != nil {
					p.problem(fmt.Errorf("%w: delay stamp %q", ErrInvalidValue, xmltok.Truncate(stamp, 40)))
				} else {
					p.Delay = d
				}
			}
		}
	case NSMUCUser:
		if t.Name.Local == "x" && p.MUC == nil {
			return p.decodeMUCUser(r)
		}
	case NSOccupantID:
		if t.Name.Local == "occupant-id" && p.OccupantID == "" {
			p.OccupantID = p.limitAttr(t, "id")
		}
	}
	return xmltok.Skip(r)
}

// limitAttrs sets *dsts[i] to the unqualified attribute names[i] of t, in a
// single pass over the attributes: the first of each name counts, and one
// longer than MaxAttrBytes is dropped (left "") with a problem. At most 8
// names.
func (p *Presence) limitAttrs(t xml.StartElement, names []string, dsts []*string) {
	var seen uint8
	for _, at := range t.Attr {
		if at.Name.Space != "" {
			continue
		}
		for i, name := range names {
			if at.Name.Local != name || seen&(1<<i) != 0 {
				continue
			}
			seen |= 1 << i
			if len(at.Value) > MaxAttrBytes {
				p.problem(fmt.Errorf("%w: %s of %d bytes", ErrLimit, name, len(at.Value)))
			} else {
				*dsts[i] = at.Value
			}
			break
		}
	}
}

// limitAttr returns the attribute, or "" with a problem when it is longer
// than MaxAttrBytes.
func (p *Presence) limitAttr(t xml.StartElement, name string) string {
	var v string
	p.limitAttrs(t, []string{name}, []*string{&v})
	return v
}

// decodeCore decodes the children RFC 6120 and 6121 define.
func (p *Presence) decodeCore(r xml.TokenReader, t xml.StartElement, d *Decoder) error {
	switch t.Name.Local {
	case "show":
		var buf [8]byte
		v, _, err := xmltok.AppendText(buf[:0], r, len(buf))
		if err != nil {
			return err
		}
		// The constants, so that a show costs no allocation.
		switch string(v) {
		case string(ShowAway):
			p.Show = ShowAway
		case string(ShowChat):
			p.Show = ShowChat
		case string(ShowDND):
			p.Show = ShowDND
		case string(ShowXA):
			p.Show = ShowXA
		default:
			p.problem(fmt.Errorf("%w: show %q", ErrInvalidValue, string(v)))
		}
		return nil
	case "status":
		v, cut, err := xmltok.ReadText(r, MaxStatusBytes)
		if err != nil {
			return err
		}
		lang := d.intern(xmltok.Lang(t, p.Lang))
		switch {
		case len(p.Status) >= MaxStatuses || len(lang) > psa.MaxLangLen:
			p.problem(fmt.Errorf("%w: status dropped", ErrLimit))
		default:
			if cut {
				p.problem(fmt.Errorf("%w: status cut to %d bytes", ErrLimit, MaxStatusBytes))
			}
			p.Status = append(p.Status, Text{Lang: lang, Value: v})
		}
		return nil
	case "priority":
		var buf [8]byte
		v, _, err := xmltok.AppendText(buf[:0], r, len(buf))
		if err != nil {
			return err
		}
		if n, ok := parseInt8(v); ok {
			p.Priority = n
		} else {
			p.problem(fmt.Errorf("%w: priority %q", ErrInvalidValue, string(v)))
		}
		return nil
	case "error":
		if p.Error == nil {
			se, err := p.decodeStanzaError(r, t)
			p.Error = &se
			return err
		}
	}
	return xmltok.Skip(r)
}

// parseInt8 is strconv.ParseInt(string(b), 10, 8) without the allocation.
func parseInt8(b []byte) (int8, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 128 {
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	if n < -128 || n > 127 {
		return 0, false
	}
	return int8(n), true
}

// decodeStanzaError decodes an RFC 6120 stanza error element, start already
// read: its type, by, the first defined condition and the texts (capped).
func (p *Presence) decodeStanzaError(r xml.TokenReader, t xml.StartElement) (stanza.Error, error) {
	se := stanza.Error{Type: stanza.ErrorType(p.limitAttr(t, "type"))}
	if by, ok := xmltok.Attr(t, "by"); ok && by != "" {
		j, err := parseJID(by)
		if err != nil {
			p.problem(fmt.Errorf("%w: error by: %w", ErrInvalidValue, err))
		} else {
			se.By = j
		}
	}
	err := xmltok.Children(r, func(c xml.StartElement) error {
		switch {
		case c.Name.Space != stanza.NSError:
		case c.Name.Local == "text":
			text, _, err := xmltok.ReadText(r, MaxStatusBytes)
			if err == nil && text != "" && len(se.Text) < MaxStatuses {
				if se.Text == nil {
					se.Text = make(map[string]string, 1)
				}
				se.Text[xmltok.Lang(c, p.Lang)] = text
			}
			return err
		default:
			if se.Condition == "" && len(c.Name.Local) <= MaxAttrBytes {
				se.Condition = stanza.Condition(c.Name.Local)
			}
		}
		return xmltok.Skip(r)
	})
	return se, err
}

// decodeMUCUser decodes the muc#user x element, start already read.
func (p *Presence) decodeMUCUser(r xml.TokenReader) error {
	u := &MUCUser{}
	items := 0
	err := xmltok.Children(r, func(t xml.StartElement) error {
		switch t.Name.Local {
		case "item":
			items++
			if items == 1 {
				return p.decodeMUCItem(r, t, &u.Item)
			}
		case "status":
			if code, ok := xmltok.Attr(t, "code"); ok {
				n, err := strconv.Atoi(code)
				switch {
				case err != nil || n < 100 || n > 999:
					p.problem(fmt.Errorf("%w: MUC status code %q", ErrInvalidValue, xmltok.Truncate(code, 8)))
				case len(u.Status) >= MaxMUCStatusCodes:
					p.problem(fmt.Errorf("%w: MUC status codes", ErrLimit))
				default:
					u.Status = append(u.Status, n)
				}
			}
		case "destroy":
			return p.decodeMUCDestroy(r, t, u)
		}
		return xmltok.Skip(r)
	})
	if err != nil {
		return err
	}
	p.MUC = u
	return nil
}

func (p *Presence) decodeMUCItem(r xml.TokenReader, t xml.StartElement, it *MUCItem) error {
	p.limitAttrs(t, []string{"affiliation", "role", "nick"}, []*string{&it.Affiliation, &it.Role, &it.Nick})
	if s, ok := xmltok.Attr(t, "jid"); ok && s != "" {
		j, err := parseJID(s)
		if err != nil {
			p.problem(fmt.Errorf("%w: MUC item jid: %w", ErrInvalidValue, err))
		} else {
			it.JID = j
		}
	}
	return xmltok.Children(r, func(c xml.StartElement) error {
		switch c.Name.Local {
		case "actor":
			it.Actor = p.limitAttr(c, "nick")
		case "reason":
			var err error
			it.Reason, _, err = xmltok.ReadText(r, MaxStatusBytes)
			return err
		}
		return xmltok.Skip(r)
	})
}

func (p *Presence) decodeMUCDestroy(r xml.TokenReader, t xml.StartElement, u *MUCUser) error {
	d := &MUCDestroy{}
	if s, ok := xmltok.Attr(t, "jid"); ok && s != "" {
		j, err := parseJID(s)
		if err != nil {
			p.problem(fmt.Errorf("%w: MUC destroy jid: %w", ErrInvalidValue, err))
		} else {
			d.Venue = j
		}
	}
	err := xmltok.Children(r, func(c xml.StartElement) error {
		if c.Name.Local != "reason" {
			return xmltok.Skip(r)
		}
		var err error
		d.Reason, _, err = xmltok.ReadText(r, MaxStatusBytes)
		return err
	})
	if err != nil {
		return err
	}
	u.Destroy = d
	return nil
}
