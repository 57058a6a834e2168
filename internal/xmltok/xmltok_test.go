package xmltok_test

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/psakit/psakit/internal/xmltok"
)

// childrenOf reads the start element of doc, then calls Children on the
// rest with a child func that records each child's name and text.
func childrenOf(t *testing.T, r xml.TokenReader) ([]string, error) {
	t.Helper()
	if _, err := r.Token(); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := xmltok.Children(r, func(start xml.StartElement) error {
		text, _, err := xmltok.ReadText(r, 64)
		got = append(got, start.Name.Local+"="+text)
		return err
	})
	return got, err
}

func TestChildren(t *testing.T) {
	const doc = `<p>text<a>1</a> <b><deep>x</deep>2</b><c/></p><after/>`
	d := xml.NewDecoder(strings.NewReader(doc))
	got, err := childrenOf(t, d)
	if err != nil || strings.Join(got, " ") != "a=1 b=2 c=" {
		t.Fatalf("got %q, %v", got, err)
	}
	// It stops at the element's end: the next token is the next element.
	if tok, err := d.Token(); err != nil || tok.(xml.StartElement).Name.Local != "after" {
		t.Fatalf("after Children: %v, %v", tok, err)
	}
}

func TestChildrenErrors(t *testing.T) {
	t.Run("child", func(t *testing.T) {
		errChild := errors.New("child")
		r := xml.NewDecoder(strings.NewReader(`<p><a/><b/></p>`))
		_, _ = r.Token()
		calls := 0
		err := xmltok.Children(r, func(xml.StartElement) error {
			calls++
			return errChild
		})
		if !errors.Is(err, errChild) || calls != 1 {
			t.Fatalf("got %v after %d calls, want the child's error after 1", err, calls)
		}
	})
	t.Run("cut", func(t *testing.T) {
		_, err := childrenOf(t, xmltok.NewReplayer(tokens(`<p><a>1</a>`)))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("cut inside a child", func(t *testing.T) {
		_, err := childrenOf(t, xmltok.NewReplayer(tokens(`<p><a>1`)))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	})
	// xml.TokenReader allows a reader to return its last token together with
	// the error that follows it.
	t.Run("end element with io.EOF", func(t *testing.T) {
		got, err := childrenOf(t, &eofWithLast{toks: tokens(`<p><a>1</a></p>`)})
		if err != nil || strings.Join(got, " ") != "a=1" {
			t.Fatalf("got %q, %v; want the element, complete", got, err)
		}
	})
	t.Run("text with io.EOF", func(t *testing.T) {
		_, err := childrenOf(t, &eofWithLast{toks: tokens(`<p><a>1</a>text`)})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	})
}

// tokens returns the tokens of doc, up to where it is cut short.
func tokens(doc string) []xml.Token {
	d := xml.NewDecoder(strings.NewReader(doc))
	var toks []xml.Token
	for {
		tok, err := d.RawToken()
		if err != nil {
			return toks
		}
		toks = append(toks, xml.CopyToken(tok))
	}
}

// eofWithLast returns its last token together with io.EOF.
type eofWithLast struct{ toks []xml.Token }

func (r *eofWithLast) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	tok := r.toks[0]
	r.toks = r.toks[1:]
	if len(r.toks) == 0 {
		return tok, io.EOF
	}
	return tok, nil
}
