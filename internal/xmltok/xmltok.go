// Package xmltok has the small token-stream helpers psakit's decoders share.
// They keep no state beyond a depth counter and never buffer more than the
// limits their callers give, so hostile input cannot make them hold memory.
package xmltok

import (
	"encoding/xml"
	"io"
	"unicode/utf8"
)

// NSXML is the namespace encoding/xml gives the xml: prefix (as in xml:lang).
const NSXML = "http://www.w3.org/XML/1998/namespace"

// IsLang reports whether name is xml:lang, resolved or not.
func IsLang(name xml.Name) bool {
	return name.Local == "lang" && (name.Space == NSXML || name.Space == "xml")
}

// Lang returns the xml:lang attribute of start, or def when it has none.
func Lang(start xml.StartElement, def string) string {
	for _, at := range start.Attr {
		if IsLang(at.Name) {
			return at.Value
		}
	}
	return def
}

// Attr returns the value of the unqualified attribute local of start.
func Attr(start xml.StartElement, local string) (string, bool) {
	for _, at := range start.Attr {
		if at.Name.Local == local && at.Name.Space == "" {
			return at.Value, true
		}
	}
	return "", false
}

// UnexpectedEOF turns io.EOF, which inside an element means the stream was
// cut short, into io.ErrUnexpectedEOF.
func UnexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Skip reads r up to and including the end of the element whose start was
// just read. Deep or huge content costs no memory here.
func Skip(r xml.TokenReader) error {
	depth := 0
	for {
		tok, err := r.Token()
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth == 0 {
				return nil
			}
			depth--
		}
		if err != nil {
			return UnexpectedEOF(err)
		}
	}
}

// ReadText reads the character data of an element whose start was just read,
// up to and including its end element. Text inside child elements is ignored.
// At most max bytes are kept, cut at a rune boundary; cut reports that
// something was left out.
func ReadText(r xml.TokenReader, max int) (text string, cut bool, err error) {
	var buf []byte
	depth := 0
	for {
		tok, err := r.Token()
		switch t := tok.(type) {
		case xml.CharData:
			if depth > 0 || cut {
				break
			}
			if text == "" && buf == nil && len(t) <= max {
				// The common case, a single run of text: one allocation.
				text = string(t)
				break
			}
			if buf == nil {
				buf = append(buf, text...)
			}
			if room := max - len(buf); len(t) > room {
				buf = append(buf, t[:RuneBoundary(t, room)]...)
				cut = true
				break
			}
			buf = append(buf, t...)
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth == 0 {
				if buf != nil {
					text = string(buf)
				}
				return text, cut, nil
			}
			depth--
		}
		if err != nil {
			return "", false, UnexpectedEOF(err)
		}
	}
}

// AppendText is ReadText appending the text to dst instead of making a
// string of it, so that a caller that only compares or parses a short value
// (a show, a priority) allocates nothing: pass a slice of a local array.
func AppendText(dst []byte, r xml.TokenReader, max int) (text []byte, cut bool, err error) {
	start := len(dst)
	depth := 0
	for {
		tok, err := r.Token()
		switch t := tok.(type) {
		case xml.CharData:
			if depth > 0 || cut {
				break
			}
			if room := max - (len(dst) - start); len(t) > room {
				dst = append(dst, t[:RuneBoundary(t, room)]...)
				cut = true
				break
			}
			dst = append(dst, t...)
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth == 0 {
				return dst, cut, nil
			}
			depth--
		}
		if err != nil {
			return dst[:start], false, UnexpectedEOF(err)
		}
	}
}

// Truncate returns the longest prefix of s of at most max bytes that does not
// end in the middle of a UTF-8 sequence.
func Truncate(s string, max int) string { return s[:RuneBoundary(s, max)] }

// RuneBoundary returns the largest i <= max such that s[:i] does not end in
// the middle of a UTF-8 sequence.
func RuneBoundary[T ~string | ~[]byte](s T, max int) int {
	if len(s) <= max {
		return len(s)
	}
	i := max
	// s[i] is the first byte left out: while it continues a rune that started
	// before it, that rune is cut, so back up to its first byte.
	for i > 0 && max-i < utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}
