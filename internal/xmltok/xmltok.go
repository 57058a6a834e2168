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

// Children calls child for each child element of the element whose start
// was just read from r, in document order, and returns at that element's end
// element, which it reads. child gets the child's start element and must
// read the child up to and including its end element (Skip, ReadText, or a
// decoder of its own). Character data between children is ignored. Children
// returns the first error of child, or of r (io.EOF turned into
// io.ErrUnexpectedEOF: the element is not complete).
func Children(r xml.TokenReader, child func(xml.StartElement) error) error {
	for {
		tok, err := r.Token()
		switch t := tok.(type) {
		case xml.StartElement:
			if cerr := child(t); cerr != nil {
				return cerr
			}
		case xml.EndElement:
			return nil
		}
		// An error that came with a token (allowed by xml.TokenReader) ends the
		// element early as well.
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
	// Most texts fit the array, which stays on the stack: one allocation,
	// the string.
	var buf [256]byte
	b, cut, err := AppendText(buf[:0], r, max)
	if err != nil {
		return "", false, err
	}
	return string(b), cut, nil
}

// AppendText reads the character data of an element whose start was just
// read, up to and including its end element, and appends it to dst: at most
// max bytes, cut at a rune boundary (cut reports it); text inside child
// elements is ignored. A caller that only compares or parses a short value
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

// Replayer replays recorded tokens, as read with xmlstream.ReadAll: to
// decode a stanza twice, or in tests and benchmarks without a stream. Its
// zero value replays nothing.
type Replayer struct {
	toks []xml.Token
	next int
}

// NewReplayer returns a Replayer of toks.
func NewReplayer(toks []xml.Token) *Replayer { return &Replayer{toks: toks} }

// Reset makes r replay toks from their start.
func (r *Replayer) Reset(toks []xml.Token) { r.toks, r.next = toks, 0 }

// Token implements xml.TokenReader.
func (r *Replayer) Token() (xml.Token, error) {
	if r.next >= len(r.toks) {
		return nil, io.EOF
	}
	r.next++
	return r.toks[r.next-1], nil
}
