package psakit_test

import (
	"context"
	"fmt"
	"log"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

// watch connects as bot@example.org, logs what goes stale and fresh in its
// roster and in the room it joins, and prints its contacts. opts are more
// client options, such as client.WithAddress.
func watch(ctx context.Context, password string, opts ...client.Option) error {
	opts = append(opts,
		client.WithResource("bot"),
		client.OnRoster(func(e roster.Event) {
			// available, unavailable, updated, stale, restored, rejected, item-*
			log.Printf("%s %s fresh=%v %s by %s", e.Kind, e.JID, e.Fresh(), e.Mark.Condition, e.Mark.By)
		}),
		client.OnRoom(func(e mucwatch.Event) {
			// occupant-*, room-joined, room-stale, room-restored, room-kicked...
			log.Printf("%s %s fresh=%v", e.Kind, e.JID, e.Fresh())
		}),
	)
	c, err := client.Dial(ctx, jid.MustParse("bot@example.org"), password, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	// Join returns once we are in the room; the client keeps us there
	// (self-pings, rejoins) until Leave or Close.
	if err := c.Join(ctx, jid.MustParse("orchard@conference.example.org/bot")); err != nil {
		return err
	}
	for contact := range c.Roster().Contacts() {
		best, online := contact.Best()
		fmt.Println(contact.JID, "online:", online, "show:", best.Show, "fresh:", best.Fresh())
	}
	return nil
}

// answer is a bot that answers "ping" with "pong", in direct chat and in the
// room it joins, until ctx ends.
func answer(ctx context.Context, password string, opts ...client.Option) error {
	opts = append(opts,
		client.WithResource("bot"),
		client.OnMessage(func(m client.Message) {
			// Delay is set on the history a room sends on join: old news.
			// Never answer a bounce (type error).
			if m.Body != "ping" || !m.Delay.IsZero() || m.Type == stanza.ErrorMessage {
				return
			}
			// To the room for groupchat, to the sender otherwise.
			if err := m.Reply(ctx, "pong"); err != nil {
				log.Print(err)
			}
		}),
	)
	c, err := client.Dial(ctx, jid.MustParse("bot@example.org"), password, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	// A join that the end of ctx cuts short is no error: the bot is stopping.
	if err := c.Join(ctx, jid.MustParse("orchard@conference.example.org/bot")); err != nil && ctx.Err() == nil {
		return err
	}
	<-ctx.Done()
	return nil
}
