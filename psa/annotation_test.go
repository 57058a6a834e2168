package psa_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/language"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

// decodeString decodes the first element of s as an annotation and reports
// whether the decoder consumed it entirely.
func decodeString(t *testing.T, s string) (psa.Annotation, error) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s + "<after/>"))
	var start xml.StartElement
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("no start element in %q: %v", s, err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			start = st
			break
		}
	}
	a, err := psa.DecodeElement(d, start)
	// Whatever the outcome, the decoder must have stopped right after the
	// element so that a caller can go on with the next one.
	tok, terr := d.Token()
	next, ok := tok.(xml.StartElement)
	if terr != nil || !ok || next.Name.Local != "after" {
		t.Fatalf("DecodeElement did not stop at the end of the element: next token %#v, %v", tok, terr)
	}
	return a, err
}

func TestDecodeElement(t *testing.T) {
	montague := jid.MustParse("montague.lit")
	tests := []struct {
		name string
		in   string
		want psa.Annotation
		err  error
	}{{
		name: "xep example server-unavailable",
		in: `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit">
			<server-unavailable/>
			<description>The capulet.lit server is no longer available</description>
		</state-annotation>`,
		want: psa.Annotation{From: montague, Condition: psa.ServerUnavailable, Descriptions: []psa.Description{{Text: "The capulet.lit server is no longer available"}}},
	}, {
		name: "xep example restored",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"/>`,
		want: psa.Annotation{From: montague},
	}, {
		name: "description before condition, no whitespace",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><description>paused</description><connection-paused/></state-annotation>`,
		want: psa.Annotation{From: montague, Condition: psa.ConnectionPaused, Descriptions: []psa.Description{{Text: "paused"}}},
	}, {
		name: "condition with content is still the condition",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><connection-paused>ignored<x/></connection-paused></state-annotation>`,
		want: psa.Annotation{From: montague, Condition: psa.ConnectionPaused},
	}, {
		name: "unknown condition kept by name",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-on-fire/></state-annotation>`,
		want: psa.Annotation{From: montague, Condition: "server-on-fire"},
	}, {
		name: "foreign children are extensions and ignored",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><x xmlns="urn:example"><server-unavailable/></x><server-unavailable/></state-annotation>`,
		want: psa.Annotation{From: montague, Condition: psa.ServerUnavailable},
	}, {
		name: "description languages, own and inherited from the annotation",
		in: `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit" xml:lang="de"><server-unavailable/>` +
			`<description xml:lang="en">gone</description><description>weg</description></state-annotation>`,
		want: psa.Annotation{From: montague, Condition: psa.ServerUnavailable, Descriptions: []psa.Description{{Lang: "en", Text: "gone"}, {Lang: "de", Text: "weg"}}},
	}, {
		name: "description text split by a comment and an entity",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><description>a<!-- c -->&amp;b<i>skipped</i>c</description></state-annotation>`,
		want: psa.Annotation{From: montague, Descriptions: []psa.Description{{Text: "a&bc"}}},
	}, {
		name: "prefixed namespace",
		in:   `<p:state-annotation xmlns:p="urn:xmpp:psa" from="montague.lit"><p:server-unavailable/></p:state-annotation>`,
		want: psa.Annotation{From: montague, Condition: psa.ServerUnavailable},
	}, {
		name: "from normalized",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="MONTAGUE.lit"><server-unavailable/></state-annotation>`,
		want: psa.Annotation{From: montague, Condition: psa.ServerUnavailable},
	}, {
		name: "no from",
		in:   `<state-annotation xmlns="urn:xmpp:psa"><server-unavailable/></state-annotation>`,
		err:  psa.ErrNoFrom,
	}, {
		name: "empty from",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from=""><server-unavailable/></state-annotation>`,
		err:  psa.ErrNoFrom,
	}, {
		name: "from a user",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="juliet@capulet.lit"><server-unavailable/></state-annotation>`,
		err:  psa.ErrInvalidFrom,
	}, {
		name: "from a full domain JID",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="capulet.lit/res"><server-unavailable/></state-annotation>`,
		err:  psa.ErrInvalidFrom,
	}, {
		name: "from not a JID",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="@@"><server-unavailable/></state-annotation>`,
		err:  psa.ErrInvalidFrom,
	}, {
		name: "namespaced from attribute is not from",
		in:   `<state-annotation xmlns="urn:xmpp:psa" xmlns:e="urn:example" e:from="montague.lit"/>`,
		err:  psa.ErrNoFrom,
	}, {
		name: "two conditions",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/><connection-paused/></state-annotation>`,
		err:  psa.ErrMultipleConditions,
	}, {
		name: "same condition twice",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/><server-unavailable/></state-annotation>`,
		err:  psa.ErrMultipleConditions,
	}, {
		name: "condition name too long",
		in:   `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><` + strings.Repeat("a", psa.MaxConditionLen+1) + `/></state-annotation>`,
		err:  psa.ErrInvalidCondition,
	}, {
		name: "wrong element",
		in:   `<state-annotation xmlns="urn:xmpp:psa:1" from="montague.lit"><server-unavailable/></state-annotation>`,
		err:  psa.ErrNotAnnotation,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeString(t, tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !errors.Is(err, psa.ErrMalformed) {
					t.Fatalf("error = %v, want %v (and ErrMalformed)", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			assertEqual(t, got, tc.want)
		})
	}
}

func assertEqual(t *testing.T, got, want psa.Annotation) {
	t.Helper()
	if !got.From.Equal(want.From) || got.Condition != want.Condition || got.Truncated != want.Truncated ||
		!reflect.DeepEqual(normalize(got.Descriptions), normalize(want.Descriptions)) {
		t.Fatalf("got  %+v (from %s)\nwant %+v (from %s)", got, got.From, want, want.From)
	}
}

func normalize(ds []psa.Description) []psa.Description {
	if len(ds) == 0 {
		return nil
	}
	return ds
}

func TestDecodeLimits(t *testing.T) {
	t.Run("long description cut at a rune boundary", func(t *testing.T) {
		// 'é' is two bytes: an odd limit would cut one in half.
		text := strings.Repeat("é", psa.MaxDescriptionBytes)
		a, err := decodeString(t, `<state-annotation xmlns="urn:xmpp:psa" from="a.example"><description>`+text+`</description></state-annotation>`)
		if err != nil {
			t.Fatal(err)
		}
		d := a.Descriptions[0].Text
		if !a.Truncated || len(d) > psa.MaxDescriptionBytes || len(d) < psa.MaxDescriptionBytes-utf8.UTFMax || !utf8.ValidString(d) {
			t.Fatalf("Truncated=%v, len=%d, valid=%v", a.Truncated, len(d), utf8.ValidString(d))
		}
	})
	t.Run("long description in many pieces", func(t *testing.T) {
		var b strings.Builder
		for b.Len() < 3*psa.MaxDescriptionBytes {
			b.WriteString("ab€<!---->")
		}
		a, err := decodeString(t, `<state-annotation xmlns="urn:xmpp:psa" from="a.example"><description>`+b.String()+`</description></state-annotation>`)
		if err != nil {
			t.Fatal(err)
		}
		d := a.Descriptions[0].Text
		if !a.Truncated || len(d) > psa.MaxDescriptionBytes || !utf8.ValidString(d) || !strings.HasPrefix(d, "ab€ab€") {
			t.Fatalf("Truncated=%v, len=%d, valid=%v, %q...", a.Truncated, len(d), utf8.ValidString(d), d[:12])
		}
	})
	t.Run("too many descriptions", func(t *testing.T) {
		in := `<state-annotation xmlns="urn:xmpp:psa" from="a.example">` + strings.Repeat("<description>x</description>", psa.MaxDescriptions+5) + `</state-annotation>`
		a, err := decodeString(t, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Descriptions) != psa.MaxDescriptions || !a.Truncated {
			t.Fatalf("kept %d descriptions, Truncated=%v", len(a.Descriptions), a.Truncated)
		}
	})
	t.Run("oversized language tag", func(t *testing.T) {
		in := `<state-annotation xmlns="urn:xmpp:psa" from="a.example"><description xml:lang="` + strings.Repeat("x", psa.MaxLangLen+1) + `">x</description></state-annotation>`
		a, err := decodeString(t, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Descriptions) != 0 || !a.Truncated {
			t.Fatalf("kept %d descriptions, Truncated=%v", len(a.Descriptions), a.Truncated)
		}
	})
	t.Run("deep unknown children", func(t *testing.T) {
		in := `<state-annotation xmlns="urn:xmpp:psa" from="a.example"><connection-paused/>` +
			strings.Repeat(`<x xmlns="urn:example">`, 5000) + strings.Repeat(`</x>`, 5000) + `</state-annotation>`
		a, err := decodeString(t, in)
		if err != nil || a.Condition != psa.ConnectionPaused {
			t.Fatalf("%+v, %v", a, err)
		}
	})
}

func TestDecodeTruncatedStream(t *testing.T) {
	full := `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable><x/></server-unavailable><description xml:lang="en">text</description></state-annotation>`
	// Every proper prefix must fail with an error of the stream, never a
	// malformed-annotation error or a panic.
	for i := len(`<state-annotation xmlns="urn:xmpp:psa" from="montague.lit">`); i < len(full); i++ {
		d := xml.NewDecoder(strings.NewReader(full[:i]))
		tok, _ := d.Token()
		_, err := psa.DecodeElement(d, tok.(xml.StartElement))
		if err == nil || errors.Is(err, psa.ErrMalformed) {
			t.Fatalf("prefix %d: error %v", i, err)
		}
		if i > len(full)-3 && !errors.Is(err, io.ErrUnexpectedEOF) {
			var se *xml.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("prefix %d: error %v, want unexpected EOF", i, err)
			}
		}
	}
}

func TestUnmarshal(t *testing.T) {
	var a psa.Annotation
	err := xml.Unmarshal([]byte(`<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><connection-paused/></state-annotation>`), &a)
	if err != nil {
		t.Fatal(err)
	}
	if a.Condition != psa.ConnectionPaused || a.From.String() != "montague.lit" {
		t.Fatalf("got %+v", a)
	}
	// Inside a struct, as a user of encoding/xml would decode a presence.
	var p struct {
		Status string           `xml:"status"`
		PSA    []psa.Annotation `xml:"urn:xmpp:psa state-annotation"`
	}
	err = xml.Unmarshal([]byte(`<presence><state-annotation xmlns="urn:xmpp:psa" from="a.example"/><status>s</status>`+
		`<state-annotation xmlns="urn:xmpp:psa" from="b.example"><server-unavailable/></state-annotation></presence>`), &p)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.PSA) != 2 || !p.PSA[0].Restored() || p.PSA[1].Condition != psa.ServerUnavailable || p.Status != "s" {
		t.Fatalf("got %+v", p)
	}
	err = xml.Unmarshal([]byte(`<state-annotation xmlns="urn:xmpp:psa"/>`), &a)
	if !errors.Is(err, psa.ErrNoFrom) {
		t.Fatalf("error = %v, want ErrNoFrom", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	in := []psa.Annotation{
		{From: jid.MustParse("montague.lit")},
		{From: jid.MustParse("montague.lit"), Condition: psa.ServerUnavailable},
		{From: jid.MustParse("chats.shakespeare.lit"), Condition: "future-condition", Descriptions: []psa.Description{
			{Text: "plain <&> text"}, {Lang: "de", Text: "Server weg"},
		}},
	}
	for _, a := range in {
		out, err := xml.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeString(t, string(out))
		if err != nil {
			t.Fatalf("decoding %s: %v", out, err)
		}
		assertEqual(t, got, a)

		// The token reader must produce the same document.
		var buf bytes.Buffer
		e := xml.NewEncoder(&buf)
		if _, err := a.WriteXML(e); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != string(out) {
			t.Fatalf("WriteXML wrote %s, Marshal %s", buf.String(), out)
		}
	}
	if _, err := xml.Marshal(psa.Annotation{Condition: psa.ServerUnavailable}); !errors.Is(err, psa.ErrNoFrom) {
		t.Fatalf("encoding without from: %v, want ErrNoFrom", err)
	}
}

func TestDescription(t *testing.T) {
	a := psa.Annotation{Descriptions: []psa.Description{
		{Lang: "de", Text: "weg"}, {Text: "gone"}, {Lang: "fr", Text: "parti"},
	}}
	tests := []struct {
		prefs []language.Tag
		want  string
	}{
		{nil, "gone"},
		{[]language.Tag{language.German}, "weg"},
		{[]language.Tag{language.MustParse("de-CH")}, "weg"},
		{[]language.Tag{language.Japanese, language.French}, "parti"},
		{[]language.Tag{language.Japanese}, "gone"},
	}
	for _, tc := range tests {
		d, ok := a.Description(tc.prefs...)
		if !ok || d.Text != tc.want {
			t.Errorf("Description(%v) = %q, %v; want %q", tc.prefs, d.Text, ok, tc.want)
		}
	}
	if _, ok := (psa.Annotation{}).Description(); ok {
		t.Error("ok for an annotation without description")
	}
	only := psa.Annotation{Descriptions: []psa.Description{{Lang: "de", Text: "weg"}, {Lang: "xx-invalid-!!", Text: "?"}}}
	if d, _ := only.Description(language.English); d.Text != "weg" {
		t.Errorf("fallback without untagged description = %q, want the first", d.Text)
	}
}

func TestConditionKnown(t *testing.T) {
	for c, want := range map[psa.Condition]bool{
		psa.ServerUnavailable: true, psa.ConnectionPaused: true,
		psa.LocalDisconnected: false, "": false, "other": false,
	} {
		if c.Known() != want {
			t.Errorf("%q.Known() = %v", c, !want)
		}
	}
}
