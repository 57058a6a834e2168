package psakit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// TestMain runs the tests once per Prosody installation that
// internal/prosodytest selects (PSAKIT_PROSODY), e.g. 0.12 and 13: the
// README's bot runs against each.
func TestMain(m *testing.M) { prosodytest.Main(m) }

// The README's bot (answer, in example_test.go, as users copy it) on a real
// Prosody for example.org: it answers in the room and in direct chat, its
// server restarts (SIGTERM, then the same ports), and it answers again,
// back in the room, without anything done by its code.
func TestREADMEBotSurvivesRestart(t *testing.T) {
	n := prosodytest.Start(t, prosodytest.Spec{
		Domain:     "example.org",
		MUC:        "conference.example.org",
		Users:      map[string]string{"bot": "secret", "juliet": "secret"},
		PSAOptions: prosodytest.FastPSA(),
	})
	srv := n.Server("example.org")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const (
		room = "orchard@conference.example.org"
		bot  = "bot@example.org/bot"
	)

	botCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- answer(botCtx, "secret", client.WithAddress(srv.C2SAddr), client.WithTLS(client.PlainText))
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("answer: %v", err)
		}
	}()

	// pings has juliet (a new connection) join the room, wait for the bot
	// there, and ping it in the room and directly; both answers must come.
	pings := func(when string) {
		t.Helper()
		juliet, err := rawclient.Dial(ctx, rawclient.Config{Addr: srv.C2SAddr, Domain: "example.org",
			User: "juliet", Password: "secret", Resource: "balcony"})
		if err != nil {
			t.Fatal(err)
		}
		defer juliet.Close()
		if err := juliet.SendPresence(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if err := juliet.JoinMUC(ctx, room, "Juliet"); err != nil {
			t.Fatal(err)
		}
		if _, err := juliet.Expect(ctx, func(e *rawclient.Element) bool {
			return e.Is(rawclient.NSClient, "presence") && e.Attr("from") == room+"/bot" && e.Attr("type") == ""
		}); err != nil {
			t.Fatalf("%s: the bot is not in the room: %v", when, err)
		}
		for _, tc := range []struct{ to, typ, from string }{
			{room, "groupchat", room + "/bot"},
			{bot, "chat", bot},
		} {
			if err := juliet.Sendf("<message to='%s' type='%s'><body>ping</body></message>", tc.to, tc.typ); err != nil {
				t.Fatal(err)
			}
			if _, err := juliet.Expect(ctx, func(e *rawclient.Element) bool {
				b := e.Child(rawclient.NSClient, "body")
				return e.Is(rawclient.NSClient, "message") && e.Attr("from") == tc.from && e.Attr("type") == tc.typ &&
					b != nil && strings.TrimSpace(b.Text()) == "pong"
			}); err != nil {
				t.Fatalf("%s: no %s answer: %v", when, tc.typ, err)
			}
		}
	}

	pings("before the restart")
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	pings("after the restart")
}
