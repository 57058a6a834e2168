package client_test

import (
	"context"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

// A network blip on a server with stream management: the session is
// resumed, what Juliet did meanwhile arrives, and every entry is fresh again
// at once, without a roster fetch, a rejoin or a settle window. Had the
// server dropped the session, OnUnacked would have received what it never
// acknowledged.
func ExampleWithStreamManagement() {
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"), psatest.WithStreamManagement(time.Minute))
	defer srv.Close()
	romeo := jid.MustParse("romeo@montague.lit")
	juliet := jid.MustParse("juliet@capulet.lit/balcony")
	srv.SetRoster(romeo, "", roster.Item{JID: juliet.Bare(), Subscription: roster.SubscriptionBoth})
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	conn := make(chan client.ConnEvent, 16)
	away := make(chan struct{}, 1)
	c, err := client.Dial(ctx, romeo, "secret",
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText),
		client.WithStreamManagement(true), // the default
		client.OnConnection(func(e client.ConnEvent) { conn <- e }),
		client.OnRoster(func(e roster.Event) {
			if e.Kind == roster.EventUpdated && e.Resource.Show == "away" {
				away <- struct{}{}
			}
		}),
		client.OnUnacked(func(stanzas []client.UnackedStanza, reason error) {
			fmt.Println(len(stanzas), "stanzas maybe lost:", reason)
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	until := func(kind client.ConnEventKind) {
		for e := range conn {
			fmt.Println(e.Kind)
			if e.Kind == kind {
				return
			}
		}
	}
	until(client.ConnConnected)
	if _, err := srv.WaitAvailable(ctx, c.JID()); err != nil {
		fmt.Println(err)
		return
	}

	// The connection fails; the server keeps the session, and what is sent
	// to it, for a minute.
	sess, _ := srv.WaitSession(ctx, c.JID())
	sess.Drop()
	if err := srv.SendPresence(ctx, c.JID(), psatest.Presence{From: juliet, Show: "away"}); err != nil {
		fmt.Println(err)
		return
	}
	until(client.ConnResynced)
	<-away
	r, _ := c.Roster().Resource(juliet)
	fmt.Println(r.JID, r.Show, "fresh:", r.Fresh())
	// Output:
	// connected
	// disconnected
	// reconnecting
	// resumed
	// resynced
	// juliet@capulet.lit/balcony away fresh: true
}
