package sm

import "bytes"

// A Scanner finds the top-level elements of an XMPP stream (the children of
// <stream:stream>) in the bytes of the stream as they are read or written,
// without decoding them: it follows tags, quoted attribute values,
// comments, CDATA sections and processing instructions, enough to know
// where each top-level element starts and ends. A start tag named stream
// (any prefix) between top-level elements opens a new stream, as after a
// stream restart; inside an element it is an element like any other. It
// holds a bounded amount of memory whatever it is fed; on bytes that are
// not XML it finds nonsense, never panics (the session's XML decoder
// rejects such a stream anyway).
//
// The zero Scanner is ready; Capture makes it keep the bytes of elements
// up to that size. A Scanner is not safe for concurrent use.
type Scanner struct {
	// Capture is the size up to which the bytes of each top-level element
	// are kept and passed to the callback; 0 keeps none.
	Capture int

	state   scanState
	depth   int // 0 outside a stream, 1 between top-level elements
	quote   byte
	prev    [2]byte // the last bytes of a comment, CDATA or PI, to find its end
	slash   bool    // the last byte of a tag before '>' was '/'
	end     bool    // the tag being read is an end tag
	name    []byte  // the tag's name, at most maxName bytes
	topName []byte  // the name of the open top-level element
	buf     []byte  // the bytes of the open top-level element, when capturing
	over    bool    // the open element is larger than Capture
	attrs   []byte  // the start tag of the open top-level element, at most maxTag bytes
	inTop   bool    // in the start tag of a top-level element
}

// A Top is a top-level element that has just ended.
type Top struct {
	Name []byte // its name as written, prefix included (at most 64 bytes)
	// Tag is the text of its start tag, from '<' to '>' (at most 2560
	// bytes; empty when longer).
	Tag []byte
	// Raw is the whole element when the Scanner captures and it is at most
	// Capture bytes long; Truncated says that it was longer.
	Raw       []byte
	Truncated bool
}

const (
	maxName = 64
	maxTag  = 2*MaxIDLen + 512 // room for <enabled id location/>
)

type scanState uint8

const (
	sText    scanState = iota
	sLt                // after '<'
	sName              // in a tag name
	sTag               // in a tag after its name
	sQuote             // in a quoted attribute value
	sBang              // after "<!"
	sComment           // in <!-- -->
	sCDATA             // in <![CDATA[ ]]>
	sDecl              // in <!DOCTYPE ...> and the like
	sPI                // in <? ?>
)

// Reset forgets everything, as for a new connection.
func (sc *Scanner) Reset() { *sc = Scanner{Capture: sc.Capture} }

// Feed scans p, calling f for every top-level element that ends in it. The
// slices in Top are valid only during the call.
func (sc *Scanner) Feed(p []byte, f func(Top)) {
	for i := 0; i < len(p); i++ {
		// Fast paths: text and attribute values are skipped in bulk.
		switch sc.state {
		case sText:
			j := bytes.IndexByte(p[i:], '<')
			if j < 0 {
				sc.keepText(p[i:])
				return
			}
			sc.keepText(p[i : i+j])
			i += j
		case sQuote:
			j := bytes.IndexByte(p[i:], sc.quote)
			if j < 0 {
				sc.keepBytes(p[i:])
				return
			}
			sc.keepBytes(p[i : i+j])
			i += j
		}
		c := p[i]
		if sc.depth >= 1 && (sc.depth > 1 || sc.state != sText || c == '<') {
			sc.keep(c)
		}
		switch sc.state {
		case sText:
			if c == '<' {
				sc.state = sLt
			}
		case sLt:
			sc.slash, sc.end, sc.name = false, false, sc.name[:0]
			switch c {
			case '/':
				sc.end = true
				sc.state = sName
			case '?':
				sc.state, sc.prev = sPI, [2]byte{}
			case '!':
				sc.state, sc.prev = sBang, [2]byte{}
			default:
				sc.state = sName
				sc.addName(c)
			}
		case sName:
			switch {
			case c == '>':
				sc.tagEnd(f)
			case c == '/':
				sc.slash = true
				sc.state = sTag
			case isSpace(c):
				sc.state = sTag
			default:
				sc.addName(c)
			}
		case sTag:
			switch {
			case c == '>':
				sc.tagEnd(f)
			case c == '"' || c == '\'':
				sc.quote, sc.state, sc.slash = c, sQuote, false
			case c == '/':
				sc.slash = true
			case !isSpace(c):
				sc.slash = false
			}
		case sQuote:
			if c == sc.quote {
				sc.state = sTag
			}
		case sBang:
			switch {
			case c == '-' && sc.prev[1] == '-':
				sc.state, sc.prev = sComment, [2]byte{}
			case c == '-':
				sc.prev[1] = '-'
			case c == '[':
				sc.state, sc.prev = sCDATA, [2]byte{}
			case c == '>':
				sc.state = sText
				sc.dropIfEmpty()
			default:
				sc.state = sDecl
			}
		case sComment:
			if c == '>' && sc.prev == [2]byte{'-', '-'} {
				sc.state = sText
				sc.dropIfEmpty()
			}
			sc.prev = [2]byte{sc.prev[1], c}
		case sCDATA:
			// "<![CDATA[" is recognised by its '['; the inner '[' after
			// CDATA belongs to the marker, the section ends at "]]>".
			if c == '>' && sc.prev == [2]byte{']', ']'} {
				sc.state = sText
			}
			sc.prev = [2]byte{sc.prev[1], c}
		case sDecl:
			if c == '>' {
				sc.state = sText
				sc.dropIfEmpty()
			}
		case sPI:
			if c == '>' && sc.prev[1] == '?' {
				sc.state = sText
				sc.dropIfEmpty()
			}
			sc.prev = [2]byte{sc.prev[1], c}
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (sc *Scanner) addName(c byte) {
	if len(sc.name) < maxName {
		sc.name = append(sc.name, c)
	}
}

// keepText records text read outside tags: part of the open top-level
// element when inside one.
func (sc *Scanner) keepText(b []byte) {
	if sc.depth > 1 {
		sc.keepBytes(b)
	}
}

// keepBytes records b, read inside the open top-level element.
func (sc *Scanner) keepBytes(b []byte) {
	if len(b) == 0 || sc.depth < 1 {
		return
	}
	if sc.inTop && len(sc.attrs) < maxTag+1 {
		sc.attrs = append(sc.attrs, b[:min(len(b), maxTag+1-len(sc.attrs))]...)
	}
	if sc.Capture <= 0 || sc.over {
		return
	}
	if len(sc.buf)+len(b) > sc.Capture {
		sc.over, sc.buf = true, sc.buf[:0]
		return
	}
	sc.buf = append(sc.buf, b...)
}

// keep records c as part of the open top-level element.
func (sc *Scanner) keep(c byte) {
	if sc.depth == 1 && sc.state == sText && c == '<' {
		// A new top-level tag (or a comment or PI between elements, dropped
		// when it ends).
		sc.buf, sc.over, sc.attrs, sc.inTop = sc.buf[:0], false, sc.attrs[:0], true
	}
	if sc.inTop && len(sc.attrs) < maxTag+1 {
		sc.attrs = append(sc.attrs, c)
	}
	if sc.Capture <= 0 || sc.over {
		return
	}
	if len(sc.buf) >= sc.Capture {
		sc.over, sc.buf = true, sc.buf[:0]
		return
	}
	sc.buf = append(sc.buf, c)
}

// dropIfEmpty forgets a comment, PI or declaration between top-level
// elements.
func (sc *Scanner) dropIfEmpty() {
	if sc.depth == 1 {
		sc.buf, sc.attrs, sc.inTop = sc.buf[:0], sc.attrs[:0], false
	}
}

func localName(name []byte) []byte {
	// As encoding/xml (and so mellium) reads it: a prefix only when one
	// colon has a name on both sides; ":message" is a local name of its
	// own, no message.
	if i := bytes.IndexByte(name, ':'); i > 0 && i < len(name)-1 && bytes.IndexByte(name[i+1:], ':') < 0 {
		return name[i+1:]
	}
	return name
}

// tagEnd handles the '>' that ends a start, end or empty tag.
func (sc *Scanner) tagEnd(f func(Top)) {
	sc.state = sText
	// Only between top-level elements: a payload element named stream (a
	// contact chooses those) is no stream header or end.
	isStream := sc.depth <= 1 && string(localName(sc.name)) == "stream"
	switch {
	case sc.end && isStream:
		sc.depth = 0
		sc.inTop = false
	case sc.end:
		if sc.depth > 1 {
			sc.depth--
			if sc.depth == 1 {
				sc.emit(f)
			}
		}
	case isStream:
		// A stream header, the first or after a restart.
		sc.depth = 1
		sc.buf, sc.attrs, sc.inTop = sc.buf[:0], sc.attrs[:0], false
	case sc.depth == 0:
		// Before any stream header: not XMPP, ignored.
	case sc.depth == 1:
		sc.topName = append(sc.topName[:0], sc.name...)
		sc.inTop = false
		if sc.slash {
			sc.emit(f)
		} else {
			sc.depth++
		}
	default:
		if !sc.slash {
			sc.depth++
		}
	}
}

func (sc *Scanner) emit(f func(Top)) {
	t := Top{Name: sc.topName}
	if len(sc.attrs) <= maxTag {
		t.Tag = sc.attrs
	}
	if sc.Capture > 0 {
		if sc.over {
			t.Truncated = true
		} else {
			t.Raw = sc.buf
		}
	}
	sc.buf, sc.attrs, sc.over, sc.inTop = sc.buf[:0], sc.attrs[:0], false, false
	if f != nil {
		f(t)
	}
}
