package mucwatch_test

import (
	"errors"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// An occupant presence that fills the decoder's list of problems with junk
// before its malformed annotations is still a re-send: they are rejected and
// the service's mark on the occupant survives.
func TestRejectedPastProblemCap(t *testing.T) {
	m := mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))
	m.Joining(jid.MustParse("orchard@muc.capulet.lit/Romeo"))
	apply := func(s string) []mucwatch.Event {
		t.Helper()
		p, err := presence.Unmarshal([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := m.ApplyPresence(&p)
		return evs
	}
	const item = `<x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant"/></x>`
	apply(`<presence from="orchard@muc.capulet.lit/Romeo"><x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant"/><status code="110"/></x></presence>`)
	apply(`<presence from="orchard@muc.capulet.lit/Nurse">` + item +
		`<state-annotation xmlns="urn:xmpp:psa" from="muc.capulet.lit"><server-unavailable/></state-annotation></presence>`)

	junk := strings.Repeat(`<delay xmlns="urn:xmpp:delay" stamp="yesterday"/>`, 8)
	bad := strings.Repeat(`<state-annotation xmlns="urn:xmpp:psa" from="nurse@capulet.lit"/>`, 10)
	evs := apply(`<presence from="orchard@muc.capulet.lit/Nurse">` + item + junk + bad + `</presence>`)
	var rejected int
	for _, e := range evs {
		switch {
		case e.Kind == mucwatch.EventRejected && errors.Is(e.Err, psa.ErrMalformed):
			rejected++
		case e.Kind == mucwatch.EventOccupantRestored:
			t.Fatalf("event %+v", e)
		}
	}
	if rejected != presence.MaxAnnotations {
		t.Fatalf("%d malformed annotations reported, want %d: %+v", rejected, presence.MaxAnnotations, evs)
	}
	for o := range m.Occupants(jid.MustParse("orchard@muc.capulet.lit")) {
		if o.Nick == "Nurse" && len(o.Marks) == 0 {
			t.Fatal("the presence cleared the service's mark")
		}
	}
}
