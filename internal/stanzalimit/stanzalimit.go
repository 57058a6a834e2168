// Package stanzalimit bounds the size and the nesting depth of the stanzas
// read from an XMPP stream, on the bytes, before an XML decoder builds a
// token from them: a decoder buffers a whole text or attribute value, and
// keeps a stack entry per open element, so one 64 MiB text or five million
// nested elements cost hundreds of megabytes before any code sees them.
//
// A Scanner follows the stream's structure just enough to find where each
// top-level element (a stanza, or a stream feature or negotiation element)
// starts and ends: tags, quoted attribute values, comments, CDATA sections
// and processing instructions. It does not validate: what it lets through,
// the decoder still checks.
package stanzalimit

import (
	"errors"
	"fmt"
)

// ErrLimit is wrapped by the errors Scan returns.
var ErrLimit = errors.New("stanza over the size or depth limit")

// Scanner checks the bytes of a stream as they are read. Its zero value has
// no limits; set MaxSize and MaxDepth.
type Scanner struct {
	// MaxSize is the most bytes from the start of a top-level element to its
	// end, and of the text between two of them; 0 is no limit.
	MaxSize int
	// MaxDepth is the most elements nested in a top-level element, itself
	// included; 0 is no limit.
	MaxDepth int

	n     int   // bytes since the last boundary
	depth int   // open elements, the stream header included
	st    state // where in the markup we are
	quote byte  // the quote of the attribute value we are in, or 0
	end   bool  // the tag is an end tag
	slash bool  // the last byte of the tag outside quotes was '/'
	name  [16]byte
	nlen  int  // bytes of name, up to len(name)
	named bool // the tag's name is complete
	match int  // bytes of the terminator of a comment, CDATA or PI seen
	err   error
}

type state uint8

const (
	stText     state = iota
	stLT             // after '<'
	stTag            // in a start or end tag
	stBang           // after "<!"
	stBangDash       // after "<!-"
	stComment        // in a comment, up to "-->"
	stCDATA          // in a CDATA section, up to "]]>"
	stPI             // in a processing instruction, up to "?>"
)

// Scan checks the next bytes of the stream. Once it has returned an error,
// it returns it again.
func (s *Scanner) Scan(p []byte) error {
	if s.err != nil {
		return s.err
	}
	for _, c := range p {
		s.n++
		switch s.st {
		case stText:
			if c == '<' {
				s.st = stLT
				if s.depth == 1 {
					// A top-level element starts; the text before it was within
					// the limit.
					s.n = 1
				}
			}
		case stLT:
			switch c {
			case '/':
				s.st, s.end = stTag, true
			case '!':
				s.st = stBang
			case '?':
				s.st, s.match = stPI, 0
			default:
				s.st, s.end = stTag, false
				s.nlen, s.named = 0, false
				s.addName(c)
			}
			s.slash = false
		case stTag:
			s.tag(c)
		case stBang:
			switch c {
			case '-':
				s.st = stBangDash
			case '[':
				s.st, s.match = stCDATA, 0
			default:
				// A DTD or another directive, which XMPP forbids (RFC 6120
				// §11.1). Its nesting rules differ enough from the scanner's
				// that following it could let a stanza past the limits.
				s.err = fmt.Errorf("%w: a directive (<!%c)", ErrLimit, c)
				return s.err
			}
		case stBangDash:
			if c != '-' {
				// Not a comment; the decoder refuses it.
				s.err = fmt.Errorf("%w: malformed comment", ErrLimit)
				return s.err
			}
			s.st, s.match = stComment, 0
		case stComment:
			s.st, s.match = terminate(s.st, s.match, c, '-')
		case stCDATA:
			s.st, s.match = terminate(s.st, s.match, c, ']')
		case stPI:
			switch {
			case c == '?':
				s.match = 1
			case c == '>' && s.match == 1:
				s.st = stText
			default:
				s.match = 0
			}
		}
		if s.MaxSize > 0 && s.n > s.MaxSize {
			s.err = fmt.Errorf("%w: more than %d bytes in one stanza", ErrLimit, s.MaxSize)
			return s.err
		}
		if s.MaxDepth > 0 && s.depth > s.MaxDepth+1 {
			s.err = fmt.Errorf("%w: elements nested more than %d deep", ErrLimit, s.MaxDepth)
			return s.err
		}
	}
	return nil
}

// terminate advances through the terminator of a comment ("-->") or a
// CDATA section ("]]>"), whose first two bytes are x: a run of x followed by
// '>' ends it.
func terminate(st state, match int, c, x byte) (state, int) {
	switch {
	case c == x:
		return st, min(match+1, 2)
	case c == '>' && match == 2:
		return stText, 0
	}
	return st, 0
}

func (s *Scanner) addName(c byte) {
	if s.nlen < len(s.name) {
		s.name[s.nlen] = c
	}
	s.nlen++
}

// tag handles byte c of a tag's name or attributes.
func (s *Scanner) tag(c byte) {
	if s.quote != 0 {
		if c == s.quote {
			s.quote = 0
		}
		return
	}
	switch c {
	case '"', '\'':
		s.quote, s.named, s.slash = c, true, false
	case ' ', '\t', '\r', '\n':
		s.named = true
	case '/':
		s.named, s.slash = true, true
	case '>':
		s.st = stText
		s.closeTag()
	default:
		if !s.named && !s.end {
			s.addName(c)
		}
		s.slash = false
	}
}

// closeTag applies a complete tag to the depth.
func (s *Scanner) closeTag() {
	switch {
	case s.end:
		s.depth = max(s.depth-1, 0)
		if s.depth <= 1 {
			s.n = 0 // a top-level element, or the stream, ended
		}
	case s.depth <= 1 && s.isStream():
		// A stream header, the first or a restart after TLS or SASL: what
		// follows is top-level.
		s.depth, s.n = 1, 0
	case s.slash:
		if s.depth <= 1 {
			s.n = 0
		}
	default:
		s.depth++
	}
}

// isStream reports whether the tag's name is a stream header's: "stream"
// with any prefix.
func (s *Scanner) isStream() bool {
	if s.nlen > len(s.name) {
		return false
	}
	name := string(s.name[:s.nlen])
	return name == "stream" || (len(name) > 7 && name[len(name)-7:] == ":stream")
}
