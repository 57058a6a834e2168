package rawclient

import (
	"encoding/xml"
	"io"
	"strings"
)

const nsXML = "http://www.w3.org/XML/1998/namespace"

// Element is a parsed XML element: a stanza or a stream-level element, or one
// of their children.
type Element struct {
	// Name is the element's namespace and local name.
	Name xml.Name
	// Attrs are the attributes as parsed (namespace declarations included).
	Attrs []xml.Attr
	// Children are the child elements, in order.
	Children []*Element
	// Chars is the character data directly inside the element, concatenated.
	Chars string
}

// Text returns the character data directly inside e, or "" for a nil e.
func (e *Element) Text() string {
	if e == nil {
		return ""
	}
	return e.Chars
}

// Attr returns the value of the attribute with the local name local (any
// namespace, so "lang" finds xml:lang), or "".
func (e *Element) Attr(local string) string {
	if e == nil {
		return ""
	}
	for _, a := range e.Attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// HasAttr reports whether the attribute with the local name local is present.
func (e *Element) HasAttr(local string) bool {
	if e == nil {
		return false
	}
	for _, a := range e.Attrs {
		if a.Name.Local == local {
			return true
		}
	}
	return false
}

// Is reports whether e is named local in namespace space ("" = any).
func (e *Element) Is(space, local string) bool {
	return e != nil && e.Name.Local == local && (space == "" || e.Name.Space == space)
}

// Child returns the first child named local in namespace space ("" = any
// namespace), or nil.
func (e *Element) Child(space, local string) *Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Children {
		if c.Is(space, local) {
			return c
		}
	}
	return nil
}

// ChildrenNamed returns the children named local in namespace space ("" =
// any namespace).
func (e *Element) ChildrenNamed(space, local string) []*Element {
	if e == nil {
		return nil
	}
	var out []*Element
	for _, c := range e.Children {
		if c.Is(space, local) {
			out = append(out, c)
		}
	}
	return out
}

// String returns e as XML.
func (e *Element) String() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	e.write(&b, "")
	return b.String()
}

func (e *Element) write(b *strings.Builder, parentNS string) {
	b.WriteByte('<')
	b.WriteString(e.Name.Local)
	if e.Name.Space != parentNS {
		b.WriteString(` xmlns="`)
		_ = xml.EscapeText(b, []byte(e.Name.Space))
		b.WriteByte('"')
	}
	for _, a := range e.Attrs {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		b.WriteByte(' ')
		if a.Name.Space == nsXML || a.Name.Space == "xml" {
			b.WriteString("xml:")
		}
		b.WriteString(a.Name.Local)
		b.WriteString(`="`)
		_ = xml.EscapeText(b, []byte(a.Value))
		b.WriteByte('"')
	}
	if len(e.Children) == 0 && e.Chars == "" {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	_ = xml.EscapeText(b, []byte(e.Chars))
	for _, c := range e.Children {
		c.write(b, e.Name.Space)
	}
	b.WriteString("</")
	b.WriteString(e.Name.Local)
	b.WriteByte('>')
}

// errStreamEnd is returned by readElement at </stream:stream>.
var errStreamEnd = io.EOF

// readElement reads the next complete element at the current depth.
func readElement(dec *xml.Decoder) (*Element, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return readTree(dec, t)
		case xml.EndElement:
			return nil, errStreamEnd
		}
	}
}

func readTree(dec *xml.Decoder, start xml.StartElement) (*Element, error) {
	e := &Element{Name: start.Name, Attrs: append([]xml.Attr(nil), start.Attr...)}
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			c, err := readTree(dec, t)
			if err != nil {
				return nil, err
			}
			e.Children = append(e.Children, c)
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			e.Chars = text.String()
			return e, nil
		}
	}
}

// readStreamStart reads up to and including the <stream:stream> start tag.
func readStreamStart(dec *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if s, ok := tok.(xml.StartElement); ok {
			return s.Copy(), nil
		}
	}
}

// Escape escapes s for use in XML text or attribute values.
func Escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
