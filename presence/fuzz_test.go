package presence_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// FuzzDecode checks that no input makes Decode panic or return values over
// the documented limits.
func FuzzDecode(f *testing.F) {
	f.Add(prosodyOccupant)
	f.Add(`<presence type="error"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">t</text></error></presence>`)
	f.Add(`<presence type="unavailable"><x xmlns="http://jabber.org/protocol/muc#user"><item role="none"/><status code="307"/><destroy jid="r@m.example"><reason>r</reason></destroy></x></presence>`)
	f.Add(`<presence><priority>1</priority><show>xa</show><state-annotation xmlns="urn:xmpp:psa" from="a.example"/></presence>`)
	f.Fuzz(func(t *testing.T, in string) {
		p, err := presence.Decode(xml.NewDecoder(strings.NewReader(in)))
		if err != nil {
			return
		}
		if len(p.Status) > presence.MaxStatuses || len(p.Problems) > 8 {
			t.Fatalf("%d statuses, %d problems", len(p.Status), len(p.Problems))
		}
		if len(p.Annotations)+len(p.Malformed) > presence.MaxAnnotations ||
			(p.DroppedAnnotations > 0 && len(p.Annotations)+len(p.Malformed) != presence.MaxAnnotations) {
			t.Fatalf("%d annotations, %d malformed, %d dropped", len(p.Annotations), len(p.Malformed), p.DroppedAnnotations)
		}
		for _, e := range p.Malformed {
			if !errors.Is(e, psa.ErrMalformed) {
				t.Fatalf("Malformed holds %v", e)
			}
		}
		for _, s := range p.Status {
			if len(s.Value) > presence.MaxStatusBytes || !utf8.ValidString(s.Value) {
				t.Fatalf("status of %d bytes, valid %v", len(s.Value), utf8.ValidString(s.Value))
			}
		}
		for _, v := range []string{p.Caps.Hash, p.Caps.Node, p.Caps.Ver, p.OccupantID} {
			if len(v) > presence.MaxAttrBytes {
				t.Fatalf("attribute of %d bytes", len(v))
			}
		}
		if p.MUC != nil && len(p.MUC.Status) > presence.MaxMUCStatusCodes {
			t.Fatalf("%d MUC status codes", len(p.MUC.Status))
		}
		for _, a := range p.Annotations {
			if !a.From.Equal(a.From.Domain()) || len(a.Descriptions) > psa.MaxDescriptions {
				t.Fatalf("annotation over limits: %+v", a)
			}
		}
	})
}
