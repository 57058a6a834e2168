package sm

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"

	"mellium.im/xmlstream"
)

// NS is the XEP-0198 namespace (version 3 of the protocol, XEP-0198 v1.6).
const NS = "urn:xmpp:sm:3"

// nsStanzas is the namespace of the stanza error conditions <failed/> carries.
const nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// MaxIDLen bounds the stream IDs (previd, id) and locations accepted from a
// peer; a longer one is malformed. XEP-0198 sets no limit; servers use
// about 20 to 40 bytes.
const MaxIDLen = 1024

// maxText bounds the <text/> of a <failed/> kept in memory.
const maxText = 1024

// Errors of Decode. Every one of them matches ErrMalformed.
var (
	// ErrMalformed matches every error about an element's content.
	ErrMalformed = errors.New("sm: malformed stream management element")
	// ErrUnknown: the element is not one of enable, enabled, r, a, resume,
	// resumed and failed in the urn:xmpp:sm:3 namespace.
	ErrUnknown = fmt.Errorf("%w: not a urn:xmpp:sm:3 element", ErrMalformed)
)

// An AttrError says that an attribute of an element is missing or invalid.
// It matches ErrMalformed.
type AttrError struct {
	Element string // enable, enabled, a, resume, resumed or failed
	Attr    string
	Value   string // truncated to 64 bytes
	Missing bool
}

// Error implements error.
func (e *AttrError) Error() string {
	if e.Missing {
		return fmt.Sprintf("sm: <%s/> has no %s attribute", e.Element, e.Attr)
	}
	return fmt.Sprintf("sm: <%s/> has an invalid %s=%q", e.Element, e.Attr, e.Value)
}

// Is reports whether target is ErrMalformed.
func (e *AttrError) Is(target error) bool { return target == ErrMalformed }

// Enable asks the server to enable stream management.
type Enable struct {
	Resume bool   // ask for a resumable session
	Max    uint32 // preferred maximum resumption time in seconds; 0: none given
}

// Enabled is the server's answer to Enable.
type Enabled struct {
	ID       string // the stream ID to resume with; empty if not resumable
	Location string // where to reconnect to resume, if given
	Max      uint32 // maximum resumption time in seconds; 0: not given
	Resume   bool   // the session can be resumed
}

// Request is <r/>: the peer asks for an acknowledgement.
type Request struct{}

// Ack is <a h/>: the count of stanzas the sender has handled.
type Ack struct{ H uint32 }

// Resume asks the server to resume the session PrevID; H is the count of
// stanzas the client handled.
type Resume struct {
	PrevID string
	H      uint32
}

// Resumed is the server's acceptance of Resume; H is the count of stanzas
// the server handled.
type Resumed struct {
	PrevID string
	H      uint32
}

// Failed says that enabling or resuming failed. HasH tells whether the
// server said how many stanzas it had handled (H); Condition is the local
// name of the stanza error condition, if any.
type Failed struct {
	H         uint32
	HasH      bool
	Condition string
	Text      string // at most 1024 bytes kept
}

// Element is one of Enable, Enabled, Request, Ack, Resume, Resumed, Failed.
type Element interface{ TokenReader() xml.TokenReader }

func smStart(local string, attrs ...xml.Attr) xml.StartElement {
	return xml.StartElement{Name: xml.Name{Space: NS, Local: local}, Attr: attrs}
}

func attr(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }

func hAttr(h uint32) xml.Attr { return attr("h", strconv.FormatUint(uint64(h), 10)) }

// TokenReader encodes e.
func (e Enable) TokenReader() xml.TokenReader {
	var attrs []xml.Attr
	if e.Resume {
		attrs = append(attrs, attr("resume", "true"))
	}
	if e.Max != 0 {
		attrs = append(attrs, attr("max", strconv.FormatUint(uint64(e.Max), 10)))
	}
	return xmlstream.Wrap(nil, smStart("enable", attrs...))
}

// TokenReader encodes e.
func (e Enabled) TokenReader() xml.TokenReader {
	var attrs []xml.Attr
	if e.ID != "" {
		attrs = append(attrs, attr("id", e.ID))
	}
	if e.Location != "" {
		attrs = append(attrs, attr("location", e.Location))
	}
	if e.Max != 0 {
		attrs = append(attrs, attr("max", strconv.FormatUint(uint64(e.Max), 10)))
	}
	if e.Resume {
		attrs = append(attrs, attr("resume", "true"))
	}
	return xmlstream.Wrap(nil, smStart("enabled", attrs...))
}

// TokenReader encodes r.
func (Request) TokenReader() xml.TokenReader { return xmlstream.Wrap(nil, smStart("r")) }

// TokenReader encodes a.
func (a Ack) TokenReader() xml.TokenReader { return xmlstream.Wrap(nil, smStart("a", hAttr(a.H))) }

// TokenReader encodes r.
func (r Resume) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, smStart("resume", hAttr(r.H), attr("previd", r.PrevID)))
}

// TokenReader encodes r.
func (r Resumed) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(nil, smStart("resumed", hAttr(r.H), attr("previd", r.PrevID)))
}

// TokenReader encodes f.
func (f Failed) TokenReader() xml.TokenReader {
	var attrs []xml.Attr
	if f.HasH {
		attrs = append(attrs, hAttr(f.H))
	}
	var inner []xml.TokenReader
	if f.Condition != "" {
		inner = append(inner, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsStanzas, Local: f.Condition}}))
	}
	if f.Text != "" {
		inner = append(inner, xmlstream.Wrap(xmlstream.Token(xml.CharData(f.Text)),
			xml.StartElement{Name: xml.Name{Space: nsStanzas, Local: "text"}}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), smStart("failed", attrs...))
}

// Is reports whether name is one of the XEP-0198 elements Decode knows.
func Is(name xml.Name) bool {
	if name.Space != NS {
		return false
	}
	switch name.Local {
	case "enable", "enabled", "r", "a", "resume", "resumed", "failed":
		return true
	}
	return false
}

// Decode decodes the element that start opens; r yields its content, the
// end element included (as an xmpp.Handler receives it, or as a
// *xml.Decoder does after start). It reads the element to its end, keeping
// at most a bounded amount of it. Errors about the element match
// ErrMalformed; errors of r are returned as they are.
func Decode(r xml.TokenReader, start xml.StartElement) (Element, error) {
	if !Is(start.Name) {
		if err := skip(r); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: <%s xmlns=%q>", ErrUnknown, trunc(start.Name.Local), trunc(start.Name.Space))
	}
	var (
		cond, text string
		err        error
	)
	if start.Name.Local == "failed" {
		cond, text, err = failedChildren(r)
	} else {
		err = skip(r)
	}
	if err != nil {
		return nil, err
	}
	el := start.Name.Local
	switch el {
	case "enable":
		resume, err := boolAttr(el, start.Attr, "resume")
		if err != nil {
			return nil, err
		}
		max, _, err := uintAttr(el, start.Attr, "max", false)
		return Enable{Resume: resume, Max: max}, err
	case "enabled":
		resume, err := boolAttr(el, start.Attr, "resume")
		if err != nil {
			return nil, err
		}
		max, _, err := uintAttr(el, start.Attr, "max", false)
		if err != nil {
			return nil, err
		}
		id, err := strAttr(el, start.Attr, "id", false)
		if err != nil {
			return nil, err
		}
		loc, err := strAttr(el, start.Attr, "location", false)
		if err != nil {
			return nil, err
		}
		if resume && id == "" {
			return nil, &AttrError{Element: el, Attr: "id", Missing: true}
		}
		return Enabled{ID: id, Location: loc, Max: max, Resume: resume}, nil
	case "r":
		return Request{}, nil
	case "a":
		h, _, err := uintAttr(el, start.Attr, "h", true)
		return Ack{H: h}, err
	case "resume", "resumed":
		h, _, err := uintAttr(el, start.Attr, "h", true)
		if err != nil {
			return nil, err
		}
		prev, err := strAttr(el, start.Attr, "previd", true)
		if err != nil {
			return nil, err
		}
		if el == "resume" {
			return Resume{PrevID: prev, H: h}, nil
		}
		return Resumed{PrevID: prev, H: h}, nil
	default: // failed
		h, has, err := uintAttr(el, start.Attr, "h", false)
		if err != nil {
			return nil, err
		}
		return Failed{H: h, HasH: has, Condition: cond, Text: text}, nil
	}
}

func lookup(attrs []xml.Attr, name string) (string, bool) {
	for _, a := range attrs {
		if a.Name.Local == name && (a.Name.Space == "" || a.Name.Space == NS) {
			return a.Value, true
		}
	}
	return "", false
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func boolAttr(el string, attrs []xml.Attr, name string) (bool, error) {
	v, ok := lookup(attrs, name)
	switch {
	case !ok || v == "false" || v == "0":
		return false, nil
	case v == "true" || v == "1":
		return true, nil
	}
	return false, &AttrError{Element: el, Attr: name, Value: trunc(v)}
}

func uintAttr(el string, attrs []xml.Attr, name string, required bool) (uint32, bool, error) {
	v, ok := lookup(attrs, name)
	if !ok {
		if required {
			return 0, false, &AttrError{Element: el, Attr: name, Missing: true}
		}
		return 0, false, nil
	}
	// xs:unsignedInt: digits only (a leading + is allowed by XML Schema but
	// no server sends one; ParseUint refuses it, and so do we).
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || v == "" || v[0] < '0' || v[0] > '9' {
		return 0, false, &AttrError{Element: el, Attr: name, Value: trunc(v)}
	}
	return uint32(n), true, nil
}

func strAttr(el string, attrs []xml.Attr, name string, required bool) (string, error) {
	v, ok := lookup(attrs, name)
	switch {
	case required && (!ok || v == ""):
		return "", &AttrError{Element: el, Attr: name, Missing: true}
	case len(v) > MaxIDLen:
		return "", &AttrError{Element: el, Attr: name, Value: trunc(v)}
	}
	return v, nil
}

// skip reads r to the end of the current element.
func skip(r xml.TokenReader) error {
	depth := 1
	for depth > 0 {
		// A token reader may return the last token together with io.EOF.
		tok, err := r.Token()
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
		if err != nil && depth > 0 {
			return eof(err)
		}
	}
	return nil
}

func eof(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: element ends early", ErrMalformed)
	}
	return err
}

// failedChildren reads the content of <failed/>: the first stanza error
// condition and the text, both bounded.
func failedChildren(r xml.TokenReader) (cond, text string, err error) {
	depth := 1
	inText := false
	for depth > 0 {
		tok, err := r.Token()
		if err != nil && tok == nil {
			return "", "", eof(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Space == nsStanzas {
				if t.Name.Local == "text" {
					inText = true
				} else if cond == "" {
					cond = trunc(t.Name.Local)
				}
			}
		case xml.EndElement:
			depth--
			inText = false
		case xml.CharData:
			if inText && depth == 2 && len(text) < maxText {
				n := min(len(t), maxText-len(text))
				text += string(t[:n])
			}
		}
		if err != nil && depth > 0 {
			return "", "", eof(err)
		}
	}
	return cond, text, nil
}
