package psa

import (
	"encoding/xml"
	"errors"
	"io"

	"github.com/psakit/psakit/internal/xmltok"
)

// Find reads one element from r, normally a presence stanza starting with its
// start token, and returns every state-annotation among its direct children,
// in document order, in one pass over the tokens. Annotations nested deeper
// (inside a forwarded message, say) are not the presence's own and are not
// returned. Descriptions without an xml:lang inherit the stanza's.
//
// Malformed annotations are left out and their errors joined into err
// (errors.Is works on the result); the well-formed ones are still returned.
// If r fails or ends early, err includes that error too.
func Find(r xml.TokenReader) ([]Annotation, error) {
	var start xml.StartElement
	for {
		tok, err := r.Token()
		if s, ok := tok.(xml.StartElement); ok {
			start = s
			break
		}
		if err != nil {
			if err == io.EOF {
				return nil, nil
			}
			return nil, err
		}
	}
	lang := xmltok.Lang(start, "")
	var (
		found []Annotation
		errs  []error
	)
	for {
		tok, err := r.Token()
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == NS && t.Name.Local == elementName {
				a, invalid, rerr := (*Decoder)(nil).decodeElement(r, t, lang)
				switch {
				case rerr != nil:
					return found, errors.Join(append(errs, rerr)...)
				case invalid != nil:
					errs = append(errs, invalid)
				default:
					found = append(found, a)
				}
				continue
			}
			if serr := xmltok.Skip(r); serr != nil {
				return found, errors.Join(append(errs, serr)...)
			}
			continue
		case xml.EndElement:
			return found, errors.Join(errs...)
		}
		if err != nil {
			return found, errors.Join(append(errs, xmltok.UnexpectedEOF(err))...)
		}
	}
}
