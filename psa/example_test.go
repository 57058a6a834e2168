package psa_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/text/language"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

func ExampleFind() {
	const stanza = `<presence from='juliet@capulet.lit/orchard' to='romeo@montague.lit/lane'>
  <status>Available</status>
  <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'>
    <server-unavailable/>
    <description>The capulet.lit server is no longer available</description>
  </state-annotation>
</presence>`
	annotations, err := psa.Find(xml.NewDecoder(strings.NewReader(stanza)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range annotations {
		d, _ := a.Description()
		fmt.Printf("%s says %s: %s\n", a.From, a.Condition, d.Text)
	}
	// Output:
	// montague.lit says server-unavailable: The capulet.lit server is no longer available
}

func ExampleCheckTrust() {
	account := jid.MustParse("romeo@montague.lit/lane")
	juliet := jid.MustParse("juliet@capulet.lit/orchard")
	for _, annotator := range []string{"montague.lit", "capulet.lit", "evil.example"} {
		err := psa.CheckTrust(account, juliet, jid.MustParse(annotator))
		fmt.Printf("%s: trusted=%v\n", annotator, err == nil)
	}
	// Output:
	// montague.lit: trusted=true
	// capulet.lit: trusted=true
	// evil.example: trusted=false
}

func ExampleAnnotation_TokenReader() {
	a := psa.Annotation{
		From:         jid.MustParse("montague.lit"),
		Condition:    psa.ConnectionPaused,
		Descriptions: []psa.Description{{Lang: "en", Text: "benvolio's session is paused"}},
	}
	e := xml.NewEncoder(os.Stdout)
	if _, err := a.WriteXML(e); err != nil {
		fmt.Println(err)
	}
	if err := e.Flush(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// <state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><connection-paused></connection-paused><description xml:lang="en">benvolio&#39;s session is paused</description></state-annotation>
}

func ExampleAnnotation_Description() {
	a := psa.Annotation{Descriptions: []psa.Description{
		{Lang: "en", Text: "The server is no longer available"},
		{Lang: "de", Text: "Der Server ist nicht mehr erreichbar"},
	}}
	d, _ := a.Description(language.MustParse("de-AT"), language.English)
	fmt.Println(d.Text)
	// Output:
	// Der Server ist nicht mehr erreichbar
}

func ExampleMarks_Apply() {
	own := jid.MustParse("montague.lit")
	muc := jid.MustParse("chats.shakespeare.lit")
	now := time.Now()

	var marks psa.Marks
	marks, change, _ := marks.Apply(psa.Annotation{From: own, Condition: psa.ServerUnavailable}, now)
	fmt.Println(change, marks.Stale())
	marks, change, _ = marks.Apply(psa.Annotation{From: muc, Condition: psa.ServerUnavailable}, now)
	fmt.Println(change, marks.Stale())
	// The MUC service's link is back, but the account's own server still
	// cannot reach the room: the entry stays stale.
	marks, change, _ = marks.Apply(psa.Annotation{From: muc}, now)
	fmt.Println(change, marks.Stale())
	marks, change, _ = marks.Apply(psa.Annotation{From: own}, now)
	fmt.Println(change, marks.Stale())
	// Output:
	// added true
	// added true
	// removed true
	// removed false
}

func ExampleDecodeElement_errors() {
	d := xml.NewDecoder(strings.NewReader(`<state-annotation xmlns='urn:xmpp:psa' from='juliet@capulet.lit'><server-unavailable/></state-annotation>`))
	tok, _ := d.Token()
	_, err := psa.DecodeElement(d, tok.(xml.StartElement))
	fmt.Println(errors.Is(err, psa.ErrInvalidFrom), errors.Is(err, psa.ErrMalformed))
	// Output:
	// true true
}
