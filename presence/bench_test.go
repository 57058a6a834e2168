package presence_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmlstream"

	"github.com/psakit/psakit/internal/xmltok"
	"github.com/psakit/psakit/presence"
)

// annotatedPresence is a typical annotated presence as a server re-sends it.
const annotatedPresence = `<presence xmlns="jabber:client" xml:lang="en" from="juliet@capulet.lit/orchard" to="romeo@montague.lit/lane">` +
	`<show>away</show><status>Available</status>` +
	`<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://psakit.example" ver="QgayPKawpkPSDYmwT/WM94uAlu0="/>` +
	`<delay xmlns="urn:xmpp:delay" from="montague.lit" stamp="2026-11-24T10:00:00Z"/>` +
	`<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/>` +
	`<description>The capulet.lit server is no longer available</description></state-annotation></presence>`

// BenchmarkDecodeElement decodes one annotated presence from tokens already
// read, which is what a mellium handler gets: the cost psakit adds on top of
// the tokenizer. "decoder" is the client's path, a Decoder reused for every
// stanza of a stream; "func" is the package function, which caches nothing.
func BenchmarkDecodeElement(b *testing.B) {
	toks, err := xmlstream.ReadAll(xml.NewDecoder(strings.NewReader(annotatedPresence)))
	if err != nil {
		b.Fatal(err)
	}
	start := toks[0].(xml.StartElement)
	var d presence.Decoder
	for _, bc := range []struct {
		name   string
		decode func(xml.TokenReader, xml.StartElement) (presence.Presence, error)
	}{{"decoder", d.DecodeElement}, {"func", presence.DecodeElement}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			r := new(xmltok.Replayer)
			for b.Loop() {
				r.Reset(toks[1:])
				p, err := bc.decode(r, start)
				if err != nil || len(p.Annotations) != 1 {
					b.Fatal(p, err)
				}
			}
		})
	}
}

// BenchmarkUnmarshal decodes one annotated presence from its bytes,
// encoding/xml's tokenizer included.
func BenchmarkUnmarshal(b *testing.B) {
	data := []byte(annotatedPresence)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := presence.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
