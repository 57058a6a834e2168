package psa_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmlstream"

	"github.com/psakit/psakit/internal/xmltok"
	"github.com/psakit/psakit/psa"
)

// BenchmarkDecodeElement measures decoding one annotation from tokens that
// are already in memory, the way the presence decoder meets it.
func BenchmarkDecodeElement(b *testing.B) {
	const in = `<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/><description xml:lang="en">The capulet.lit server is no longer available</description></state-annotation>`
	toks := readTokens(b, in)
	b.ReportAllocs()
	for b.Loop() {
		r := xmltok.NewReplayer(toks[1:])
		if _, err := psa.DecodeElement(r, toks[0].(xml.StartElement)); err != nil {
			b.Fatal(err)
		}
	}
}

func readTokens(b *testing.B, s string) []xml.Token {
	b.Helper()
	toks, err := xmlstream.ReadAll(xml.NewDecoder(strings.NewReader(s)))
	if err != nil {
		b.Fatal(err)
	}
	return toks
}
