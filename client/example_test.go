package client_test

import (
	"context"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

// Connect, and learn that a contact's presence went stale. The server is
// psatest's, in process; against a real server drop WithAddress and
// WithTLS.
func ExampleDial() {
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"))
	defer srv.Close()
	romeo := jid.MustParse("romeo@montague.lit")
	juliet := jid.MustParse("juliet@capulet.lit/balcony")
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'><status>Available</status></presence>`); err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	events := make(chan roster.Event, 16)
	c, err := client.Dial(ctx, romeo, "secret",
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText),
		client.OnRoster(func(e roster.Event) { events <- e }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	e := <-events
	fmt.Println(e.Kind, e.JID, "fresh:", e.Fresh())

	// montague.lit loses its link to capulet.lit, and says so.
	err = srv.Annotate(ctx, c.JID(), juliet, psa.Annotation{From: jid.MustParse("montague.lit"), Condition: psa.ServerUnavailable})
	if err != nil {
		fmt.Println(err)
		return
	}
	e = <-events
	fmt.Println(e.Kind, e.JID, "fresh:", e.Fresh(), e.Mark.Condition, "by", e.Mark.By)
	// Output:
	// available juliet@capulet.lit/balcony fresh: true
	// stale juliet@capulet.lit/balcony fresh: false server-unavailable by montague.lit
}

// Join a room; the client keeps us there until Leave.
func ExampleClient_Join() {
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx := context.Background()
	room := srv.Room("orchard")
	room.SetPersistent(true)
	if err := room.AddOccupant(ctx, "Juliet", jid.MustParse("juliet@capulet.lit/balcony"), "participant", "member"); err != nil {
		fmt.Println(err)
		return
	}

	c, err := client.Dial(ctx, jid.MustParse("romeo@montague.lit"), "secret",
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := c.Join(ctx, jid.MustParse("orchard@muc.montague.lit/Romeo")); err != nil {
		fmt.Println(err)
		return
	}
	r, _ := c.Rooms().Room(jid.MustParse("orchard@muc.montague.lit"))
	fmt.Println(r.JID, r.State, "as", r.Nick, "with", r.Occupants, "occupants")
	for o := range c.Rooms().Occupants(r.JID) {
		if !o.Self {
			fmt.Println(o.Nick, o.RealJID, o.Role, "fresh:", o.Fresh())
		}
	}
	// A nick in use is a typed error.
	room.RefuseJoins(stanza.Conflict)
	err = c.Join(ctx, jid.MustParse("orchard@muc.montague.lit/Juliet"))
	fmt.Println(err != nil)
	// Output:
	// orchard@muc.montague.lit joined as Romeo with 2 occupants
	// Juliet juliet@capulet.lit/balcony participant fresh: true
	// true
}

// An application that owns its mellium session puts a Tracker in front of
// its mux.
func ExampleNewTracker() {
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"))
	defer srv.Close()
	ctx := context.Background()
	if err := srv.SetContactPresence(jid.MustParse("romeo@montague.lit"), `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
		fmt.Println(err)
		return
	}

	events := make(chan roster.Event, 16)
	t, err := client.NewTracker(jid.MustParse("romeo@montague.lit"), client.OnRoster(func(e roster.Event) { events <- e }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()

	// Your session, your mux; psatest.Dial stands for your own connection code.
	s, err := srv.Dial(ctx, jid.MustParse("romeo@montague.lit/app"), "secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(t.Handler(mux.New(stanza.NSClient, t.MuxOptions()...)))
		s.Conn().Close()
		t.Disconnected()
	}()
	if err := t.Start(ctx, s); err != nil { // roster, presence with caps
		fmt.Println(err)
		return
	}
	e := <-events
	fmt.Println(e.Kind, e.JID)

	s.Close()
	<-served
	// Output:
	// available juliet@capulet.lit/balcony
}

// A bot receives a direct message and a groupchat message and answers both:
// Reply answers in the room for groupchat, to the sender otherwise.
func ExampleOnMessage() {
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx := context.Background()
	room := srv.Room("orchard")
	room.SetPersistent(true)
	if err := room.AddOccupant(ctx, "Juliet", jid.JID{}, "", ""); err != nil {
		fmt.Println(err)
		return
	}

	c, err := client.Dial(ctx, jid.MustParse("romeo@montague.lit"), "secret",
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText),
		client.OnMessage(func(m client.Message) {
			if m.Delay.IsZero() && m.Type != stanza.ErrorMessage && m.Body == "Romeo?" {
				_ = m.Reply(ctx, "Here, "+m.From.Resourcepart())
			}
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := c.Join(ctx, jid.MustParse("orchard@muc.montague.lit/Romeo")); err != nil {
		fmt.Println(err)
		return
	}
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		fmt.Println(err)
		return
	}
	answer := func() {
		st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" })
		if err != nil {
			fmt.Println(err)
			return
		}
		var v struct {
			Body string `xml:"body"`
		}
		_ = st.Decode(&v)
		fmt.Printf("%s to %s: %s\n", st.Type, st.To, v.Body)
	}

	_ = srv.SendMessage(ctx, c.JID(), psatest.Message{From: jid.MustParse("juliet@capulet.lit/balcony"), Body: "Romeo?"})
	answer()
	_ = room.Say(ctx, "Juliet", psatest.Message{Body: "Romeo?"})
	answer()
	// Output:
	// chat to juliet@capulet.lit/balcony: Here, balcony
	// groupchat to orchard@muc.montague.lit: Here, Juliet
}

// Join a room that asks for a password, with the last messages of its
// discussion. Join options begin with Join: the password is the room's, not
// the account's.
func ExampleJoinPassword() {
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx := context.Background()
	room := srv.Room("orchard")

	c, err := client.Dial(ctx, jid.MustParse("romeo@montague.lit"), "secret",
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	err = c.Join(ctx, jid.MustParse("orchard@muc.montague.lit/Romeo"),
		client.JoinPassword("capulet"), client.JoinHistory(20))
	if err != nil {
		fmt.Println(err)
		return
	}
	// What the room received.
	j, _ := room.NextJoin(ctx, func(psatest.Join) bool { return true })
	fmt.Println(j.Nick, j.Password, j.History.MaxStanzas)
	// Output:
	// Romeo capulet 20
}
