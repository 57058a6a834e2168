package roster_test

import (
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// A remote server becomes unreachable and comes back: the model tells which
// presence is stale, why and by whose word.
func ExampleModel_ApplyPresence() {
	m := roster.New(jid.MustParse("romeo@montague.lit/lane"))
	for _, stanza := range []string{
		`<presence from='juliet@capulet.lit/orchard'><status>Available</status></presence>`,
		`<presence from='juliet@capulet.lit/orchard'><status>Available</status>
		   <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`,
		`<presence from='juliet@capulet.lit/orchard'><status>Available</status>
		   <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'/></presence>`,
	} {
		p, err := presence.Unmarshal([]byte(stanza))
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range m.ApplyPresence(&p) {
			fmt.Printf("%-9s %s fresh=%v", e.Kind, e.JID, e.Fresh())
			if e.Mark.Condition != "" {
				fmt.Printf(" (%s by %s)", e.Mark.Condition, e.Mark.By)
			}
			fmt.Println()
		}
	}
	// Output:
	// available juliet@capulet.lit/orchard fresh=true
	// stale     juliet@capulet.lit/orchard fresh=false (server-unavailable by montague.lit)
	// restored  juliet@capulet.lit/orchard fresh=true (server-unavailable by montague.lit)
}

// Rendering the roster from any goroutine while the client updates it.
func ExampleModel_Contacts() {
	m := roster.New(jid.MustParse("romeo@montague.lit"))
	m.SetItems("", []roster.Item{{JID: jid.MustParse("juliet@capulet.lit"), Name: "Juliet"}})
	p, _ := presence.Unmarshal([]byte(`<presence from='juliet@capulet.lit/orchard'><show>away</show>
	  <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`))
	m.ApplyPresence(&p)

	for c := range m.Contacts() {
		best, online := c.Best()
		state := "offline"
		if online {
			state = string(best.Show)
			if !best.Fresh() {
				state += " (stale: " + string(best.Marks[0].Condition) + " says " + best.Marks[0].By.String() + ")"
			}
		}
		fmt.Println(c.Item.Name, state)
	}
	// Output:
	// Juliet away (stale: server-unavailable says montague.lit)
}

// A stranger sends large presences from many resources: past the byte
// budget for strangers, the model rejects them instead of growing.
func ExampleWithMaxStrangerBytes() {
	m := roster.New(jid.MustParse("romeo@montague.lit"), roster.WithMaxStrangerBytes(64<<10))
	status := `<status>` + strings.Repeat("x", presence.MaxStatusBytes) + `</status>`
	for i := range 40 {
		p, _ := presence.Unmarshal([]byte(fmt.Sprintf(`<presence from='stranger@evil.example/r%d'>%s</presence>`, i, status)))
		for _, e := range m.ApplyPresence(&p) {
			if errors.Is(e.Err, roster.ErrLimit) {
				fmt.Println(e.Kind, e.JID, e.Err)
				fmt.Println(m.Stats().StrangerBytes, "bytes held")
				return
			}
		}
	}
	// Output:
	// rejected stranger@evil.example/r16 roster: limit reached, presence not tracked: bytes of strangers' presence capped at 65536
	// 65536 bytes held
}
