package roster_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

var (
	account = jid.MustParse("romeo@montague.lit/lane")
	juliet  = jid.MustParse("juliet@capulet.lit/orchard")
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newModel(t *testing.T, opts ...roster.Option) (*roster.Model, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	m := roster.New(account, append([]roster.Option{roster.WithClock(clk.now)}, opts...)...)
	return m, clk
}

// pres decodes a presence written as XML; %s in the format are filled in.
func pres(t *testing.T, format string, args ...any) *presence.Presence {
	t.Helper()
	p, err := presence.Unmarshal([]byte(fmt.Sprintf(format, args...)))
	if err != nil {
		t.Fatalf("bad test presence: %v", err)
	}
	return &p
}

// ann decodes a presence from from annotated by annotator with condition
// ("" for an empty annotation).
func ann(t *testing.T, from, annotator, condition string) *presence.Presence {
	t.Helper()
	return pres(t, "%s", annotated(from, annotator, condition))
}

func annotated(from, annotator, condition string) string {
	cond := ""
	if condition != "" {
		cond = "<" + condition + "/>"
	}
	return `<presence from="` + from + `"><status>Available</status><state-annotation xmlns="urn:xmpp:psa" from="` +
		annotator + `">` + cond + `</state-annotation></presence>`
}

// kinds lists the kinds of events, for compact assertions.
func kinds(evs []roster.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Kind.String())
	}
	return strings.Join(s, ",")
}

func expect(t *testing.T, evs []roster.Event, want string) {
	t.Helper()
	if got := kinds(evs); got != want {
		t.Fatalf("events %q, want %q (%+v)", got, want, evs)
	}
}

// checkStats recomputes the model's counts from its snapshots.
func checkStats(t testing.TB, m *roster.Model) {
	t.Helper()
	var want roster.Stats
	bareAccount := m.Account().Bare()
	for c := range m.Contacts() {
		want.Contacts++
		if c.InRoster {
			want.Items++
		} else if c.Online() && !c.JID.Equal(bareAccount) {
			want.Strangers++
		}
		if !c.InRoster && !c.Online() {
			t.Fatalf("contact %s kept with neither item nor resources", c.JID)
		}
		for _, r := range c.Resources {
			want.Resources++
			if !r.Fresh() {
				want.Stale++
			}
			if !r.JID.Bare().Equal(c.JID) {
				t.Fatalf("resource %s filed under %s", r.JID, c.JID)
			}
		}
	}
	want.Bytes, want.StrangerBytes = roster.RecountBytes(m)
	if got := m.Stats(); got != want {
		t.Fatalf("Stats() = %+v, recomputed %+v", got, want)
	}
}

func TestPresenceLifecycle(t *testing.T) {
	m, clk := newModel(t)
	evs := m.ApplyPresence(pres(t, `<presence from="%s"><show>away</show><status>Available</status><priority>3</priority></presence>`, juliet))
	expect(t, evs, "available")
	r := evs[0].Resource
	if !r.JID.Equal(juliet) || r.Show != presence.ShowAway || r.Priority != 3 || !r.Fresh() || !evs[0].Fresh() || !r.Updated.Equal(clk.t) {
		t.Fatalf("resource %+v", r)
	}

	// The same content again (a new delay stamp says nothing new).
	clk.t = clk.t.Add(time.Second)
	expect(t, m.ApplyPresence(pres(t, `<presence from="%s"><show>away</show><status>Available</status><priority>3</priority><delay xmlns="urn:xmpp:delay" stamp="2026-11-24T09:00:00Z"/></presence>`, juliet)), "")
	expect(t, m.ApplyPresence(pres(t, `<presence from="%s"><show>dnd</show></presence>`, juliet)), "updated")

	c, ok := m.Contact(juliet)
	if !ok || c.InRoster || len(c.Resources) != 1 || c.Resources[0].Show != presence.ShowDND {
		t.Fatalf("contact %+v", c)
	}
	checkStats(t, m)

	evs = m.ApplyPresence(pres(t, `<presence from="%s" type="unavailable"/>`, juliet))
	expect(t, evs, "unavailable")
	if !evs[0].Fresh() || evs[0].Resource.Show != presence.ShowDND {
		t.Fatalf("unavailable event %+v", evs[0])
	}
	if _, ok := m.Contact(juliet); ok {
		t.Fatal("a stranger without resources is still tracked")
	}
	// Unavailable for something unknown is a no-op.
	expect(t, m.ApplyPresence(pres(t, `<presence from="%s" type="unavailable"/>`, juliet)), "")
	checkStats(t, m)
}

func TestBareUnavailableRemovesEveryResource(t *testing.T) {
	m, _ := newModel(t)
	for _, res := range []string{"a", "b", "c"} {
		m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/%s"/>`, res))
	}
	evs := m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit" type="unavailable"/>`))
	expect(t, evs, "unavailable,unavailable,unavailable")
	if s := m.Stats(); s.Resources != 0 || s.Contacts != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// The first case of XEP-0310: a remote server becomes unreachable and comes
// back.
func TestRemoteServerUnavailable(t *testing.T) {
	m, clk := newModel(t)
	m.ApplyPresence(pres(t, `<presence from="%s"><status>Available</status></presence>`, juliet))

	clk.t = clk.t.Add(time.Minute)
	since := clk.t
	evs := m.ApplyPresence(pres(t, `<presence from="%s"><status>Available</status>`+
		`<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/>`+
		`<description>The capulet.lit server is no longer available</description></state-annotation></presence>`, juliet))
	expect(t, evs, "stale")
	e := evs[0]
	if e.Fresh() || e.Mark.Condition != psa.ServerUnavailable || e.Mark.By.String() != "montague.lit" || !e.Mark.Since.Equal(since) {
		t.Fatalf("stale event %+v", e)
	}
	if d, _ := e.Mark.Description(); d.Text != "The capulet.lit server is no longer available" {
		t.Fatalf("description %q", d.Text)
	}
	r, _ := m.Resource(juliet)
	if r.Fresh() || len(r.Marks) != 1 {
		t.Fatalf("resource %+v", r)
	}
	checkStats(t, m)

	// The same annotation again keeps Since and raises nothing.
	clk.t = clk.t.Add(time.Minute)
	expect(t, m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "server-unavailable")), "")
	if r, _ := m.Resource(juliet); !r.Marks[0].Since.Equal(since) {
		t.Fatalf("Since moved to %v", r.Marks[0].Since)
	}

	evs = m.ApplyPresence(ann(t, juliet.String(), "montague.lit", ""))
	expect(t, evs, "restored")
	if !evs[0].Fresh() || evs[0].Mark.Condition != psa.ServerUnavailable || !evs[0].Resent {
		t.Fatalf("restored event %+v", evs[0])
	}
	checkStats(t, m)
}

// The second case: a contact's session is paused, then resumed or timed out.
func TestConnectionPaused(t *testing.T) {
	m, _ := newModel(t)
	benvolio := jid.MustParse("benvolio@montague.lit/lane")
	m.ApplyPresence(pres(t, `<presence from="%s"><status>Available</status></presence>`, benvolio))
	evs := m.ApplyPresence(pres(t, `<presence from="%s"><state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><connection-paused/></state-annotation><status>Available</status></presence>`, benvolio))
	expect(t, evs, "stale")
	expect(t, m.ApplyPresence(ann(t, benvolio.String(), "montague.lit", "")), "restored")
	m.ApplyPresence(ann(t, benvolio.String(), "montague.lit", "connection-paused"))
	expect(t, m.ApplyPresence(pres(t, `<presence from="%s" type="unavailable"/>`, benvolio)), "unavailable")
	checkStats(t, m)
}

func TestTwoAnnotators(t *testing.T) {
	m, _ := newModel(t)
	m.ApplyPresence(pres(t, `<presence from="%s"><status>Available</status></presence>`, juliet))
	expect(t, m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "server-unavailable")), "stale")
	// The sender's own server speaks for its user too.
	expect(t, m.ApplyPresence(ann(t, juliet.String(), "capulet.lit", "connection-paused")), "stale")
	if r, _ := m.Resource(juliet); len(r.Marks) != 2 {
		t.Fatalf("marks %+v", r.Marks)
	}
	evs := m.ApplyPresence(ann(t, juliet.String(), "capulet.lit", ""))
	expect(t, evs, "restored")
	if evs[0].Fresh() {
		t.Fatal("fresh while montague.lit's mark remains")
	}
	// A condition change by the same annotator replaces its mark.
	evs = m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "connection-paused"))
	expect(t, evs, "stale")
	if evs[0].Mark.Condition != psa.ConnectionPaused {
		t.Fatalf("mark %+v", evs[0].Mark)
	}
	evs = m.ApplyPresence(ann(t, juliet.String(), "montague.lit", ""))
	expect(t, evs, "restored")
	if !evs[0].Fresh() {
		t.Fatal("stale after the last mark was removed")
	}
	checkStats(t, m)
}

func TestUnannotatedPresenceClearsMarks(t *testing.T) {
	m, _ := newModel(t)
	m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "server-unavailable"))
	m.ApplyPresence(ann(t, juliet.String(), "capulet.lit", "connection-paused"))
	evs := m.ApplyPresence(pres(t, `<presence from="%s"><show>chat</show></presence>`, juliet))
	expect(t, evs, "updated,restored,restored")
	if !evs[2].Fresh() || !evs[0].Resource.Fresh() || evs[1].Resent {
		t.Fatalf("still stale: %+v", evs)
	}
	checkStats(t, m)
}

func TestAnnotationCreatesEntry(t *testing.T) {
	m, _ := newModel(t)
	evs := m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "server-unavailable"))
	expect(t, evs, "available,stale")
	if evs[0].Fresh() || evs[0].Resource.StatusText() != "Available" {
		t.Fatalf("available event %+v", evs[0])
	}
	checkStats(t, m)
}

func TestUnknownConditionIsStale(t *testing.T) {
	m, _ := newModel(t)
	evs := m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "link-on-fire"))
	expect(t, evs, "available,stale")
	if evs[1].Mark.Condition != "link-on-fire" || evs[1].Fresh() {
		t.Fatalf("stale event %+v", evs[1])
	}
}

func TestRejected(t *testing.T) {
	t.Run("untrusted and malformed annotators", func(t *testing.T) {
		m, _ := newModel(t)
		m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "server-unavailable"))
		for _, tc := range []struct {
			annotator string
			err       error
		}{
			{"evil.example", psa.ErrUntrusted},
			{"muc.capulet.lit", psa.ErrUntrusted},
			{"juliet@capulet.lit", psa.ErrInvalidFrom},
			{"juliet@capulet.lit/orchard", psa.ErrInvalidFrom},
		} {
			evs := m.ApplyPresence(ann(t, juliet.String(), tc.annotator, ""))
			// The annotation is rejected; the presence claims to be a re-send, so
			// it clears no mark either.
			expect(t, evs, "rejected")
			if !errors.Is(evs[0].Err, tc.err) {
				t.Fatalf("%s: error %v, want %v", tc.annotator, evs[0].Err, tc.err)
			}
			if r, _ := m.Resource(juliet); r.Fresh() {
				t.Fatalf("%s cleared montague.lit's mark", tc.annotator)
			}
		}
		// A spoofed mark on a fresh resource is not applied.
		m.ApplyPresence(pres(t, `<presence from="%s"><status>Available</status></presence>`, juliet))
		expect(t, m.ApplyPresence(ann(t, juliet.String(), "evil.example", "server-unavailable")), "rejected")
		if r, _ := m.Resource(juliet); !r.Fresh() {
			t.Fatalf("spoofed mark applied: %+v", r.Marks)
		}
		checkStats(t, m)
	})
	t.Run("annotation on unavailable", func(t *testing.T) {
		m, _ := newModel(t)
		m.ApplyPresence(pres(t, `<presence from="%s"/>`, juliet))
		evs := m.ApplyPresence(pres(t, `<presence from="%s" type="unavailable"><state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/></state-annotation></presence>`, juliet))
		expect(t, evs, "rejected,unavailable")
		if !errors.Is(evs[0].Err, psa.ErrExcluded) || evs[0].Annotation.From.String() != "montague.lit" {
			t.Fatalf("rejection %+v", evs[0])
		}
	})
	t.Run("annotation on subscription and error presence", func(t *testing.T) {
		m, _ := newModel(t)
		for _, typ := range []string{"subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error"} {
			evs := m.ApplyPresence(pres(t, `<presence from="%s" type="%s"><state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/></state-annotation></presence>`, juliet, typ))
			expect(t, evs, "rejected")
			if !errors.Is(evs[0].Err, psa.ErrExcluded) {
				t.Fatalf("%s: %v", typ, evs[0].Err)
			}
		}
		if s := m.Stats(); s.Contacts != 0 {
			t.Fatalf("excluded presence created state: %+v", s)
		}
	})
	t.Run("plain subscription presence changes nothing", func(t *testing.T) {
		m, _ := newModel(t)
		expect(t, m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit" type="subscribe"/>`)), "")
	})
}

func TestIgnored(t *testing.T) {
	m, _ := newModel(t)
	// MUC occupants belong to mucwatch.
	expect(t, m.ApplyPresence(pres(t, `<presence from="room@muc.example/nick"><x xmlns="http://jabber.org/protocol/muc#user"><item role="participant"/></x></presence>`)), "")
	// The account's own session, and presence without from (from the account).
	expect(t, m.ApplyPresence(pres(t, `<presence from="%s"/>`, account)), "")
	expect(t, m.ApplyPresence(pres(t, `<presence/>`)), "")
	// The account's other resources are tracked, but are not strangers.
	expect(t, m.ApplyPresence(pres(t, `<presence from="romeo@montague.lit/phone"/>`)), "available")
	if s := m.Stats(); s.Strangers != 0 || s.Resources != 1 {
		t.Fatalf("stats %+v", s)
	}
	checkStats(t, m)
}

func TestLimits(t *testing.T) {
	t.Run("resources per contact", func(t *testing.T) {
		m, _ := newModel(t, roster.WithMaxResources(2))
		m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/1"/>`))
		m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/2"/>`))
		evs := m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/3"/>`))
		expect(t, evs, "rejected")
		if !errors.Is(evs[0].Err, roster.ErrLimit) {
			t.Fatalf("error %v", evs[0].Err)
		}
		// Known resources still update.
		expect(t, m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/2"><show>away</show></presence>`)), "updated")
		checkStats(t, m)
	})
	t.Run("strangers", func(t *testing.T) {
		m, _ := newModel(t, roster.WithMaxStrangers(2))
		m.SetItems("", []roster.Item{{JID: jid.MustParse("friend@capulet.lit"), Subscription: roster.SubscriptionBoth}})
		m.ApplyPresence(pres(t, `<presence from="s1@evil.example/x"/>`))
		m.ApplyPresence(pres(t, `<presence from="s2@evil.example/x"/>`))
		evs := m.ApplyPresence(pres(t, `<presence from="s3@evil.example/x"/>`))
		if kinds(evs) != "rejected" || !errors.Is(evs[0].Err, roster.ErrLimit) {
			t.Fatalf("events %+v", evs)
		}
		// Roster contacts are never limited by strangers.
		expect(t, m.ApplyPresence(pres(t, `<presence from="friend@capulet.lit/x"/>`)), "available")
		// A stranger going away makes room.
		m.ApplyPresence(pres(t, `<presence from="s1@evil.example/x" type="unavailable"/>`))
		expect(t, m.ApplyPresence(pres(t, `<presence from="s3@evil.example/x"/>`)), "available")
		checkStats(t, m)
		// A removed item whose presence would be one stranger too many loses
		// its presence as well.
		evs, _ = m.ApplyPush(jid.JID{}, "", roster.Item{JID: jid.MustParse("friend@capulet.lit"), Subscription: roster.SubscriptionRemove})
		expect(t, evs, "item-removed,unavailable")
		checkStats(t, m)
	})
}

// Our own stream drops: every resource is marked, the presences that the
// server sends again after the reconnect refresh their resources, and Sweep
// removes the others.
func TestDisconnectAndSweep(t *testing.T) {
	m, clk := newModel(t)
	m.SetItems("", []roster.Item{{JID: juliet.Bare()}, {JID: jid.MustParse("nurse@capulet.lit")}})
	m.ApplyPresence(pres(t, `<presence from="%s"/>`, juliet))
	m.ApplyPresence(pres(t, `<presence from="nurse@capulet.lit/kitchen"/>`))
	m.ApplyPresence(ann(t, "tybalt@capulet.lit/street", "montague.lit", "server-unavailable"))

	clk.t = clk.t.Add(time.Minute)
	evs := m.MarkDisconnected()
	if len(evs) != 3 {
		t.Fatalf("events %+v", evs)
	}
	for _, e := range evs {
		if e.Kind != roster.EventStale || e.Mark.Condition != psa.LocalDisconnected || !e.Mark.By.Equal(account.Bare()) || e.Fresh() {
			t.Fatalf("event %+v", e)
		}
	}
	// A second drop before the reconnect changes nothing.
	expect(t, m.MarkDisconnected(), "")
	checkStats(t, m)

	// After the reconnect: juliet is refreshed, tybalt's server re-annotates
	// him, the nurse is not heard of again.
	expect(t, m.ApplyPresence(pres(t, `<presence from="%s"/>`, juliet)), "restored")
	evs = m.ApplyPresence(ann(t, "tybalt@capulet.lit/street", "montague.lit", "server-unavailable"))
	expect(t, evs, "restored")
	if evs[0].Mark.Condition != psa.LocalDisconnected || evs[0].Fresh() {
		t.Fatalf("tybalt: %+v", evs[0])
	}
	evs = m.Sweep()
	expect(t, evs, "unavailable")
	if evs[0].JID.String() != "nurse@capulet.lit/kitchen" {
		t.Fatalf("swept %s", evs[0].JID)
	}
	if c, ok := m.Contact(jid.MustParse("nurse@capulet.lit")); !ok || !c.InRoster || c.Online() {
		t.Fatalf("nurse %+v", c)
	}
	expect(t, m.Sweep(), "")
	checkStats(t, m)
}

// Our own stream drops and is resumed (XEP-0198): the presences the server
// kept meanwhile refresh their resources, ClearDisconnected makes every
// other one fresh again without removing any, and the other marks stay.
func TestDisconnectAndResume(t *testing.T) {
	m, _ := newModel(t)
	m.SetItems("", []roster.Item{{JID: juliet.Bare()}, {JID: jid.MustParse("nurse@capulet.lit")}})
	m.ApplyPresence(pres(t, `<presence from="%s"/>`, juliet))
	m.ApplyPresence(pres(t, `<presence from="nurse@capulet.lit/kitchen"/>`))
	m.ApplyPresence(ann(t, "tybalt@capulet.lit/street", "montague.lit", "server-unavailable"))
	m.MarkDisconnected()

	// Replayed by the server: the nurse changed her status during the gap.
	expect(t, m.ApplyPresence(pres(t, `<presence from="nurse@capulet.lit/kitchen"><show>away</show></presence>`)), "updated,restored")
	evs, omitted := m.ClearDisconnected(-1)
	if omitted != 0 {
		t.Fatalf("omitted %d", omitted)
	}
	expect(t, evs, "restored,restored")
	for _, e := range evs {
		if e.Mark.Condition != psa.LocalDisconnected || e.Resent {
			t.Fatalf("event %+v", e)
		}
		switch e.JID.String() {
		case juliet.String():
			if !e.Fresh() {
				t.Fatalf("juliet still stale: %+v", e)
			}
		case "tybalt@capulet.lit/street":
			// Its server's mark stays.
			if e.Fresh() || len(e.Resource.Marks) != 1 || e.Resource.Marks[0].By.String() != "montague.lit" {
				t.Fatalf("tybalt: %+v", e)
			}
		default:
			t.Fatalf("unexpected event %+v", e)
		}
	}
	if s := m.Stats(); s.Resources != 3 || s.Stale != 1 {
		t.Fatalf("stats %+v", s)
	}
	if evs, _ := m.ClearDisconnected(-1); len(evs) != 0 {
		t.Fatalf("a second ClearDisconnected: %+v", evs)
	}
	expect(t, m.Sweep(), "")
	checkStats(t, m)

	// Bounded events: every resource is cleared all the same.
	m.MarkDisconnected()
	evs, omitted = m.ClearDisconnected(0)
	if len(evs) != 0 || omitted != 3 {
		t.Fatalf("%d events, %d omitted", len(evs), omitted)
	}
	if s := m.Stats(); s.Stale != 1 {
		t.Fatalf("stats %+v", s)
	}
	checkStats(t, m)
}

func TestItems(t *testing.T) {
	m, _ := newModel(t)
	nurse := jid.MustParse("nurse@capulet.lit")
	evs := m.SetItems("v1", []roster.Item{
		{JID: juliet.Bare(), Name: "Juliet", Subscription: roster.SubscriptionBoth, Groups: []string{"Capulets"}},
		{JID: nurse, Subscription: roster.SubscriptionTo, Ask: true},
	})
	expect(t, evs, "item-added,item-added")
	if m.Version() != "v1" || m.Stats().Items != 2 {
		t.Fatalf("version %q, stats %+v", m.Version(), m.Stats())
	}

	// A push from the server.
	evs, err := m.ApplyPush(jid.JID{}, "v2", roster.Item{JID: nurse, Name: "Nurse", Subscription: roster.SubscriptionBoth})
	if err != nil || kinds(evs) != "item-updated" || evs[0].Item.Name != "Nurse" || m.Version() != "v2" {
		t.Fatalf("push: %+v, %v, version %q", evs, err, m.Version())
	}
	// From the account's bare JID is fine too; the same item again is a no-op.
	evs, err = m.ApplyPush(account.Bare(), "v3", roster.Item{JID: nurse, Name: "Nurse", Subscription: roster.SubscriptionBoth})
	if err != nil || len(evs) != 0 {
		t.Fatalf("repeat push: %+v, %v", evs, err)
	}
	// Spoofed pushes are rejected and change nothing.
	for _, from := range []string{"mallory@evil.example", "montague.lit", "romeo@montague.lit/other"} {
		evs, err = m.ApplyPush(jid.MustParse(from), "v9", roster.Item{JID: jid.MustParse("mallory@evil.example")})
		if !errors.Is(err, roster.ErrSpoofedPush) || kinds(evs) != "rejected" {
			t.Fatalf("spoofed push from %s: %+v, %v", from, evs, err)
		}
	}
	if m.Version() != "v3" || m.Stats().Items != 2 {
		t.Fatalf("spoofed push changed the roster: %q %+v", m.Version(), m.Stats())
	}

	// Remove.
	evs, err = m.ApplyPush(jid.JID{}, "v4", roster.Item{JID: nurse, Subscription: roster.SubscriptionRemove})
	if err != nil || kinds(evs) != "item-removed" || evs[0].Item.Name != "Nurse" {
		t.Fatalf("remove: %+v, %v", evs, err)
	}
	evs, _ = m.ApplyPush(jid.JID{}, "v5", roster.Item{JID: nurse, Subscription: roster.SubscriptionRemove})
	expect(t, evs, "")

	// A full re-fetch reports only the differences.
	m.ApplyPresence(pres(t, `<presence from="%s"/>`, juliet))
	evs = m.SetItems("v6", []roster.Item{
		{JID: juliet.Bare(), Name: "Juliet", Subscription: roster.SubscriptionBoth, Groups: []string{"Capulets"}},
		{JID: jid.MustParse("tybalt@capulet.lit")},
	})
	expect(t, evs, "item-added")
	evs = m.SetItems("v7", nil)
	expect(t, evs, "item-removed,item-removed")
	// Juliet's presence outlives her item, as a stranger's.
	if c, ok := m.Contact(juliet); !ok || c.InRoster || !c.Online() || m.Stats().Strangers != 1 {
		t.Fatalf("juliet %+v, stats %+v", c, m.Stats())
	}
	// And joins the roster again.
	m.SetItems("v8", []roster.Item{{JID: juliet}})
	if c, _ := m.Contact(juliet); !c.InRoster || !c.Item.JID.Equal(juliet.Bare()) || m.Stats().Strangers != 0 {
		t.Fatalf("juliet %+v, stats %+v", c, m.Stats())
	}
	items := slices.Collect(m.Items())
	if len(items) != 1 {
		t.Fatalf("items %+v", items)
	}
	checkStats(t, m)
}

func TestSnapshotsAreCopies(t *testing.T) {
	m, _ := newModel(t)
	m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "server-unavailable"))
	m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/balcony"/>`))
	before, _ := m.Contact(juliet)
	m.ApplyPresence(pres(t, `<presence from="%s"><show>xa</show></presence>`, juliet))
	m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/balcony" type="unavailable"/>`))
	if len(before.Resources) != 2 || before.Resources[0].Show != "" || len(before.Resources[0].Marks) != 1 {
		t.Fatalf("snapshot changed under the reader: %+v", before)
	}
}

func TestContactHelpers(t *testing.T) {
	m, _ := newModel(t)
	if _, ok := (roster.Contact{}).Best(); ok {
		t.Fatal("best of nothing")
	}
	m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/a"><priority>1</priority></presence>`))
	m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/b"><priority>5</priority></presence>`))
	m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/c"><priority>5</priority></presence>`))
	c, _ := m.Contact(juliet)
	if best, _ := c.Best(); best.JID.Resourcepart() != "b" || !c.Fresh() {
		t.Fatalf("best %s, fresh %v", best.JID, c.Fresh())
	}
	m.ApplyPresence(ann(t, "juliet@capulet.lit/c", "montague.lit", "server-unavailable"))
	if c, _ := m.Contact(juliet); c.Fresh() {
		t.Fatal("fresh with a marked resource")
	}
	n := 0
	for range m.Resources() {
		n++
	}
	if n != 3 {
		t.Fatalf("%d resources", n)
	}
}

// Readers take snapshots from other goroutines while the model changes;
// `go test -race` checks that this is safe.
func TestConcurrentReaders(t *testing.T) {
	m, _ := newModel(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for c := range m.Contacts() {
					for _, r := range c.Resources {
						_ = r.Fresh()
						for _, mk := range r.Marks {
							_ = mk.Condition
						}
					}
				}
				m.Resource(juliet)
				m.Stats()
			}
		})
	}
	for i := range 2000 {
		from := fmt.Sprintf("c%d@capulet.lit/r", i%50)
		switch i % 4 {
		case 0:
			m.ApplyPresence(pres(t, `<presence from="%s"/>`, from))
		case 1:
			m.ApplyPresence(ann(t, from, "montague.lit", "server-unavailable"))
		case 2:
			m.ApplyPresence(ann(t, from, "montague.lit", ""))
		case 3:
			m.ApplyPresence(pres(t, `<presence from="%s" type="unavailable"/>`, from))
		}
	}
	close(done)
	wg.Wait()
	checkStats(t, m)
}

func TestEventKindString(t *testing.T) {
	if roster.EventItemRemoved.String() != "item-removed" || roster.EventKind(0).String() != "unknown" || roster.EventKind(200).String() != "unknown" {
		t.Fatal("names")
	}
}

// The model files a presence under its JID in normal form, whatever the
// spelling on the wire, and under the new JID when a caller changed From
// after decoding.
func TestPresenceKeys(t *testing.T) {
	m, _ := newModel(t)
	expect(t, m.ApplyPresence(pres(t, `<presence from="Juliet@Capulet.LIT/balcony"/>`)), "available")
	expect(t, m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/balcony"><show>away</show></presence>`)), "updated")
	r, ok := m.Resource(jid.MustParse("juliet@capulet.lit/balcony"))
	if !ok || r.Show != presence.ShowAway {
		t.Fatalf("resource %+v, %v", r, ok)
	}
	p := pres(t, `<presence from="juliet@capulet.lit/balcony"/>`)
	p.From = jid.MustParse("nurse@capulet.lit/kitchen")
	expect(t, m.ApplyPresence(p), "available")
	if _, ok := m.Resource(jid.MustParse("nurse@capulet.lit/kitchen")); !ok {
		t.Fatal("the presence was not filed under its new From")
	}
	// A presence built by hand, not decoded.
	expect(t, m.ApplyPresence(&presence.Presence{From: jid.MustParse("zoë@capulet.lit/x")}), "available")
	expect(t, m.ApplyPresence(pres(t, `<presence from="Zoë@capulet.lit" type="unavailable"/>`)), "unavailable")
	expect(t, m.ApplyPresence(pres(t, `<presence from="JULIET@capulet.lit/balcony" type="unavailable"/>`)), "unavailable")
	checkStats(t, m)
	if s := m.Stats(); s.Resources != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// A presence that first fills the decoder's list of problems with junk and
// then carries malformed annotations is still a re-send: its annotations are
// rejected and the mark survives.
func TestRejectedPastProblemCap(t *testing.T) {
	m, _ := newModel(t)
	m.ApplyPresence(ann(t, juliet.String(), "montague.lit", "server-unavailable"))
	junk := strings.Repeat(`<delay xmlns="urn:xmpp:delay" stamp="yesterday"/>`, 8)
	bad := strings.Repeat(`<state-annotation xmlns="urn:xmpp:psa" from="juliet@capulet.lit"/>`, 10)
	evs := m.ApplyPresence(pres(t, `<presence from="%s"><status>Available</status>%s%s</presence>`, juliet, junk, bad))
	var rejected int
	for _, e := range evs {
		switch {
		case e.Kind == roster.EventRejected && errors.Is(e.Err, psa.ErrMalformed):
			rejected++
		case e.Kind == roster.EventRestored || e.Kind == roster.EventStale:
			t.Fatalf("event %+v", e)
		}
	}
	if rejected != presence.MaxAnnotations {
		t.Fatalf("%d malformed annotations reported, want %d: %+v", rejected, presence.MaxAnnotations, evs)
	}
	if r, _ := m.Resource(juliet); r.Fresh() {
		t.Fatal("the presence cleared montague.lit's mark")
	}
	checkStats(t, m)
}
