package client_test

import (
	"context"
	"errors"
	"log"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
)

// A bot that must survive its server: it checks a silent connection after
// 10 s and gives the server 5 s to answer, so a frozen server is noticed
// within 15 s; and when its first Dial meets a server that cannot
// authenticate it for now (restarting), it tries again later, while a wrong
// password ends it. After Dial the client does both by itself.
func ExampleWithKeepalive() {
	ctx := context.Background()
	account := jid.MustParse("bot@example.org")
	for {
		c, err := client.Dial(ctx, account, "secret",
			client.WithKeepalive(10*time.Second, 5*time.Second),
			client.OnConnection(func(e client.ConnEvent) { log.Print(e.Kind, " ", e.Err) }))
		if errors.Is(err, client.ErrTemporaryAuth) {
			time.Sleep(30 * time.Second)
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		<-c.Done()
		log.Print(c.Err())
		return
	}
}
