package roster_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// FuzzModel applies an arbitrary sequence of operations, drawn from a small
// pool of JIDs so that they collide, and checks after each one that the
// model's counts match its contents and that no limit is exceeded.
func FuzzModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb})
	f.Add([]byte{7, 7, 7, 0x17, 0x27, 0x37, 0x47, 3, 11, 12})
	bares := []string{"juliet@capulet.lit", "nurse@capulet.lit", "tybalt@capulet.lit", "romeo@montague.lit", "s1@evil.example", "s2@evil.example", "s3@evil.example", "capulet.lit"}
	resources := []string{"", "/a", "/b", "/c", "/lane"}
	annotators := []string{"montague.lit", "capulet.lit", "evil.example", "juliet@capulet.lit", "chats.capulet.lit"}
	conditions := []string{"", "server-unavailable", "connection-paused", "odd"}
	types := []string{"", "", "", "unavailable", "subscribe", "error", "probe"}
	extras := []string{
		"",
		`<status>At work</status>`,
		`<status xml:lang="en">Out</status><status xml:lang="fr">Dehors</status>`,
		`<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="http://psakit.example" ver="abc="/>`,
		`<delay xmlns="urn:xmpp:delay" stamp="2026-11-24T10:00:00.123Z"/><status>Late</status>`,
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 512 {
			ops = ops[:512]
		}
		clk := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		opts := []roster.Option{roster.WithMaxResources(3), roster.WithMaxStrangers(2),
			roster.WithClock(func() time.Time { return clk })}
		if len(ops) > 0 {
			// Some runs make the storage shrink often: when a quarter of the
			// slots is in use, or after every update.
			switch ops[0] % 3 {
			case 1:
				opts = append(opts, roster.WithShrinkAt(4, 1<<62))
			case 2:
				opts = append(opts, roster.WithShrinkAt(1<<62, 1))
			}
			// Half of them make every bare JID share one of two hashes.
			if ops[0]/3%2 == 1 {
				opts = append(opts, roster.WithHashBits(1))
			}
			// Half of them have byte budgets of a few records.
			if ops[0]/6%2 == 1 {
				opts = append(opts, roster.WithMaxStrangerBytes(96), roster.WithMaxBytes(320))
			}
		}
		m := roster.New(jid.MustParse("romeo@montague.lit/lane"), opts...)
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			clk = clk.Add(time.Second)
			from := bares[int(arg)%len(bares)] + resources[int(arg>>3)%len(resources)]
			switch op % 8 {
			case 0, 1, 2:
				typ := types[int(op>>3)%len(types)]
				body := ""
				if op&0x80 != 0 {
					body = fmt.Sprintf(`<state-annotation xmlns="urn:xmpp:psa" from="%s">%s</state-annotation>`,
						annotators[int(arg>>5)%len(annotators)], cond(conditions[int(op>>4)%len(conditions)]))
				}
				if op&0x80 != 0 && arg&4 != 0 {
					body = strings.Replace(body, "</state", `<description xml:lang="en">down since `+fmt.Sprint(i)+`</description></state`, 1)
				}
				p, err := presence.Unmarshal([]byte(fmt.Sprintf(`<presence from="%s" type="%s"><show>%s</show><priority>%d</priority>%s%s</presence>`,
					from, typ, []string{"away", "dnd", "xa", "chat"}[op%4], int8(arg), extras[int(arg>>2)%len(extras)], body)))
				if err != nil {
					t.Fatalf("bad generated presence: %v", err)
				}
				checkEvents(t, m, m.ApplyPresence(&p))
			case 3:
				m.MarkDisconnected()
			case 4:
				if arg&0x80 != 0 {
					// A resumed stream (XEP-0198) instead of a sweep.
					m.ClearDisconnected(int(arg&0x7f) * 64)
				} else {
					m.Sweep()
				}
			case 5:
				sub := []string{"both", "to", "from", "none", "remove", "odd"}[int(op>>3)%6]
				it := roster.Item{JID: jid.MustParse(bares[int(arg)%len(bares)]), Subscription: sub,
					Ask: arg&0x10 != 0, Approved: arg&0x20 != 0}
				if arg&0x40 != 0 {
					it.Name, it.Groups = "Name "+fmt.Sprint(i), []string{"Friends", fmt.Sprint(op)}
				}
				if _, err := m.ApplyPush(jid.JID{}, fmt.Sprint(i), it); err != nil {
					t.Fatal(err)
				}
				c, ok := m.Contact(it.JID)
				switch {
				case sub == "remove" && ok && c.InRoster:
					t.Fatalf("%s still in the roster after a remove push", it.JID)
				case sub != "remove" && (!ok || !c.InRoster || !c.Item.JID.Equal(it.JID) || c.Item.Name != it.Name ||
					c.Item.Subscription != it.Subscription || c.Item.Ask != it.Ask || c.Item.Approved != it.Approved ||
					!slices.Equal(c.Item.Groups, it.Groups)):
					t.Fatalf("pushed %+v, stored %+v", it, c.Item)
				}
			case 6:
				var items []roster.Item
				for j, b := range bares {
					if arg&(1<<j) != 0 {
						items = append(items, roster.Item{JID: jid.MustParse(b)})
					}
				}
				m.SetItems(fmt.Sprint(i), items)
			case 7:
				switch op >> 3 & 3 {
				case 2, 3:
					// psakit's own finding that a domain is out of reach, or back,
					// with an event budget from none to unbounded.
					domain := jid.MustParse(strings.TrimPrefix(bares[int(arg)%len(bares)], "juliet@"))
					domain = domain.Domain()
					budget := []int{-1, 0, 100, 1 << 20}[int(arg>>3)%4]
					if op>>3&3 == 2 {
						evs, omitted := m.MarkUnreachable(domain, budget)
						checkInferred(t, m, domain, true, evs, omitted)
					} else {
						evs, omitted := m.ClearUnreachable(domain, budget)
						checkInferred(t, m, domain, false, evs, omitted)
					}
				default:
					m.ApplyPush(jid.MustParse(from), "x", roster.Item{JID: jid.MustParse("mallory@evil.example")})
				}
			}
			checkStats(t, m)
			for c := range m.Contacts() {
				if len(c.Resources) > 3 {
					t.Fatalf("%s has %d resources", c.JID, len(c.Resources))
				}
				for _, r := range c.Resources {
					seen := map[string]bool{}
					for _, mk := range r.Marks {
						if seen[mk.By.String()] || mk.Condition == "" {
							t.Fatalf("%s: bad marks %+v", r.JID, r.Marks)
						}
						seen[mk.By.String()] = true
					}
				}
			}
			if s := m.Stats(); s.Strangers > 2 {
				t.Fatalf("stats %+v", s)
			}
		}
	})
}

// checkInferred checks the model after MarkUnreachable (marked) or
// ClearUnreachable of domain: every resource at domain carries the inferred
// mark, or none does; the events are about resources at domain, carry that
// mark, and with the omitted ones count the resources changed.
func checkInferred(t *testing.T, m *roster.Model, domain jid.JID, marked bool, evs []roster.Event, omitted int) {
	t.Helper()
	if omitted < 0 {
		t.Fatalf("omitted %d", omitted)
	}
	for _, e := range evs {
		d, ok := e.Mark.InferredDomain()
		want := roster.EventRestored
		if marked {
			want = roster.EventStale
		}
		if e.Kind != want || !ok || !d.Equal(domain) || e.JID.Domainpart() != domain.Domainpart() || marked && e.Fresh() {
			t.Fatalf("inferred mark of %s (marked %v): event %+v", domain, marked, e)
		}
	}
	by := domain.Domainpart() + "/psakit-inferred"
	for c := range m.Contacts() {
		if c.JID.Domainpart() != domain.Domainpart() {
			continue
		}
		for _, r := range c.Resources {
			has := false
			for _, mk := range r.Marks {
				has = has || mk.By.String() == by
			}
			if has != marked {
				t.Fatalf("%s after the inferred mark of %s (marked %v): %+v", r.JID, domain, marked, r.Marks)
			}
		}
	}
	checkEvents(t, m, evs)
}

// checkEvents checks that the model stored exactly what its events say:
// the resource of the last presence event, as the events built it from the
// presence, must be what a snapshot decodes from the model's storage.
func checkEvents(t *testing.T, m *roster.Model, evs []roster.Event) {
	t.Helper()
	var last *roster.Event
	for i := range evs {
		switch evs[i].Kind {
		case roster.EventAvailable, roster.EventUpdated, roster.EventStale, roster.EventRestored:
			last = &evs[i]
		case roster.EventUnavailable:
			if _, ok := m.Resource(evs[i].JID); ok {
				t.Fatalf("%s still there after %+v", evs[i].JID, evs[i])
			}
		}
	}
	if last == nil {
		return
	}
	got, ok := m.Resource(last.JID)
	if !ok {
		t.Fatalf("%s missing after %+v", last.JID, *last)
	}
	if !sameResource(got, last.Resource) {
		t.Fatalf("stored %+v, events said %+v", got, last.Resource)
	}
}

// sameResource compares resources field by field, times with Equal.
func sameResource(a, b roster.Resource) bool {
	if !a.JID.Equal(b.JID) || !a.State.Equal(b.State) || !a.Updated.Equal(b.Updated) || len(a.Marks) != len(b.Marks) {
		return false
	}
	for i := range a.Marks {
		x, y := a.Marks[i], b.Marks[i]
		if x.Condition != y.Condition || !x.By.Equal(y.By) || !x.Since.Equal(y.Since) || !slices.Equal(x.Descriptions, y.Descriptions) {
			return false
		}
	}
	return true
}

func cond(c string) string {
	if c == "" {
		return ""
	}
	return "<" + c + "/>"
}
