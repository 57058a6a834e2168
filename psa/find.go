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
	err := xmltok.Children(r, func(t xml.StartElement) error {
		if t.Name.Space != NS || t.Name.Local != elementName {
			return xmltok.Skip(r)
		}
		a, invalid, err := (*Decoder)(nil).decodeElement(r, t, lang)
		switch {
		case err != nil:
			return err
		case invalid != nil:
			errs = append(errs, invalid)
		default:
			found = append(found, a)
		}
		return nil
	})
	return found, errors.Join(append(errs, err)...)
}
