package e2e_test

import (
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/rawclient"
)

// A bot on Prosody: romeo's client receives a groupchat message from the
// nurse (capulet.lit, across the federation) and a direct one, and answers
// both with Message.Reply; the room's history, which Prosody sends on join
// with a delay, is not taken for a live message.
func TestBotAnswers(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	room := "orchard@" + conference

	got := make(chan client.Message, 16)
	answered := make(chan error, 16)
	romeo := dial(ctx, t, mont, "romeo", "lane", newRecorder(), client.OnMessage(func(m client.Message) {
		got <- m
		if strings.HasPrefix(m.Body, "ping") && m.Delay.IsZero() && m.Type != stanza.ErrorMessage {
			answered <- m.Reply(ctx, "pong "+m.Body)
		}
	}))
	nurse := nurseInRoom(ctx, t, n, romeo, room)

	must(t, nurse.Sendf(`<message to='%s' type='groupchat'><body>ping room</body></message>`, room))
	if _, err := nurse.Expect(ctx, isBody("pong ping room")); err != nil {
		t.Fatalf("no groupchat answer: %v", err)
	}
	must(t, nurse.Sendf(`<message to='%s' type='chat'><body>ping direct</body><thread>t-7</thread></message>`, romeo.JID()))
	e, err := nurse.Expect(ctx, isBody("pong ping direct"))
	if err != nil {
		t.Fatalf("no direct answer: %v", err)
	}
	if e.Attr("type") != "chat" || e.Child(rawclient.NSClient, "thread") == nil || e.Child(rawclient.NSClient, "thread").Text() != "t-7" {
		t.Fatalf("direct answer type %q", e.Attr("type"))
	}
	for range 2 {
		select {
		case err := <-answered:
			must(t, err)
		case <-ctx.Done():
			t.Fatal("an answer was not sent")
		}
	}
	// What romeo received: the groupchat message from the nurse's occupant
	// JID, live; his own answer reflected; the direct message from her full
	// JID.
	var sawGroup, sawDirect bool
	for len(got) > 0 {
		m := <-got
		switch {
		case m.Body == "ping room":
			sawGroup = m.Type == stanza.GroupChatMessage && m.From.String() == room+"/Nurse" && m.Delay.IsZero()
		case m.Body == "ping direct":
			sawDirect = m.Type == stanza.ChatMessage && m.From.String() == nurse.JID() && m.Thread == "t-7"
		}
	}
	if !sawGroup || !sawDirect {
		t.Fatalf("received groupchat %v, direct %v", sawGroup, sawDirect)
	}
}
