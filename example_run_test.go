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
