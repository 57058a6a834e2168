package psatest_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/caps"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
)

// presenceTap is a client handler that hands every presence it receives to
// a channel. It never blocks: mellium runs handlers on its read loop.
func presenceTap(out chan<- presence.Presence) xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local == "presence" {
			if p, err := presence.DecodeElement(t, *start); err == nil {
				select {
				case out <- p:
				default:
				}
			}
		}
		return nil
	})
}

// A contact is online when the client logs in; then the contact's server
// becomes unreachable, and the client's server annotates the presence it
// delivered (XEP-0310).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"))
	defer srv.Close()

	romeo := jid.MustParse("romeo@montague.lit")
	err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'><status>Wherefore art thou?</status></presence>`)
	if err != nil {
		fmt.Println(err)
		return
	}

	s, err := srv.Dial(ctx, jid.MustParse("romeo@montague.lit/lane"), "secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Conn().Close()
	defer s.Close()
	presences := make(chan presence.Presence, 16)
	go s.Serve(presenceTap(presences))

	// The initial presence: the server answers with the contacts online.
	if err := s.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		fmt.Println(err)
		return
	}
	next := func() presence.Presence {
		for p := range presences {
			if p.From.Domainpart() == "capulet.lit" {
				return p
			}
		}
		return presence.Presence{}
	}
	p := next()
	fmt.Println(p.From, "says", p.StatusText())

	err = srv.Annotate(ctx, romeo, jid.MustParse("capulet.lit"), psa.Annotation{Condition: psa.ServerUnavailable})
	if err != nil {
		fmt.Println(err)
		return
	}
	p = next()
	a := p.Annotations[0]
	fmt.Println(p.From, "says", p.StatusText(), "but", a.From, "reports", a.Condition)
	// Output:
	// juliet@capulet.lit/balcony says Wherefore art thou?
	// juliet@capulet.lit/balcony says Wherefore art thou? but montague.lit reports server-unavailable
}

// The server records what the client sends: here its presence, whose
// entity capabilities the test then verifies by asking the client for them.
func ExampleServer_DiscoInfo() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"))
	defer srv.Close()

	user := jid.MustParse("romeo@montague.lit/lane")
	s, err := srv.Dial(ctx, user, "secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Conn().Close()
	defer s.Close()
	adv, err := caps.NewAdvertiser("https://example.net/bot")
	if err != nil {
		fmt.Println(err)
		return
	}
	go s.Serve(mux.New(stanza.NSClient, adv.HandleDiscoInfo()))
	if err := s.Send(ctx, stanza.Presence{}.Wrap(adv.TokenReader())); err != nil {
		fmt.Println(err)
		return
	}

	sess, err := srv.WaitAvailable(ctx, user)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, _ := sess.Caps()
	info, err := srv.DiscoInfo(ctx, user, c.Node+"#"+c.Ver)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("node:", c.Node)
	fmt.Println("verified:", caps.Verify(info, c.Hash, c.Ver) == nil)
	// Output:
	// node: https://example.net/bot
	// verified: true
}

// A client joins a room that has an occupant, and is kicked.
func ExampleRoom() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	room := srv.Room("coven")
	if err := room.AddOccupant(ctx, "firstwitch", jid.JID{}, "moderator", "owner"); err != nil {
		fmt.Println(err)
		return
	}

	s, err := srv.Dial(ctx, jid.MustParse("romeo@montague.lit/lane"), "secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Conn().Close()
	defer s.Close()
	presences := make(chan presence.Presence, 16)
	go s.Serve(presenceTap(presences))

	join := `<presence to='coven@muc.montague.lit/thirdwitch'>
	  <x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>
	</presence>`
	if err := s.Send(ctx, xml.NewDecoder(strings.NewReader(join))); err != nil {
		fmt.Println(err)
		return
	}
	j, err := room.NextJoin(ctx, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("join as", j.Nick, "asking for", j.History.MaxStanzas, "stanzas of history")
	show := func() {
		p := <-presences
		fmt.Println(p.From.Resourcepart(), p.Type, p.MUC.Item.Role, p.MUC.Status)
	}
	show()
	show()

	if err := room.Kick(ctx, "thirdwitch", 307); err != nil {
		fmt.Println(err)
		return
	}
	show()
	// Output:
	// join as thirdwitch asking for 0 stanzas of history
	// firstwitch  moderator []
	// thirdwitch  participant [100 110]
	// thirdwitch unavailable none [110 307]
}

// A bot that approves every subscription request, tested with a contact on
// another domain that the test plays with Subscription.
func ExampleServer_Subscription() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := psatest.NewServer(psatest.WithUser("bot", "secret"))
	defer srv.Close()

	botJID := jid.MustParse("bot@montague.lit/bot")
	s, err := srv.Dial(ctx, botJID, "secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Conn().Close()
	defer s.Close()
	// The bot under test: it answers subscribe with subscribed.
	go s.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		p, err := presence.DecodeElement(t, *start)
		if err != nil || p.Type != stanza.SubscribePresence {
			return nil
		}
		_, err = xmlstream.Copy(t, stanza.Presence{To: p.From.Bare(), Type: stanza.SubscribedPresence}.Wrap(nil))
		return err
	}))
	if err := s.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		fmt.Println(err)
		return
	}
	sess, err := srv.WaitAvailable(ctx, botJID)
	if err != nil {
		fmt.Println(err)
		return
	}

	juliet := jid.MustParse("juliet@capulet.lit")
	if err := srv.Subscription(botJID, juliet, stanza.SubscribePresence); err != nil {
		fmt.Println(err)
		return
	}
	answer, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "presence" && st.Type != "" })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("the bot answered", answer.Type, "to", answer.To)
	// Output:
	// the bot answered subscribed to juliet@capulet.lit
}

// A server that answers a bind request with another account's JID, to check
// that a client refuses it.
func ExampleWithBindAnswer() {
	srv := psatest.NewServer(psatest.WithUser("romeo", "pw"),
		psatest.WithBindAnswer(func(jid.JID) jid.JID { return jid.MustParse("x@evil.example/r") }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Server.Dial binds with the feature of client.BindResource, which refuses the answer; so do
	// client.Dial and client.Tracker (client.ErrBindMismatch).
	_, err := srv.Dial(ctx, jid.MustParse("romeo@montague.lit/lane"), "pw")
	fmt.Println(err)
	// Output:
	// bind: the server bound x@evil.example/r, which is not a resource of romeo@montague.lit
}
