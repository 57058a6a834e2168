package sm

import (
	"fmt"
	"strings"
	"testing"
)

// presenceStream is a stream of n typical contact presences with caps and an
// annotation, as a client reads after login.
func presenceStream(n int) []byte {
	var b strings.Builder
	b.WriteString(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`)
	for i := range n {
		fmt.Fprintf(&b, `<presence from='contact%d@example.org/phone' to='romeo@montague.lit/orchard'><show>away</show>`+
			`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>`+
			`<state-annotation xmlns='urn:xmpp:psa' from='example.org'><server-unavailable/></state-annotation></presence>`, i)
	}
	return []byte(b.String())
}

// BenchmarkScannerRead is the inbound cost of counting: scanning what is
// read, without capture, with the Manager's callback work left out.
func BenchmarkScannerRead(b *testing.B) {
	data := presenceStream(1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var sc Scanner
		n := 0
		for i := 0; i < len(data); i += 4096 {
			sc.Feed(data[i:min(i+4096, len(data))], func(Top) { n++ })
		}
		if n != 1000 {
			b.Fatalf("found %d elements", n)
		}
	}
}

// BenchmarkScannerWrite is the outbound cost: scanning with capture for the
// queue.
func BenchmarkScannerWrite(b *testing.B) {
	data := presenceStream(1000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		sc := Scanner{Capture: DefaultMaxQueueBytes}
		for i := 0; i < len(data); i += 4096 {
			sc.Feed(data[i:min(i+4096, len(data))], func(Top) {})
		}
	}
}
