package sm

import (
	"bytes"
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmlstream"
)

// decodeString decodes the first element of s.
func decodeString(s string) (Element, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return Decode(d, start)
		}
	}
}

func encodeString(t testing.TB, e Element) string {
	t.Helper()
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	r := e.TokenReader()
	for {
		tok, err := r.Token()
		if tok != nil {
			if err := enc.EncodeToken(tok); err != nil {
				t.Fatal(err)
			}
		}
		if err != nil {
			break
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Element
	}{
		{`<enable xmlns='urn:xmpp:sm:3'/>`, Enable{}},
		{`<enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/>`, Enable{Resume: true, Max: 60}},
		{`<enabled xmlns='urn:xmpp:sm:3' id='some-long-sm-id' location='[2001:41D0:1:A49b::1]:9222' resume='1' max='600'/>`,
			Enabled{ID: "some-long-sm-id", Location: "[2001:41D0:1:A49b::1]:9222", Resume: true, Max: 600}},
		{`<enabled xmlns='urn:xmpp:sm:3'/>`, Enabled{}},
		{`<r xmlns='urn:xmpp:sm:3'/>`, Request{}},
		{`<a xmlns='urn:xmpp:sm:3' h='4294967295'/>`, Ack{H: 4294967295}},
		{`<resume xmlns='urn:xmpp:sm:3' h='3' previd='abc'/>`, Resume{PrevID: "abc", H: 3}},
		{`<resumed xmlns='urn:xmpp:sm:3' h='0' previd='abc'/>`, Resumed{PrevID: "abc", H: 0}},
		{`<failed xmlns='urn:xmpp:sm:3'/>`, Failed{}},
		{`<failed xmlns='urn:xmpp:sm:3' h='5'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></failed>`,
			Failed{H: 5, HasH: true, Condition: "item-not-found", Text: "gone"}},
		{`<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><x><y/></x></failed>`,
			Failed{Condition: "unexpected-request"}},
	} {
		got, err := decodeString(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Decode(%s) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			continue
		}
		// And back.
		again, err := decodeString(encodeString(t, got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %#v gave %#v, %v", got, again, err)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, in := range []string{
		`<a xmlns='urn:xmpp:sm:3'/>`,
		`<a xmlns='urn:xmpp:sm:3' h=''/>`,
		`<a xmlns='urn:xmpp:sm:3' h='-1'/>`,
		`<a xmlns='urn:xmpp:sm:3' h='+1'/>`,
		`<a xmlns='urn:xmpp:sm:3' h='4294967296'/>`,
		`<a xmlns='urn:xmpp:sm:3' h='0x10'/>`,
		`<resume xmlns='urn:xmpp:sm:3' h='1'/>`,
		`<resumed xmlns='urn:xmpp:sm:3' previd='x'/>`,
		`<resumed xmlns='urn:xmpp:sm:3' previd='' h='1'/>`,
		`<enabled xmlns='urn:xmpp:sm:3' resume='true'/>`,
		`<enabled xmlns='urn:xmpp:sm:3' resume='yes' id='x'/>`,
		`<enabled xmlns='urn:xmpp:sm:3' max='-5'/>`,
		`<enabled xmlns='urn:xmpp:sm:3' id='` + strings.Repeat("x", MaxIDLen+1) + `'/>`,
		`<failed xmlns='urn:xmpp:sm:3' h='x'/>`,
		`<r xmlns='urn:xmpp:sm:2'/>`,
		`<a h='1'/>`,
		`<message xmlns='urn:xmpp:sm:3'/>`,
	} {
		got, err := decodeString(in)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%.80s) = %#v, %v; want an error matching ErrMalformed", in, got, err)
		}
	}
	var ae *AttrError
	if _, err := decodeString(`<a xmlns='urn:xmpp:sm:3'/>`); !errors.As(err, &ae) || !ae.Missing || ae.Attr != "h" || ae.Element != "a" {
		t.Errorf("missing h: %v", err)
	}
}

func TestDecodeTruncatedStream(t *testing.T) {
	_, err := decodeString(`<failed xmlns='urn:xmpp:sm:3'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>`)
	if err == nil {
		t.Fatal("no error for an element cut short")
	}
}

func TestDecodeFailedTextBounded(t *testing.T) {
	long := strings.Repeat("a", 10*maxText)
	got, err := decodeString(`<failed xmlns='urn:xmpp:sm:3'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>` + long + `</text></failed>`)
	if err != nil {
		t.Fatal(err)
	}
	if f := got.(Failed); len(f.Text) != maxText {
		t.Fatalf("kept %d bytes of text, want %d", len(f.Text), maxText)
	}
}

// A token reader may return its last token with io.EOF, as xmlstream.Token
// does: the element is complete.
func TestDecodeLastTokenWithEOF(t *testing.T) {
	start := xml.StartElement{Name: xml.Name{Space: NS, Local: "enabled"}, Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: "x"}}}
	got, err := Decode(xmlstream.Token(start.End()), start)
	if err != nil || got != (Enabled{ID: "x"}) {
		t.Fatalf("Decode = %#v, %v", got, err)
	}
	fstart := xml.StartElement{Name: xml.Name{Space: NS, Local: "failed"}}
	if got, err := Decode(xmlstream.Token(fstart.End()), fstart); err != nil || got != (Failed{}) {
		t.Fatalf("Decode(failed) = %#v, %v", got, err)
	}
}
