package mucwatch_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/psakit/psakit/mucwatch"
)

// A service that does not normalize nicks may send presence from our own
// occupant JID spelled in another Unicode normalization form (NFD for our
// NFC nick). It is the same occupant JID: without status 110 it is refused,
// and it never becomes a second occupant beside ours.
func TestOtherNormalizationOfOurNick(t *testing.T) {
	const nfc, nfd = "Rom\u00e9o", "Rome\u0301o"
	m, _ := newModel(t)
	joinAs(t, m, nfc, "nurse")
	before := mustSelf(t, m, nfc)
	for _, p := range []string{
		`<presence from="` + roomAddr + `/` + nfd + `">` + x(participant) + `</presence>`,
		`<presence from="` + roomAddr + `/` + nfd + `">` + x(participant) + ann(service, "server-unavailable") + `</presence>`,
		`<presence from="` + roomAddr + `/` + nfd + `" type="unavailable">` + x(gone, 307) + `</presence>`,
	} {
		evs := apply(t, m, pres(t, "%s", p))
		expect(t, evs, "rejected")
		if !errors.Is(evs[0].Err, mucwatch.ErrNotSelf) {
			t.Fatalf("rejection %+v", evs[0])
		}
		if me := mustSelf(t, m, nfc); !reflect.DeepEqual(me, before) {
			t.Fatalf("our own occupant changed: %+v, was %+v", me, before)
		}
		if r := state(t, m); r.Occupants != 2 || r.Stale {
			t.Fatalf("room %+v", r)
		}
		checkModel(t, m)
	}
	// Another occupant renaming into it is refused the same way.
	evs := apply(t, m, unavail(t, "nurse", x(`<item affiliation="none" role="participant" nick="`+nfd+`"/>`, 303)))
	expect(t, evs, "occupant-unavailable,rejected")
	mustSelf(t, m, nfc)
	checkModel(t, m)
}
