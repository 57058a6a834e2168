package mucwatch_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

const (
	service  = "chat.shakespeare.lit"
	roomAddr = "coven@chat.shakespeare.lit"
	ownSrv   = "montague.lit" // the account's own server
	nsMUC    = "http://jabber.org/protocol/muc#user"
)

var (
	account = jid.MustParse("romeo@montague.lit/lane")
	coven   = jid.MustParse(roomAddr)
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newModel(t testing.TB, opts ...mucwatch.Option) (*mucwatch.Model, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
	m := mucwatch.New(account, append([]mucwatch.Option{mucwatch.WithClock(clk.now)}, opts...)...)
	return m, clk
}

// occJID is the occupant JID of nick in coven.
func occJID(nick string) jid.JID { return jid.MustParse(roomAddr + "/" + nick) }

// pres decodes a presence written as XML; %s in the format are filled in.
func pres(t testing.TB, format string, args ...any) *presence.Presence {
	t.Helper()
	p, err := presence.Unmarshal([]byte(fmt.Sprintf(format, args...)))
	if err != nil {
		t.Fatalf("bad test presence: %v", err)
	}
	return &p
}

// x is a muc#user payload with an item and status codes.
func x(item string, codes ...int) string {
	var b strings.Builder
	b.WriteString(`<x xmlns="` + nsMUC + `">`)
	b.WriteString(item)
	for _, c := range codes {
		fmt.Fprintf(&b, `<status code="%d"/>`, c)
	}
	b.WriteString(`</x>`)
	return b.String()
}

const (
	participant = `<item affiliation="none" role="participant"/>`
	moderator   = `<item affiliation="owner" role="moderator"/>`
	gone        = `<item affiliation="none" role="none"/>`
)

// ann is a state-annotation element; condition "" makes an empty one.
func ann(annotator, condition string) string {
	cond := ""
	if condition != "" {
		cond = "<" + condition + "/>"
	}
	return `<state-annotation xmlns="urn:xmpp:psa" from="` + annotator + `">` + cond + `</state-annotation>`
}

// avail is the available presence of nick in coven with the given children.
func avail(t testing.TB, nick string, children ...string) *presence.Presence {
	t.Helper()
	return pres(t, `<presence from="%s/%s">%s</presence>`, roomAddr, nick, strings.Join(children, ""))
}

// unavail is the unavailable presence of nick in coven.
func unavail(t testing.TB, nick string, children ...string) *presence.Presence {
	t.Helper()
	return pres(t, `<presence from="%s/%s" type="unavailable">%s</presence>`, roomAddr, nick, strings.Join(children, ""))
}

// apply applies p and fails when the model did not handle it.
func apply(t testing.TB, m *mucwatch.Model, p *presence.Presence) []mucwatch.Event {
	t.Helper()
	evs, ok := m.ApplyPresence(p)
	if !ok {
		t.Fatalf("presence from %s not handled", p.From)
	}
	return evs
}

// join joins coven as romeo with the given other occupants and checks the
// events of the join.
func join(t testing.TB, m *mucwatch.Model, others ...string) {
	t.Helper()
	expect(t, m.Joining(occJID("romeo")), "joining")
	for _, nick := range others {
		expect(t, apply(t, m, avail(t, nick, x(participant))), "occupant-available")
	}
	expect(t, apply(t, m, avail(t, "romeo", x(moderator, 110))), "occupant-available,room-joined")
	checkModel(t, m)
}

// kinds lists the kinds of events, for compact assertions.
func kinds(evs []mucwatch.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Kind.String())
	}
	return strings.Join(s, ",")
}

func expect(t testing.TB, evs []mucwatch.Event, want string) {
	t.Helper()
	if got := kinds(evs); got != want {
		t.Fatalf("events %q, want %q (%+v)", got, want, evs)
	}
}

// count counts the events of one kind.
func count(evs []mucwatch.Event, k mucwatch.EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// state fetches coven's state.
func state(t testing.TB, m *mucwatch.Model) mucwatch.Room {
	t.Helper()
	r, ok := m.Room(coven)
	if !ok {
		t.Fatal("coven not tracked")
	}
	return r
}

// checkModel recomputes from the snapshots everything the model derives:
// its counts, each room's staleness and state, and the invariants of
// occupants and marks.
func checkModel(t testing.TB, m *mucwatch.Model) {
	t.Helper()
	var want mucwatch.Stats
	acct := m.Account()
	for r := range m.Rooms() {
		want.Rooms++
		if r.Joined() {
			want.Joined++
		}
		if r.Stale {
			want.StaleRooms++
		}
		in := r.State == mucwatch.StateJoining || r.Joined() || r.State == mucwatch.StateRejoining
		var (
			n, staleN, selves int
			selfMarked        bool
			seenJIDs          = map[string]bool{}
		)
		if got, want := r.Bytes, mucwatch.RecountBytes(m, r.JID); got != want {
			t.Fatalf("%s: Bytes %d, recounted %d", r.JID, got, want)
		}
		for o := range m.Occupants(r.JID) {
			n++
			if !o.Fresh() {
				staleN++
			}
			if o.Self {
				selves++
				selfMarked = !o.Fresh()
				if r.Joined() && o.Nick != r.Nick {
					t.Fatalf("%s: our occupant is %q, the room says %q", r.JID, o.Nick, r.Nick)
				}
			}
			if !o.JID.Bare().Equal(r.JID) || o.JID.Resourcepart() != o.Nick {
				t.Fatalf("occupant %s (nick %q) filed under %s", o.JID, o.Nick, r.JID)
			}
			if seenJIDs[o.JID.String()] {
				t.Fatalf("%s: two occupants %s", r.JID, o.JID)
			}
			seenJIDs[o.JID.String()] = true
			seen := map[string]bool{}
			for _, mk := range o.Marks {
				by := mk.By.String()
				if seen[by] || mk.Condition == "" {
					t.Fatalf("%s: bad marks %+v", o.JID, o.Marks)
				}
				if !mk.By.Equal(acct.Domain()) && !mk.By.Equal(r.JID.Domain()) && !mk.By.Equal(acct.Bare()) &&
					!mk.By.Equal(psa.InferredBy(r.JID)) {
					t.Fatalf("%s: mark by %s", o.JID, mk.By)
				}
				seen[by] = true
			}
			if got, ok := m.Occupant(o.JID); !ok || !got.JID.Equal(o.JID) {
				t.Fatalf("Occupant(%s) = %+v, %v", o.JID, got, ok)
			}
		}
		want.Occupants += n
		want.StaleOccupants += staleN
		if n != r.Occupants || staleN != r.StaleOccupants {
			t.Fatalf("%s: counts %d/%d, recomputed %d/%d", r.JID, r.Occupants, r.StaleOccupants, n, staleN)
		}
		if selves > 1 {
			t.Fatalf("%s: %d own occupants", r.JID, selves)
		}
		// Only our own place makes a room stale: its own marks, our own
		// occupant's, a self-ping; never another occupant's marks.
		derived := in && (r.Marks.Stale() || selfMarked || r.Verdict == mucwatch.VerdictNotJoined)
		if r.Stale != derived {
			t.Fatalf("%s: Stale %v, derived %v (%+v)", r.JID, r.Stale, derived, r)
		}
		if r.Joined() && (r.State == mucwatch.StateStale) != r.Stale {
			t.Fatalf("%s: state %s with Stale %v", r.JID, r.State, r.Stale)
		}
		if !in && (n > 0 || r.Marks.Stale() || r.Verdict != mucwatch.VerdictNone) {
			t.Fatalf("%s: %s with %d occupants, marks %+v, verdict %s", r.JID, r.State, n, r.Marks, r.Verdict)
		}
		if !m.Tracks(r.JID) {
			t.Fatalf("%s listed but not tracked", r.JID)
		}
	}
	if got := m.Stats(); got != want {
		t.Fatalf("Stats() = %+v, recomputed %+v", got, want)
	}
}

// markBy is a shortcut for a mark's annotator and condition.
func markBy(mk psa.Mark) string { return mk.By.String() + ":" + string(mk.Condition) }
