package client_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

// Ask a contact something while our own server cannot reach her domain:
// the answer is its bounce, and the remote checks mark her at once, by
// psakit's own word (Mark.Inferred), not a server's.
func ExampleClient_SendIQ() {
	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"))
	defer srv.Close()
	romeo := jid.MustParse("romeo@montague.lit")
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
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
	<-events // juliet available

	srv.SetReachability(jid.MustParse("capulet.lit"), psatest.Bouncing)
	iq := `<iq type='get' to='juliet@capulet.lit/balcony'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`
	resp, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(iq)))
	if err != nil {
		fmt.Println(err)
		return
	}
	var answer struct {
		Type  string        `xml:"type,attr"`
		Error *stanza.Error `xml:"error"`
	}
	err = xml.NewTokenDecoder(resp).Decode(&answer)
	resp.Close()
	if err != nil || answer.Error == nil {
		fmt.Println("answer:", answer.Type, err)
		return
	}
	fmt.Println("answer:", answer.Type, answer.Error.Condition)

	e := <-events
	fmt.Println(e.Kind, e.JID, e.Mark.Condition, "inferred:", e.Mark.Inferred(), "by", e.Mark.By)
	// Output:
	// answer: error remote-server-not-found
	// stale juliet@capulet.lit/balcony server-unavailable inferred: true by capulet.lit/psakit-inferred
}
