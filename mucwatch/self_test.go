package mucwatch_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
)

// joinAs joins coven under nick with the given other occupants.
func joinAs(t testing.TB, m *mucwatch.Model, nick string, others ...string) {
	t.Helper()
	expect(t, m.Joining(occJID(nick)), "joining")
	for _, o := range others {
		expect(t, apply(t, m, avail(t, o, x(participant))), "occupant-available")
	}
	expect(t, apply(t, m, avail(t, nick, x(moderator, 110))), "occupant-available,room-joined")
	checkModel(t, m)
}

// mustSelf returns our own occupant in coven and checks that it is nick's,
// and that the room's nick is nick too.
func mustSelf(t testing.TB, m *mucwatch.Model, nick string) mucwatch.Occupant {
	t.Helper()
	me, ok := m.Self(coven)
	if !ok || !me.Self || !me.JID.Equal(occJID(nick)) || me.Nick != nick {
		t.Fatalf("our own occupant %+v (%v), want %s", me, ok, occJID(nick))
	}
	if r := state(t, m); r.Nick != nick || !r.Joined() {
		t.Fatalf("room %+v, want joined as %q", r, nick)
	}
	if o, ok := m.Occupant(occJID(nick)); !ok || !o.Self {
		t.Fatalf("Occupant(%s) = %+v, %v", occJID(nick), o, ok)
	}
	return me
}

// The service keys occupants by their exact occupant JID: while we are
// Romeo, the nurse may join as ROMEO (Prosody lets her). She is another
// occupant; her presence, and her leaving, change nothing of ours.
func TestCaseVariantNickIsAnotherOccupant(t *testing.T) {
	for _, hers := range []string{"ROMEO", "romeo", "Ｒｏｍｅｏ", "Romeo "} {
		t.Run(hers, func(t *testing.T) {
			m, _ := newModel(t)
			joinAs(t, m, "Romeo", "juliet")
			before := mustSelf(t, m, "Romeo")

			evs := apply(t, m, avail(t, hers, `<show>away</show>`, x(participant)))
			expect(t, evs, "occupant-available")
			if o := evs[0].Occupant; o.Self || !o.JID.Equal(occJID(hers)) || o.Nick != hers {
				t.Fatalf("her occupant %+v", o)
			}
			if r := state(t, m); r.Occupants != 3 {
				t.Fatalf("room %+v: she and we are two occupants", r)
			}
			if o, ok := m.Occupant(occJID(hers)); !ok || o.Self || o.Show != presence.ShowAway {
				t.Fatalf("Occupant(%s) = %+v, %v", hers, o, ok)
			}
			if me := mustSelf(t, m, "Romeo"); !reflect.DeepEqual(me, before) {
				t.Fatalf("our own occupant changed: %+v, was %+v", me, before)
			}
			checkModel(t, m)

			expect(t, apply(t, m, avail(t, hers, `<show>dnd</show>`, x(participant))), "occupant-updated")
			evs = apply(t, m, unavail(t, hers, x(gone)))
			expect(t, evs, "occupant-unavailable")
			if !evs[0].JID.Equal(occJID(hers)) || evs[0].Occupant.Self {
				t.Fatalf("unavailable %+v", evs[0])
			}
			if me := mustSelf(t, m, "Romeo"); !reflect.DeepEqual(me, before) {
				t.Fatalf("our own occupant changed: %+v, was %+v", me, before)
			}
			if r := state(t, m); r.Occupants != 2 || r.State != mucwatch.StateJoined {
				t.Fatalf("room %+v", r)
			}
			checkModel(t, m)
		})
	}
}

// A presence from our own occupant JID without status 110 is not ours to
// believe (XEP-0045 puts 110 on every presence about ourselves): it changes
// nothing and is reported.
func TestNo110FromOurOwnJID(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    func(t *testing.T) *presence.Presence
	}{
		{"available", func(t *testing.T) *presence.Presence { return avail(t, "Romeo", `<show>xa</show>`, x(participant)) }},
		{"annotated", func(t *testing.T) *presence.Presence {
			return avail(t, "Romeo", x(participant), ann(ownSrv, "server-unavailable"))
		}},
		{"unavailable", func(t *testing.T) *presence.Presence { return unavail(t, "Romeo", x(gone)) }},
		{"kicked", func(t *testing.T) *presence.Presence { return unavail(t, "Romeo", x(gone, 307)) }},
		{"nick change", func(t *testing.T) *presence.Presence {
			return unavail(t, "Romeo", x(`<item affiliation="none" role="participant" nick="Montague"/>`, 303))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newModel(t)
			joinAs(t, m, "Romeo", "juliet")
			before := mustSelf(t, m, "Romeo")
			evs := apply(t, m, tc.p(t))
			expect(t, evs, "rejected")
			if !errors.Is(evs[0].Err, mucwatch.ErrNotSelf) || !evs[0].JID.Equal(occJID("Romeo")) {
				t.Fatalf("rejection %+v", evs[0])
			}
			if me := mustSelf(t, m, "Romeo"); !reflect.DeepEqual(me, before) {
				t.Fatalf("our own occupant changed: %+v, was %+v", me, before)
			}
			if r := state(t, m); r.Stale || r.State != mucwatch.StateJoined || r.Occupants != 2 {
				t.Fatalf("room %+v", r)
			}
			checkModel(t, m)
		})
	}
}

// Another occupant's nick change (303) into our own nick does not take our
// occupant: she is gone under her old nick, and what follows from our JID
// without 110 is refused.
func TestRenameIntoOurNick(t *testing.T) {
	m, _ := newModel(t)
	joinAs(t, m, "Romeo", "nurse")
	before := mustSelf(t, m, "Romeo")
	evs := apply(t, m, unavail(t, "nurse", x(`<item affiliation="none" role="participant" nick="Romeo"/>`, 303)))
	expect(t, evs, "occupant-unavailable,rejected")
	if evs[0].Occupant.Nick != "nurse" || !errors.Is(evs[1].Err, mucwatch.ErrNotSelf) {
		t.Fatalf("events %+v", evs)
	}
	expect(t, apply(t, m, avail(t, "Romeo", x(participant))), "rejected")
	if me := mustSelf(t, m, "Romeo"); !reflect.DeepEqual(me, before) {
		t.Fatalf("our own occupant changed: %+v, was %+v", me, before)
	}
	if r := state(t, m); r.Occupants != 1 {
		t.Fatalf("room %+v", r)
	}
	checkModel(t, m)

	// Into a case variant of our nick: that is another occupant.
	apply(t, m, avail(t, "nurse", x(participant)))
	evs = apply(t, m, unavail(t, "nurse", x(`<item affiliation="none" role="participant" nick="ROMEO"/>`, 303)))
	expect(t, evs, "nick-changed")
	if evs[0].Occupant.Self || !evs[0].JID.Equal(occJID("ROMEO")) {
		t.Fatalf("nick-changed %+v", evs[0])
	}
	mustSelf(t, m, "Romeo")
	checkModel(t, m)
}

// A mark on another occupant makes that occupant stale, never the room,
// whoever set it: the account's own server's word on one occupant may be the
// occupant's own forgery. Toggling it makes no room event, so no self-ping.
func TestForeignMarkDoesNotStaleRoom(t *testing.T) {
	for _, annotator := range []string{ownSrv, service} {
		t.Run(annotator, func(t *testing.T) {
			m, _ := newModel(t)
			joinAs(t, m, "Romeo", "nurse", "juliet")
			for i := range 3 {
				for _, nick := range []string{"nurse", "juliet"} {
					evs := apply(t, m, avail(t, nick, x(participant), ann(annotator, "server-unavailable")))
					expect(t, evs, "occupant-stale")
					if r := state(t, m); r.Stale || r.State != mucwatch.StateJoined {
						t.Fatalf("%d: a mark by %s on %s made the room stale: %+v", i, annotator, nick, r)
					}
				}
				for _, nick := range []string{"nurse", "juliet"} {
					expect(t, apply(t, m, avail(t, nick, x(participant), ann(annotator, ""))), "occupant-restored")
				}
				// A new delivery clears a mark as well: still no room event.
				apply(t, m, avail(t, "nurse", x(participant), ann(annotator, "connection-paused")))
				expect(t, apply(t, m, avail(t, "nurse", x(participant))), "occupant-restored")
				// A marked occupant that leaves restores nothing either.
				apply(t, m, avail(t, "juliet", x(participant), ann(annotator, "server-unavailable")))
				expect(t, apply(t, m, unavail(t, "juliet", x(gone))), "occupant-unavailable")
				expect(t, apply(t, m, avail(t, "juliet", x(participant))), "occupant-available")
				checkModel(t, m)
			}
			if st := m.Stats(); st.StaleRooms != 0 || st.StaleOccupants != 0 {
				t.Fatalf("stats %+v", st)
			}
			// The same mark on our own occupant (status 110) does make the room
			// stale, and its clearing is when the client self-pings.
			expect(t, apply(t, m, avail(t, "Romeo", x(moderator, 110), ann(annotator, "server-unavailable"))), "occupant-stale,room-stale")
			evs := apply(t, m, avail(t, "Romeo", x(moderator, 110), ann(annotator, "")))
			expect(t, evs, "occupant-restored,room-restored")
			if !evs[1].Resent || markBy(evs[1].Mark) != annotator+":server-unavailable" {
				t.Fatalf("room-restored %+v", evs[1])
			}
			checkModel(t, m)
		})
	}
}

// genForeign builds, from random numbers, a presence of coven that does not
// carry status 110: any type, nick (ours, its case and width variants,
// others), status codes, nick change, annotation and show.
func genForeign(t testing.TB, rng *rand.Rand) *presence.Presence {
	nicks := []string{"Romeo", "ROMEO", "romeo", "Ｒｏｍｅｏ", "Romeo ", "nurse", "Nurse", "juliet", "tybalt"}
	annotators := []string{ownSrv, service, "capulet.lit", roomAddr}
	conds := []string{"", "server-unavailable", "connection-paused", "odd"}
	types := []string{"", "", "", "unavailable", "unavailable", "subscribe", "probe"}
	codes := []int{100, 201, 210, 301, 303, 307, 321, 322, 332, 333}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }

	typ := pick(types)
	var b strings.Builder
	if rng.IntN(2) == 0 {
		fmt.Fprintf(&b, `<show>%s</show>`, pick([]string{"away", "dnd", "xa", "chat"}))
	}
	if rng.IntN(4) > 0 {
		fmt.Fprintf(&b, `<x xmlns="%s"><item affiliation="none" role="%s"`, nsMUC, pick([]string{"participant", "moderator", "none"}))
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&b, ` nick="%s"`, pick(nicks))
		}
		b.WriteString(`/>`)
		for _, c := range codes {
			if rng.IntN(4) == 0 {
				fmt.Fprintf(&b, `<status code="%d"/>`, c)
			}
		}
		b.WriteString(`</x>`)
	}
	for range rng.IntN(3) {
		fmt.Fprintf(&b, `<state-annotation xmlns="urn:xmpp:psa" from="%s">%s</state-annotation>`, pick(annotators), cond(pick(conds)))
	}
	from := roomAddr + "/" + pick(nicks)
	if rng.IntN(20) == 0 {
		from = roomAddr
	}
	return pres(t, `<presence from="%s" type="%s">%s</presence>`, from, typ, b.String())
}

// No sequence of presences without status 110 changes our own occupant, our
// nick, the room's state or its staleness, or makes a room event: checked on
// many random sequences (the same every run), from a fresh room and from
// one whose own occupant is stale.
func TestNo110NeverTouchesSelf(t *testing.T) {
	rng := rand.New(rand.NewPCG(310, 45))
	for seq := range 400 {
		m, _ := newModel(t, mucwatch.WithMaxOccupants(4))
		joinAs(t, m, "Romeo", "nurse")
		if seq%2 == 1 {
			apply(t, m, avail(t, "Romeo", x(moderator, 110), ann(service, "connection-paused")))
		}
		me := mustSelf(t, m, "Romeo")
		room := state(t, m)
		for step := range 40 {
			p := genForeign(t, rng)
			evs := apply(t, m, p)
			for _, e := range evs {
				switch e.Kind {
				case mucwatch.EventRoomStale, mucwatch.EventRoomRestored, mucwatch.EventRoomJoined, mucwatch.EventRoomKicked,
					mucwatch.EventRoomDropped, mucwatch.EventRoomLeft, mucwatch.EventNickChanged:
					if e.Kind != mucwatch.EventNickChanged || e.Occupant.Self {
						t.Fatalf("seq %d step %d: %s: event %+v", seq, step, p.From, e)
					}
				}
				if e.Occupant.Self {
					t.Fatalf("seq %d step %d: %s: event about our own occupant %+v", seq, step, p.From, e)
				}
			}
			got, ok := m.Self(coven)
			if !ok || !reflect.DeepEqual(got, me) {
				t.Fatalf("seq %d step %d: presence from %s (%q) changed our own occupant: %+v, was %+v", seq, step, p.From, kinds(evs), got, me)
			}
			r := state(t, m)
			if r.Nick != room.Nick || r.State != room.State || r.Stale != room.Stale || r.Verdict != room.Verdict || !reflect.DeepEqual(r.Marks, room.Marks) {
				t.Fatalf("seq %d step %d: presence from %s changed the room: %+v, was %+v", seq, step, p.From, r, room)
			}
			checkModel(t, m)
		}
	}
}
