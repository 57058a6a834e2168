package roster_test

import (
	"fmt"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// A View reads what the model holds now, and has no method that changes it.
func ExampleModel_View() {
	m := roster.New(jid.MustParse("romeo@montague.lit"))
	v := m.View() // what client.Client.Roster returns
	m.SetItems("1", []roster.Item{{JID: jid.MustParse("juliet@capulet.lit"), Name: "Juliet"}})
	p, _ := presence.Unmarshal([]byte(`<presence from='juliet@capulet.lit/orchard'/>`))
	m.ApplyPresence(&p)

	r, ok := v.Resource(jid.MustParse("juliet@capulet.lit/orchard"))
	fmt.Println(v.Version(), v.Stats().Items, ok, r.Fresh())
	// Output:
	// 1 1 true true
}

func TestZeroView(t *testing.T) {
	var v roster.View
	j := jid.MustParse("juliet@capulet.lit/orchard")
	if _, ok := v.Contact(j); ok {
		t.Error("the zero View has a contact")
	}
	if _, ok := v.Resource(j); ok {
		t.Error("the zero View has a resource")
	}
	n := 0
	for range v.Contacts() {
		n++
	}
	for range v.Items() {
		n++
	}
	for range v.Resources() {
		n++
	}
	if n != 0 || v.Stats() != (roster.Stats{}) || v.Version() != "" || !v.Account().Equal(jid.JID{}) {
		t.Errorf("the zero View is not empty: %d entries, %+v", n, v.Stats())
	}
}
