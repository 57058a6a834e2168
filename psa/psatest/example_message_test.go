package psatest_test

import (
	"context"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	psaclient "github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa/psatest"
)

// Testing a bot in process: a scripted contact writes to it, the test reads
// its answer from what the server recorded, and a message to a domain the
// server cannot reach comes back as a bounce.
func ExampleServer_SendMessage() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := psatest.NewServer(psatest.WithUser("bot", "secret"))
	defer srv.Close()
	srv.SetUnreachable(jid.MustParse("verona.lit"), true)

	got := make(chan psaclient.Message, 4)
	c, err := psaclient.Dial(ctx, jid.MustParse("bot@montague.lit/bot"), "secret",
		psaclient.WithAddress(srv.Addr()), psaclient.WithTLS(psaclient.PlainText),
		psaclient.OnMessage(func(m psaclient.Message) {
			got <- m
			if m.Type == stanza.ChatMessage {
				_ = m.Reply(ctx, "you said: "+m.Body)
			}
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		fmt.Println(err)
		return
	}

	// A scripted contact writes; the bot's answer is recorded.
	juliet := jid.MustParse("juliet@capulet.lit/balcony")
	if err := srv.SendMessage(ctx, c.JID(), psatest.Message{From: juliet, Body: "hello"}); err != nil {
		fmt.Println(err)
		return
	}
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" && st.To.Equal(juliet) })
	if err != nil {
		fmt.Println(err)
		return
	}
	var answer struct {
		Body string `xml:"body"`
	}
	_ = st.Decode(&answer)
	fmt.Println(st.Type, "to", st.To, answer.Body)
	<-got

	// verona.lit is unreachable: the server bounces the message.
	friar := jid.MustParse("friar@verona.lit")
	if err := c.Send(ctx, stanza.Message{To: friar, Type: stanza.ChatMessage}.Wrap(nil)); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case m := <-got:
		fmt.Println(m.Type, "from", m.From, m.Error.Condition)
	case <-ctx.Done():
		fmt.Println("no bounce")
	}
	// Output:
	// chat to juliet@capulet.lit/balcony you said: hello
	// error from friar@verona.lit remote-server-not-found
}
