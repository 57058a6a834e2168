package mucwatch_test

import (
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
)

// feed decodes and applies presences, printing the events.
func feed(m *mucwatch.Model, stanzas ...string) {
	for _, s := range stanzas {
		p, err := presence.Unmarshal([]byte(s))
		if err != nil {
			fmt.Println(err)
			return
		}
		evs, _ := m.ApplyPresence(&p)
		printEvents(evs)
	}
}

func printEvents(evs []mucwatch.Event) {
	for _, e := range evs {
		fmt.Printf("%-18s %s", e.Kind, e.Room)
		if e.Occupant.Nick != "" {
			fmt.Printf(" %s", e.Occupant.Nick)
		}
		if e.Mark.Condition != "" {
			fmt.Printf(" (%s by %s)", e.Mark.Condition, e.Mark.By)
		}
		fmt.Println()
	}
}

// A bot joins a room; later its own server loses its link to the MUC
// service and says so, which makes the room stale until the link is back.
func ExampleModel_ApplyPresence() {
	m := mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))
	printEvents(m.Joining(jid.MustParse("orchard@chats.shakespeare.lit/Romeo")))
	feed(m,
		// The occupant list, then our own presence (status 110).
		`<presence from='orchard@chats.shakespeare.lit/Juliet'><status>Ay me!</status>
		   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x></presence>`,
		`<presence from='orchard@chats.shakespeare.lit/Romeo'>
		   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/><status code='110'/></x></presence>`,
		// montague.lit cannot reach the MUC service any more: it re-sends
		// every presence it has from the room, annotated. Our own (110) makes
		// the room stale.
		`<presence from='orchard@chats.shakespeare.lit/Juliet'><status>Ay me!</status>
		   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x>
		   <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`,
		`<presence from='orchard@chats.shakespeare.lit/Romeo'>
		   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/><status code='110'/></x>
		   <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`,
		// The link is back: when our own occupant is restored, the room is,
		// and it is time for a self-ping.
		`<presence from='orchard@chats.shakespeare.lit/Juliet'><status>Ay me!</status>
		   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x>
		   <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'/></presence>`,
		`<presence from='orchard@chats.shakespeare.lit/Romeo'>
		   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/><status code='110'/></x>
		   <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'/></presence>`,
	)
	// Output:
	// joining            orchard@chats.shakespeare.lit
	// occupant-available orchard@chats.shakespeare.lit Juliet
	// occupant-available orchard@chats.shakespeare.lit Romeo
	// room-joined        orchard@chats.shakespeare.lit Romeo
	// occupant-stale     orchard@chats.shakespeare.lit Juliet (server-unavailable by montague.lit)
	// occupant-stale     orchard@chats.shakespeare.lit Romeo (server-unavailable by montague.lit)
	// room-stale         orchard@chats.shakespeare.lit (server-unavailable by montague.lit)
	// occupant-restored  orchard@chats.shakespeare.lit Juliet (server-unavailable by montague.lit)
	// occupant-restored  orchard@chats.shakespeare.lit Romeo (server-unavailable by montague.lit)
	// room-restored      orchard@chats.shakespeare.lit (server-unavailable by montague.lit)
}

// Join errors match the package's sentinel errors.
func ExampleJoinError() {
	m := mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))
	m.Joining(jid.MustParse("orchard@chats.shakespeare.lit/Romeo"))
	p, _ := presence.Unmarshal([]byte(`<presence from='orchard@chats.shakespeare.lit/Romeo' type='error'>
	  <error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`))
	evs, _ := m.ApplyPresence(&p)
	for _, e := range evs {
		fmt.Println(e.Kind, errors.Is(e.Err, mucwatch.ErrNickInUse))
		var je *mucwatch.JoinError
		if errors.As(e.Err, &je) {
			fmt.Println(je.Room, je.Condition)
		}
	}
	_, tracked := m.Room(jid.MustParse("orchard@chats.shakespeare.lit"))
	fmt.Println("tracked:", tracked)
	// Output:
	// room-join-failed true
	// orchard@chats.shakespeare.lit conflict
	// tracked: false
}

// The bot's stream drops. After the reconnect it rejoins; the service sends
// the occupants that are still there, then our own presence, which removes
// the others.
func ExampleModel_MarkDisconnected() {
	room := jid.MustParse("orchard@chats.shakespeare.lit")
	m := mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))
	m.Joining(jid.MustParse("orchard@chats.shakespeare.lit/Romeo"))
	occupant := func(nick, codes string) string {
		return `<presence from='orchard@chats.shakespeare.lit/` + nick + `'>
		  <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>` + codes + `</x></presence>`
	}
	self := `<status code='110'/>`
	feed(m, occupant("Juliet", ""), occupant("Nurse", ""), occupant("Romeo", self))

	fmt.Println("-- the stream drops")
	evs := m.MarkDisconnected()
	r, _ := m.Room(room)
	fmt.Println(evs[0].Kind, evs[0].Mark.Condition, "-", len(evs)-1, "occupants marked; state", r.State)

	fmt.Println("-- reconnected")
	printEvents(m.Rejoining(room))
	feed(m, occupant("Juliet", ""), occupant("Romeo", self))
	r, _ = m.Room(room)
	fmt.Println("state", r.State, "occupants", r.Occupants)
	// Output:
	// occupant-available orchard@chats.shakespeare.lit Juliet
	// occupant-available orchard@chats.shakespeare.lit Nurse
	// occupant-available orchard@chats.shakespeare.lit Romeo
	// room-joined        orchard@chats.shakespeare.lit Romeo
	// -- the stream drops
	// room-stale local-disconnected - 3 occupants marked; state stale
	// -- reconnected
	// rejoining          orchard@chats.shakespeare.lit
	// occupant-restored  orchard@chats.shakespeare.lit Juliet (local-disconnected by romeo@montague.lit)
	// occupant-restored  orchard@chats.shakespeare.lit Romeo (local-disconnected by romeo@montague.lit)
	// occupant-unavailable orchard@chats.shakespeare.lit Nurse
	// room-joined        orchard@chats.shakespeare.lit Romeo
	// room-restored      orchard@chats.shakespeare.lit (local-disconnected by romeo@montague.lit)
	// state joined occupants 2
}
