package client

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// BenchmarkApplyPresence measures what the Tracker does with a decoded
// presence on the read goroutine (models, event queue) and what the
// callback goroutine does with its events (a no-op callback), without the
// network or the decoder: the client's share of the stack. The roster has
// 20k online contacts; the presences alternate between a plain update, an
// annotation and its empty annotation, spread over the roster.
func BenchmarkApplyPresence(b *testing.B) {
	const contacts = 20_000
	t, err := NewTracker(jid.MustParse("romeo@montague.lit/lane"),
		WithVerify(VerifyOff, 0), OnRoster(func(roster.Event) {}))
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	items := make([]roster.Item, contacts)
	for i := range items {
		items[i] = roster.Item{JID: jid.MustParse(fmt.Sprintf("c%d@capulet.lit", i)), Subscription: roster.SubscriptionBoth}
	}
	t.roster.SetItems("1", items)
	var ps []presence.Presence
	for i := range contacts {
		for _, body := range []string{
			`<status>on the balcony</status>`,
			`<status>on the balcony</status><state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation>`,
			`<status>on the balcony</status><state-annotation xmlns='urn:xmpp:psa' from='montague.lit'/>`,
		} {
			p, err := t.dec.Decode(stringsReader(fmt.Sprintf(`<presence from='c%d@capulet.lit/r'>%s</presence>`, i, body)))
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, p)
		}
	}
	for i := range ps {
		t.applyPresence(&ps[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t.applyPresence(&ps[(i*7919)%len(ps)])
	}
}

func stringsReader(s string) *xml.Decoder { return xml.NewDecoder(strings.NewReader(s)) }
