package mucwatch_test

import (
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
)

// A View reads what the model holds now, and has no method that changes it.
func ExampleModel_View() {
	m := mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))
	v := m.View() // what client.Client.Rooms returns
	m.Joining(jid.MustParse("orchard@muc.montague.lit/Romeo"))
	r, ok := v.Room(jid.MustParse("orchard@muc.montague.lit"))
	fmt.Println(ok, r.State, v.Stats().Rooms)
	// Output:
	// true joining 1
}

func TestZeroView(t *testing.T) {
	var v mucwatch.View
	j := jid.MustParse("orchard@muc.montague.lit/Romeo")
	_, room := v.Room(j)
	_, occ := v.Occupant(j)
	_, self := v.Self(j)
	n := 0
	for range v.Rooms() {
		n++
	}
	for range v.Occupants(j) {
		n++
	}
	if room || occ || self || n != 0 || v.Tracks(j) || v.Stats() != (mucwatch.Stats{}) || !v.Account().Equal(jid.JID{}) {
		t.Errorf("the zero View is not empty: room %v occupant %v self %v, %d entries, %+v", room, occ, self, n, v.Stats())
	}
}
