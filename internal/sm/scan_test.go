package sm

import (
	"fmt"
	"strings"
	"testing"
)

func scanAll(sc *Scanner, chunks ...string) (names []string, raws []string) {
	for _, c := range chunks {
		sc.Feed([]byte(c), func(t Top) {
			names = append(names, string(t.Name))
			if t.Truncated {
				raws = append(raws, "TRUNCATED")
			} else {
				raws = append(raws, string(t.Raw))
			}
		})
	}
	return names, raws
}

const streamText = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' version='1.0'>` +
	`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>` +
	`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>` +
	`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='y' version='1.0'>` +
	`<enabled xmlns='urn:xmpp:sm:3' id='q' resume='true'/>` +
	` <message from='a@b' to='c@d'><body>x &lt; y > z</body><!-- <iq> --><![CDATA[ <presence> ]]></message>` + "\n" +
	`<r xmlns='urn:xmpp:sm:3'/>` +
	`<presence a='>' b="'/>"><x/><y></y></presence>` +
	`<iq type='get'/></stream:stream>`

func TestScannerTopLevel(t *testing.T) {
	want := "[stream:features success enabled message r presence iq]"
	sc := &Scanner{Capture: 4096}
	names, raws := scanAll(sc, streamText)
	if fmt.Sprint(names) != want {
		t.Fatalf("names = %v, want %s", names, want)
	}
	if raws[4] != `<r xmlns='urn:xmpp:sm:3'/>` || !strings.HasPrefix(raws[3], "<message ") || !strings.HasSuffix(raws[3], "</message>") {
		t.Fatalf("raw bytes wrong: %q", raws)
	}
	// The same stream fed one byte at a time gives the same elements.
	sc2 := &Scanner{Capture: 4096}
	var chunks []string
	for i := range len(streamText) {
		chunks = append(chunks, streamText[i:i+1])
	}
	names2, raws2 := scanAll(sc2, chunks...)
	if fmt.Sprint(names2) != want || fmt.Sprint(raws2) != fmt.Sprint(raws) {
		t.Fatalf("byte by byte: %v %q", names2, raws2)
	}
}

func TestScannerTag(t *testing.T) {
	sc := &Scanner{}
	var tags []string
	sc.Feed([]byte(`<stream:stream><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='5'></a>`), func(t Top) {
		tags = append(tags, string(t.Tag))
	})
	if fmt.Sprint(tags) != `[<r xmlns='urn:xmpp:sm:3'/> <a xmlns='urn:xmpp:sm:3' h='5'>]` {
		t.Fatalf("tags = %q", tags)
	}
}

func TestScannerCaptureBounded(t *testing.T) {
	sc := &Scanner{Capture: 16}
	_, raws := scanAll(sc, "<stream:stream><message><body>"+strings.Repeat("x", 1000)+"</body></message><iq/>")
	if fmt.Sprint(raws) != "[TRUNCATED <iq/>]" {
		t.Fatalf("raws = %q", raws)
	}
	if cap(sc.buf) > 64 {
		t.Fatalf("buffer grew to %d", cap(sc.buf))
	}
}

func TestScannerIgnoresBeforeStream(t *testing.T) {
	sc := &Scanner{}
	names, _ := scanAll(sc, "<message/><iq></iq>")
	if len(names) != 0 {
		t.Fatalf("found %v outside a stream", names)
	}
}
