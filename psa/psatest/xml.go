package psatest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"mellium.im/xmpp/stanza"
)

// Namespaces the server reads and writes.
const (
	nsClient      = stanza.NSClient
	nsXML         = "http://www.w3.org/XML/1998/namespace"
	nsStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsStreams     = "urn:ietf:params:xml:ns:xmpp-streams"
	nsBind        = "urn:ietf:params:xml:ns:xmpp-bind"
	nsRoster      = "jabber:iq:roster"
	nsRosterVer   = "urn:xmpp:features:rosterver"
	nsPing        = "urn:xmpp:ping"
	nsDiscoInfo   = "http://jabber.org/protocol/disco#info"
	nsDiscoItems  = "http://jabber.org/protocol/disco#items"
	nsDelay       = "urn:xmpp:delay"
	nsMUC         = "http://jabber.org/protocol/muc"
	nsMUCUser     = "http://jabber.org/protocol/muc#user"
	nsMUCOwner    = "http://jabber.org/protocol/muc#owner"
	maxStanzaToks = 1 << 20 // tokens kept per received stanza; more ends the session
)

// errTooLarge ends a session whose client sends a stanza of more than
// maxStanzaToks tokens.
var errTooLarge = errors.New("psatest: stanza too large")

// readElement reads the rest of the element whose start was just read from r
// and returns all its tokens, start and end included, copied so that they
// stay valid after further reads.
func readElement(r xml.TokenReader, start xml.StartElement) ([]xml.Token, error) {
	toks := []xml.Token{start.Copy()}
	depth := 1
	for depth > 0 {
		tok, err := r.Token()
		if tok != nil {
			switch tok.(type) {
			case xml.StartElement:
				depth++
			case xml.EndElement:
				depth--
			case xml.CharData:
			default:
				// Comments, processing instructions and directives are not allowed
				// in XMPP streams; mellium's reader already refuses them.
				continue
			}
			toks = append(toks, xml.CopyToken(tok))
			if len(toks) > maxStanzaToks {
				return nil, errTooLarge
			}
			if depth == 0 {
				return toks, nil
			}
		}
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return toks, nil
}

// parseElement parses raw, which must hold exactly one XML element, into
// tokens. Elements without a namespace inherit jabber:client when written.
func parseElement(raw string) ([]xml.Token, error) {
	d := xml.NewDecoder(strings.NewReader(raw))
	var toks []xml.Token
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("psatest: invalid XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if toks != nil {
				return nil, errors.New("psatest: invalid XML: more than one element")
			}
			toks, err = readElement(d, t)
			if err != nil {
				return nil, fmt.Errorf("psatest: invalid XML: %w", err)
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, errors.New("psatest: invalid XML: text outside the element")
			}
		}
	}
	if toks == nil {
		return nil, errors.New("psatest: invalid XML: no element")
	}
	return toks, nil
}

// parseChildren parses raw, a sequence of XML elements (and whitespace),
// into tokens.
func parseChildren(raw string) ([]xml.Token, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	toks, err := parseElement("<x>" + raw + "</x>")
	if err != nil {
		return nil, err
	}
	return toks[1 : len(toks)-1], nil
}

// collect reads every token of r.
func collect(r xml.TokenReader) ([]xml.Token, error) {
	var toks []xml.Token
	for {
		tok, err := r.Token()
		if tok != nil {
			toks = append(toks, xml.CopyToken(tok))
		}
		if err == io.EOF {
			return toks, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// encode writes toks as XML text. An element whose namespace differs from
// its parent's (or from parentNS for the outermost ones) gets an xmlns
// attribute; an element without a namespace inherits its parent's. The
// namespace declarations of the tokens themselves are dropped and written
// anew, so tokens from a namespace-resolving decoder come out clean.
func encode(toks []xml.Token, parentNS string) []byte {
	var b bytes.Buffer
	stack := []string{parentNS}
	for _, tok := range toks {
		switch t := tok.(type) {
		case xml.StartElement:
			cur := stack[len(stack)-1]
			ns := t.Name.Space
			if ns == "" {
				ns = cur
			}
			b.WriteByte('<')
			b.WriteString(t.Name.Local)
			if ns != cur {
				writeAttr(&b, "xmlns", ns)
			}
			prefixes := 0
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns", a.Name.Space == "xmlns":
					// A namespace declaration: written anew above.
				case a.Name.Space == "":
					writeAttr(&b, a.Name.Local, a.Value)
				case a.Name.Space == nsXML || a.Name.Space == "xml":
					writeAttr(&b, "xml:"+a.Name.Local, a.Value)
				default:
					prefix := "ns" + strconv.Itoa(prefixes)
					prefixes++
					writeAttr(&b, "xmlns:"+prefix, a.Name.Space)
					writeAttr(&b, prefix+":"+a.Name.Local, a.Value)
				}
			}
			b.WriteByte('>')
			stack = append(stack, ns)
		case xml.EndElement:
			b.WriteString("</")
			b.WriteString(t.Name.Local)
			b.WriteByte('>')
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			_ = xml.EscapeText(&b, t)
		}
	}
	return b.Bytes()
}

func writeAttr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	_ = xml.EscapeText(b, []byte(value))
	b.WriteByte('"')
}

// attrValue returns the value of the unqualified attribute local.
func attrValue(attrs []xml.Attr, local string) string {
	for _, a := range attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// withAttrs returns a copy of start with the unqualified attributes in set
// replaced, added, or removed when their value is "".
func withAttrs(start xml.StartElement, set ...xml.Attr) xml.StartElement {
	out := xml.StartElement{Name: start.Name}
	for _, a := range start.Attr {
		replaced := false
		for _, s := range set {
			if a.Name.Space == "" && a.Name.Local == s.Name.Local {
				replaced = true
				break
			}
		}
		if !replaced {
			out.Attr = append(out.Attr, a)
		}
	}
	for _, s := range set {
		if s.Value != "" {
			out.Attr = append(out.Attr, s)
		}
	}
	return out
}

// attr makes an unqualified attribute.
func attr(local, value string) xml.Attr {
	return xml.Attr{Name: xml.Name{Local: local}, Value: value}
}

// el builds the tokens of an element in namespace ns ("" inherits the
// parent's), with attributes whose value is "" left out.
func el(ns, local string, attrs []xml.Attr, children ...[]xml.Token) []xml.Token {
	start := xml.StartElement{Name: xml.Name{Space: ns, Local: local}}
	for _, a := range attrs {
		if a.Value != "" {
			start.Attr = append(start.Attr, a)
		}
	}
	toks := []xml.Token{start}
	for _, c := range children {
		toks = append(toks, c...)
	}
	return append(toks, start.End())
}

// textEl builds <local>text</local> in the parent's namespace.
func textEl(local, text string) []xml.Token {
	return el("", local, nil, []xml.Token{xml.CharData(text)})
}

// childElements calls f for each direct child element of the stanza toks
// (start and end included), with the child's tokens.
func childElements(toks []xml.Token, f func(start xml.StartElement, child []xml.Token)) {
	depth := 0
	begin := 0
	for i, tok := range toks {
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				begin = i
			}
		case xml.EndElement:
			if depth == 2 {
				f(toks[begin].(xml.StartElement), toks[begin:i+1])
			}
			depth--
		}
	}
}

// filterChildren returns toks without the direct children for which drop
// returns true.
func filterChildren(toks []xml.Token, drop func(xml.StartElement) bool) []xml.Token {
	out := make([]xml.Token, 0, len(toks))
	depth := 0
	skipping := false
	for _, tok := range toks {
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && drop(t) {
				skipping = true
			}
		case xml.EndElement:
			depth--
			if skipping {
				if depth == 1 {
					skipping = false
				}
				continue
			}
		}
		if !skipping {
			out = append(out, tok)
		}
	}
	return out
}

// inner returns the tokens of toks between its outermost start and end.
func inner(toks []xml.Token) []xml.Token {
	if len(toks) < 2 {
		return nil
	}
	return toks[1 : len(toks)-1]
}

// errorType is the error type RFC 6120 §8.3.3 and XEP-0045 use with each
// condition.
func errorType(cond stanza.Condition) stanza.ErrorType {
	switch cond {
	case stanza.BadRequest, stanza.JIDMalformed, stanza.NotAcceptable, stanza.PolicyViolation,
		stanza.Redirect, stanza.Gone:
		return stanza.Modify
	case stanza.Forbidden, stanza.NotAuthorized, stanza.RegistrationRequired, stanza.SubscriptionRequired:
		return stanza.Auth
	case stanza.RecipientUnavailable, stanza.RemoteServerTimeout, stanza.ResourceConstraint,
		stanza.UnexpectedRequest:
		return stanza.Wait
	default:
		return stanza.Cancel
	}
}

// errorEl builds a stanza error element with cond and type typ (the one
// errorType gives when typ is "").
func errorEl(cond stanza.Condition, typ stanza.ErrorType, by string) []xml.Token {
	if typ == "" {
		typ = errorType(cond)
	}
	return el("", "error", []xml.Attr{attr("type", string(typ)), attr("by", by)},
		el(nsStanzas, string(cond), nil))
}
