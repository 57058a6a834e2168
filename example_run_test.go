package psakit_test

import (
	"context"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

// The README's code (watch, in example_test.go), run against psatest's
// in-process server for example.org. Against a real server, call
// watch(ctx, password) without options.
func Example() {
	bot := jid.MustParse("bot@example.org")
	srv := psatest.NewServer(psatest.WithDomain("example.org"), psatest.WithUser("bot", "secret"),
		psatest.WithMUC("conference.example.org"))
	defer srv.Close()
	srv.SetRoster(bot, "1", roster.Item{JID: jid.MustParse("juliet@capulet.lit"), Subscription: roster.SubscriptionBoth})
	if err := srv.SetContactPresence(bot, `<presence from='juliet@capulet.lit/balcony'><show>away</show></presence>`); err != nil {
		fmt.Println(err)
		return
	}
	srv.Room("orchard").SetPersistent(true)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := watch(ctx, "secret", client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText)); err != nil {
		fmt.Println(err)
	}
	// Output:
	// juliet@capulet.lit online: true show: away fresh: true
}

// The README's bot (answer, in example_test.go), run against psatest: Juliet
// writes to it directly, then in the room, and it answers both.
func Example_bot() {
	srv := psatest.NewServer(psatest.WithDomain("example.org"), psatest.WithUser("bot", "secret"),
		psatest.WithMUC("conference.example.org"))
	defer srv.Close()
	room := srv.Room("orchard")
	room.SetPersistent(true)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	botCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- answer(botCtx, "secret", client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText))
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			fmt.Println(err)
		}
	}()

	// Wait for the bot in the room, and have Juliet there.
	if _, err := room.NextJoin(ctx, nil); err != nil {
		fmt.Println(err)
		return
	}
	if err := room.AddOccupant(ctx, "Juliet", jid.JID{}, "", ""); err != nil {
		fmt.Println(err)
		return
	}
	sess, err := srv.WaitAvailable(ctx, jid.MustParse("bot@example.org/bot"))
	if err != nil {
		fmt.Println(err)
		return
	}
	isMessage := func(st psatest.Stanza) bool { return st.Name == "message" }
	var reply struct {
		Body string `xml:"body"`
	}

	err = srv.SendMessage(ctx, sess.JID(), psatest.Message{From: jid.MustParse("juliet@capulet.lit/balcony"), Body: "ping"})
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := sess.Next(ctx, isMessage)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = st.Decode(&reply)
	fmt.Println(st.Type, "to", st.To, reply.Body)

	if err := room.Say(ctx, "Juliet", psatest.Message{Body: "ping"}); err != nil {
		fmt.Println(err)
		return
	}
	if st, err = sess.Next(ctx, isMessage); err != nil {
		fmt.Println(err)
		return
	}
	_ = st.Decode(&reply)
	fmt.Println(st.Type, "to", st.To, reply.Body)
	// Output:
	// chat to juliet@capulet.lit/balcony pong
	// groupchat to orchard@conference.example.org pong
}
