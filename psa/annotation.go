package psa

import (
	"encoding/xml"
	"fmt"

	"golang.org/x/text/language"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/fastjid"
	"github.com/psakit/psakit/internal/langmatch"
	"github.com/psakit/psakit/internal/xmltok"
)

// NS is the XML namespace of XEP-0310 and the feature a client advertises in
// its entity capabilities to ask its server for annotations.
const NS = "urn:xmpp:psa"

// The name of the element this package decodes and encodes.
const elementName = "state-annotation"

// Limits applied while decoding, so that a hostile peer cannot make a model
// keep large amounts of memory per presence entry.
const (
	// MaxDescriptionBytes is the longest description kept, in bytes. Longer
	// text is cut at the last rune boundary before the limit and the
	// annotation is flagged Truncated.
	MaxDescriptionBytes = 1024
	// MaxDescriptions is the number of descriptions kept per annotation.
	// Further descriptions are dropped and the annotation is flagged Truncated.
	MaxDescriptions = 8
	// MaxConditionLen is the longest condition element name accepted. A longer
	// name makes the annotation invalid (ErrInvalidCondition).
	MaxConditionLen = 64
	// MaxLangLen is the longest xml:lang value kept on a description. A
	// description with a longer language tag is dropped (Truncated).
	MaxLangLen = 64
)

// Condition says why an annotator can no longer deliver presence updates.
// The empty Condition means the annotator's link is back (an empty annotation).
type Condition string

// The conditions defined by XEP-0310, and the one psakit adds on its own.
const (
	// ServerUnavailable: a server-to-server link needed to deliver updates is
	// down.
	ServerUnavailable Condition = "server-unavailable"
	// ConnectionPaused: the entity's own session is paused (XEP-0198
	// hibernation or a paused BOSH session).
	ConnectionPaused Condition = "connection-paused"
	// LocalDisconnected is never sent on the wire. psakit marks every entry
	// with it when the account's own stream to its server drops, because from
	// then on no update can arrive at all.
	LocalDisconnected Condition = "local-disconnected"
)

// Known reports whether c is one of the conditions XEP-0310 defines. Unknown
// conditions still mean stale: a newer server may define more of them.
func (c Condition) Known() bool {
	return c == ServerUnavailable || c == ConnectionPaused
}

// Description is a human-readable explanation that may accompany an
// annotation.
type Description struct {
	// Lang is the xml:lang of the text: the description's own, else the
	// annotation's, else the one inherited from the stanza (see Find), else "".
	Lang string
	Text string
}

// Annotation is one state-annotation element.
//
// The zero value is not a valid annotation: From must be set before encoding.
type Annotation struct {
	// From is the annotator: the server or service that can no longer
	// deliver updates. Decoding guarantees a bare domain JID.
	From jid.JID
	// Condition is why the presence may be stale; "" means the annotator's
	// link is back (an empty annotation).
	Condition Condition
	// Descriptions in any number of languages, at most MaxDescriptions.
	Descriptions []Description
	// Truncated reports that decoding cut a description or dropped some
	// because of the limits above. It is never encoded.
	Truncated bool
}

// Restored reports whether a is an empty annotation: the annotator's link is
// back and its earlier mark no longer applies.
func (a Annotation) Restored() bool { return a.Condition == "" }

// Description returns the description that best fits the user's preferred
// languages, most preferred first. Without preferences, or when none
// matches, it picks the description without a language tag, else the first
// one. ok is false when the annotation has no description.
func (a Annotation) Description(prefs ...language.Tag) (d Description, ok bool) {
	return bestDescription(a.Descriptions, prefs)
}

func bestDescription(ds []Description, prefs []language.Tag) (Description, bool) {
	// The fallback is the untagged description, else the first.
	i := langmatch.Best(ds, func(d Description) string { return d.Lang }, "", prefs)
	if i < 0 {
		return Description{}, false
	}
	return ds[i], true
}

// TokenReader returns a stream of XML tokens for a, for use with mellium's
// xmlstream and Session.Send. If a.From is the zero JID, reading returns
// ErrNoFrom.
func (a Annotation) TokenReader() xml.TokenReader {
	if a.From.String() == "" {
		return errReader{ErrNoFrom}
	}
	var inner []xml.TokenReader
	if a.Condition != "" {
		inner = append(inner, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: string(a.Condition)}}))
	}
	for _, d := range a.Descriptions {
		start := xml.StartElement{Name: xml.Name{Local: "description"}}
		if d.Lang != "" {
			start.Attr = []xml.Attr{{Name: xml.Name{Space: xmltok.NSXML, Local: "lang"}, Value: d.Lang}}
		}
		inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(d.Text)), start))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{
		Name: xml.Name{Space: NS, Local: elementName},
		Attr: []xml.Attr{{Name: xml.Name{Local: "from"}, Value: a.From.String()}},
	})
}

// WriteXML writes a to w and returns the number of tokens written.
func (a Annotation) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, a.TokenReader())
}

// MarshalXML implements xml.Marshaler. The start element is ignored: an
// annotation is always a state-annotation element in the psa namespace.
func (a Annotation) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	_, err := a.WriteXML(e)
	if err != nil {
		return err
	}
	return e.Flush()
}

// UnmarshalXML implements xml.Unmarshaler with the same checks and limits as
// DecodeElement.
func (a *Annotation) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v, err := DecodeElement(d, start)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// DecodeElement decodes the state-annotation element whose start token has
// already been read from r. It reads up to and including the matching end
// element even when it returns an error (unless r itself fails), so a caller
// walking a larger stream stays in step and may go on after a bad annotation.
//
// The errors it returns match ErrNotAnnotation, ErrNoFrom, ErrInvalidFrom,
// ErrMultipleConditions or ErrInvalidCondition with errors.Is, or are r's own
// errors (io.ErrUnexpectedEOF when r ends early).
func DecodeElement(r xml.TokenReader, start xml.StartElement) (Annotation, error) {
	return (*Decoder)(nil).DecodeElement(r, start)
}

// Decoder decodes annotations as DecodeElement does, and remembers the
// annotators and languages it met: a burst of annotations comes from a few
// servers, and parsing their JIDs again for each one would be wasted. Use one
// Decoder per stream (or per client). The zero value is ready to use, and a
// Decoder is safe for concurrent use; its memory is fixed (a few KiB).
type Decoder struct {
	annotators fastjid.Cache
	langs      fastjid.Interner
}

// DecodeElement is the package's DecodeElement, through d's caches. A nil
// Decoder caches nothing.
func (d *Decoder) DecodeElement(r xml.TokenReader, start xml.StartElement) (Annotation, error) {
	a, invalid, err := d.decodeElement(r, start, "")
	if err != nil {
		return Annotation{}, err
	}
	if invalid != nil {
		return Annotation{}, invalid
	}
	return a, nil
}

// decodeElement is DecodeElement with the xml:lang the element inherits from
// its ancestors. It tells the two kinds of failure apart: invalid is the
// first problem with the annotation itself (the element was read to its end,
// so the caller may go on), err is a failure of r (the caller must stop).
func (d *Decoder) decodeElement(r xml.TokenReader, start xml.StartElement, lang string) (a Annotation, invalid, err error) {
	if start.Name.Space != NS || start.Name.Local != elementName {
		invalid = fmt.Errorf("%w: got {%s}%s", ErrNotAnnotation, start.Name.Space, start.Name.Local)
	}
	var from string
	hasFrom := false
	for _, at := range start.Attr {
		switch {
		case at.Name.Local == "from" && at.Name.Space == "":
			from, hasFrom = at.Value, true
		case xmltok.IsLang(at.Name):
			lang = at.Value
		}
	}
	if invalid == nil {
		a.From, invalid = d.parseAnnotator(from, hasFrom)
	}

	for {
		tok, rerr := r.Token()
		if tok == nil && rerr != nil {
			return Annotation{}, nil, xmltok.UnexpectedEOF(rerr)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if invalid != nil {
				return Annotation{}, invalid, nil
			}
			return a, nil, nil
		case xml.StartElement:
			if t.Name.Space != NS {
				// A foreign element is an extension this version does not know: skip it.
				if err := xmltok.Skip(r); err != nil {
					return Annotation{}, nil, err
				}
				continue
			}
			if t.Name.Local == "description" {
				if err := d.decodeDescription(&a, r, t, lang); err != nil {
					return Annotation{}, nil, err
				}
				continue
			}
			// Any other element in our namespace is a condition. Unknown ones are
			// kept by name: a newer server may define more, and they all mean stale.
			switch {
			case a.Condition != "":
				if invalid == nil {
					invalid = fmt.Errorf("%w: %s and %s", ErrMultipleConditions, a.Condition, truncateName(t.Name.Local))
				}
			case len(t.Name.Local) > MaxConditionLen:
				if invalid == nil {
					invalid = fmt.Errorf("%w: name of %d bytes", ErrInvalidCondition, len(t.Name.Local))
				}
			default:
				a.Condition = conditionName(t.Name.Local)
			}
			if err := xmltok.Skip(r); err != nil {
				return Annotation{}, nil, err
			}
		}
		if rerr != nil {
			// A token came with an error (io.EOF included) before the end element.
			return Annotation{}, nil, xmltok.UnexpectedEOF(rerr)
		}
	}
}

// conditionName returns the constant for the known conditions so that
// decoding them allocates nothing beyond what the tokenizer already did.
func conditionName(s string) Condition {
	switch s {
	case string(ServerUnavailable):
		return ServerUnavailable
	case string(ConnectionPaused):
		return ConnectionPaused
	}
	return Condition(s)
}

func truncateName(s string) string {
	if len(s) > MaxConditionLen {
		return xmltok.Truncate(s, MaxConditionLen) + "…"
	}
	return s
}

// parseAnnotator checks the from attribute: present, a valid JID, and a bare
// domain.
func (d *Decoder) parseAnnotator(from string, present bool) (jid.JID, error) {
	if !present || from == "" {
		return jid.JID{}, ErrNoFrom
	}
	var cache *fastjid.Cache
	if d != nil {
		cache = &d.annotators
	}
	j, _, err := cache.Parse(from)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %q: %w", ErrInvalidFrom, truncateName(from), err)
	}
	if !j.Equal(j.Domain()) {
		return jid.JID{}, fmt.Errorf("%w: %q is not a bare domain", ErrInvalidFrom, truncateName(from))
	}
	return j, nil
}

// decodeDescription reads one description element (start already read),
// applying the length and count limits.
// The languages are interned: every mark that keeps a description then
// shares one copy of its language.
func (d *Decoder) decodeDescription(a *Annotation, r xml.TokenReader, start xml.StartElement, lang string) error {
	var langs *fastjid.Interner
	if d != nil {
		langs = &d.langs
	}
	lang = langs.Intern(xmltok.Lang(start, lang))
	text, cut, err := xmltok.ReadText(r, MaxDescriptionBytes)
	if err != nil {
		return err
	}
	if len(a.Descriptions) >= MaxDescriptions || len(lang) > MaxLangLen {
		a.Truncated = true
		return nil
	}
	a.Truncated = a.Truncated || cut
	a.Descriptions = append(a.Descriptions, Description{Lang: lang, Text: text})
	return nil
}

// errReader is a token reader that fails at once.
type errReader struct{ err error }

func (r errReader) Token() (xml.Token, error) { return nil, r.err }
