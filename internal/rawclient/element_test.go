package rawclient

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestReadElement(t *testing.T) {
	const in = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>` +
		`<presence from='juliet@capulet.lit/balcony' xml:lang='en'><status>Ay &amp; me</status>` +
		`<state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/>` +
		`<description xml:lang='en'>gone</description></state-annotation></presence></stream:stream>`
	dec := xml.NewDecoder(strings.NewReader(in))
	if _, err := readStreamStart(dec); err != nil {
		t.Fatal(err)
	}
	e, err := readElement(dec)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Is(NSClient, "presence") || e.Attr("from") != "juliet@capulet.lit/balcony" || e.Attr("lang") != "en" {
		t.Fatalf("bad presence: %s", e)
	}
	if got := e.Child(NSClient, "status").Text(); got != "Ay & me" {
		t.Errorf("status %q", got)
	}
	a := e.Child(NSPSA, "state-annotation")
	if a.Attr("from") != "montague.lit" || a.Child(NSPSA, "server-unavailable") == nil || a.Child(NSPSA, "description").Attr("lang") != "en" {
		t.Errorf("bad annotation: %s", a)
	}
	if e.Child(NSPSA, "missing") != nil || e.Child("", "missing").Attr("x") != "" || e.HasAttr("to") {
		t.Error("missing children or attributes found")
	}
	want := `<presence xmlns="jabber:client" from="juliet@capulet.lit/balcony" xml:lang="en"><status>Ay &amp; me</status>` +
		`<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/><description xml:lang="en">gone</description></state-annotation></presence>`
	if got := e.String(); got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
	if _, err := readElement(dec); err != errStreamEnd {
		t.Errorf("end of stream: %v", err)
	}
}
