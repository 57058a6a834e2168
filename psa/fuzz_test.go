package psa_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/psakit/psakit/psa"
)

// FuzzFind feeds arbitrary bytes to Find and checks that it never panics,
// that everything it returns respects the documented limits and invariants,
// and that each annotation survives an encode/decode round trip.
func FuzzFind(f *testing.F) {
	for _, seed := range []string{
		`<presence from='juliet@capulet.lit/orchard'><status>Available</status><state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/><description>The capulet.lit server is no longer available</description></state-annotation></presence>`,
		`<presence><state-annotation xmlns="urn:xmpp:psa" from="montague.lit"/></presence>`,
		`<presence xml:lang="de"><state-annotation xmlns="urn:xmpp:psa" from="chats.shakespeare.lit" xml:lang="en"><connection-paused/><description xml:lang="fr">x</description><description>y</description></state-annotation></presence>`,
		`<presence><state-annotation xmlns="urn:xmpp:psa" from="a@b/c"><a/><b/></state-annotation><state-annotation xmlns="urn:xmpp:psa"/></presence>`,
		`<presence><p:state-annotation xmlns:p="urn:xmpp:psa" from="x.example"><p:odd><deep><deeper/></deep></p:odd></p:state-annotation></presence>`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		found, err := psa.Find(xml.NewDecoder(strings.NewReader(in)))
		if err != nil && len(found) == 0 {
			return
		}
		for _, a := range found {
			checkInvariants(t, a)
			out, merr := xml.Marshal(a)
			if merr != nil {
				t.Fatalf("re-encoding %+v: %v", a, merr)
			}
			back, derr := psa.Find(xml.NewDecoder(strings.NewReader("<p>" + string(out) + "</p>")))
			if derr != nil || len(back) != 1 {
				t.Fatalf("decoding re-encoded %s: %+v, %v", out, back, derr)
			}
			b := back[0]
			if !b.From.Equal(a.From) || b.Condition != a.Condition || len(b.Descriptions) != len(a.Descriptions) {
				t.Fatalf("round trip changed %+v into %+v", a, b)
			}
			for i := range a.Descriptions {
				if a.Descriptions[i] != b.Descriptions[i] {
					t.Fatalf("round trip changed description %d: %+v into %+v", i, a.Descriptions[i], b.Descriptions[i])
				}
			}
		}
		if err != nil && !errors.Is(err, psa.ErrMalformed) {
			// A stream error after some good annotations is fine; it must not be
			// reported as something else.
			return
		}
	})
}

func checkInvariants(t *testing.T, a psa.Annotation) {
	t.Helper()
	if !a.From.Equal(a.From.Domain()) || a.From.String() == "" {
		t.Fatalf("annotator %q is not a bare domain", a.From)
	}
	if len(a.Condition) > psa.MaxConditionLen {
		t.Fatalf("condition of %d bytes", len(a.Condition))
	}
	if len(a.Descriptions) > psa.MaxDescriptions {
		t.Fatalf("%d descriptions", len(a.Descriptions))
	}
	for _, d := range a.Descriptions {
		if len(d.Text) > psa.MaxDescriptionBytes || !utf8.ValidString(d.Text) || len(d.Lang) > psa.MaxLangLen {
			t.Fatalf("description over limits: %d bytes, valid %v, lang %d bytes", len(d.Text), utf8.ValidString(d.Text), len(d.Lang))
		}
	}
}
