package roster_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/psakit/psakit/roster"
)

// FuzzReadItems feeds ReadItems what a server (or whoever speaks for it)
// may put in a roster result or push: it never panics, and what it returns
// stays within its bounds: bare, non-empty JIDs, names and groups of at
// most their byte limits, at most MaxGroups groups, known subscriptions.
func FuzzReadItems(f *testing.F) {
	f.Add(`<item jid='juliet@capulet.lit' name='Juliet' subscription='both'><group>Friends</group></item>`)
	f.Add(`<item jid='@@'/><item name='x'/><item jid='a@b/c' subscription='enemy'/>`)
	f.Add(`<item jid='romeo@montague.lit' ask='subscribe' approved='1'><group/><x><group>deep</group></x></item><foo/>`)
	f.Add(`<item jid='romeo@montague.lit'><group>` + strings.Repeat("g", 600) + `</group></item>`)
	f.Fuzz(func(t *testing.T, body string) {
		d := xml.NewDecoder(strings.NewReader(`<query xmlns='jabber:iq:roster'>` + body + `</query>`))
		if _, err := d.Token(); err != nil {
			t.Skip()
		}
		items, err := roster.ReadItems(d)
		if err != nil && !errors.Is(err, roster.ErrBadItem) && items != nil {
			t.Fatalf("items %v returned with a reader error %v", items, err)
		}
		for _, it := range items {
			if it.JID.String() == "" || it.JID.Resourcepart() != "" {
				t.Fatalf("item JID %q", it.JID)
			}
			switch it.Subscription {
			case "", roster.SubscriptionNone, roster.SubscriptionTo, roster.SubscriptionFrom, roster.SubscriptionBoth, roster.SubscriptionRemove:
			default:
				t.Fatalf("subscription %q", it.Subscription)
			}
			if len(it.Name) > roster.MaxNameBytes || !utf8.ValidString(it.Name) || len(it.Groups) > roster.MaxGroups {
				t.Fatalf("name %q, %d groups", it.Name, len(it.Groups))
			}
			for _, g := range it.Groups {
				if len(g) > roster.MaxGroupBytes || !utf8.ValidString(g) {
					t.Fatalf("group %q", g)
				}
			}
		}
	})
}
