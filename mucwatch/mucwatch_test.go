package mucwatch_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

func TestJoinLifecycle(t *testing.T) {
	m, clk := newModel(t)
	evs := m.Joining(occJID("romeo"))
	expect(t, evs, "joining")
	if r := state(t, m); r.State != mucwatch.StateJoining || r.Nick != "romeo" || r.Stale {
		t.Fatalf("room %+v", r)
	}
	if !m.Tracks(occJID("juliet")) || !m.Tracks(coven) || m.Tracks(jid.MustParse("other@chat.shakespeare.lit/x")) {
		t.Fatal("Tracks")
	}

	// The occupant list, then our own presence.
	evs = apply(t, m, avail(t, "firstwitch", `<show>away</show><status>Double, double</status>`,
		x(`<item affiliation="owner" role="moderator" jid="crone1@shakespeare.lit/desktop"/>`), `<occupant-id xmlns="urn:xmpp:occupant-id:0" id="oid1"/>`))
	expect(t, evs, "occupant-available")
	o := evs[0].Occupant
	if o.Nick != "firstwitch" || o.Role != "moderator" || o.Affiliation != "owner" || o.RealJID.String() != "crone1@shakespeare.lit/desktop" ||
		o.OccupantID != "oid1" || o.Show != presence.ShowAway || o.StatusText() != "Double, double" || o.Self || !o.Fresh() || !o.Updated.Equal(clk.t) {
		t.Fatalf("occupant %+v", o)
	}
	expect(t, apply(t, m, avail(t, "secondwitch", x(participant))), "occupant-available")
	if state(t, m).State != mucwatch.StateJoining {
		t.Fatal("joined before our own presence")
	}
	evs = apply(t, m, avail(t, "romeo", x(participant, 110, 100)))
	expect(t, evs, "occupant-available,room-joined")
	if !evs[1].Occupant.Self || !evs[1].JID.Equal(occJID("romeo")) || !slices.Equal(evs[1].Codes, []int{110, 100}) {
		t.Fatalf("room-joined %+v", evs[1])
	}
	r := state(t, m)
	if r.State != mucwatch.StateJoined || !r.Joined() || r.Occupants != 3 || r.Stale || r.Created || !r.Updated.Equal(clk.t) {
		t.Fatalf("room %+v", r)
	}
	if me, ok := m.Self(coven); !ok || me.Nick != "romeo" {
		t.Fatalf("self %+v", me)
	}
	checkModel(t, m)

	// Updates: the same content again says nothing; a change is an update.
	clk.t = clk.t.Add(time.Second)
	expect(t, apply(t, m, avail(t, "secondwitch", x(participant), `<delay xmlns="urn:xmpp:delay" stamp="2026-11-24T09:00:00Z"/>`)), "")
	expect(t, apply(t, m, avail(t, "secondwitch", `<show>dnd</show>`, x(participant))), "occupant-updated")
	evs = apply(t, m, avail(t, "secondwitch", `<show>dnd</show>`, x(moderator)))
	expect(t, evs, "occupant-updated")
	if evs[0].Occupant.Role != "moderator" {
		t.Fatalf("role %q", evs[0].Occupant.Role)
	}
	// A re-send without muc#user data keeps the role.
	expect(t, apply(t, m, avail(t, "secondwitch", `<show>dnd</show>`)), "")

	// An occupant leaves.
	evs = apply(t, m, unavail(t, "secondwitch", x(gone)))
	expect(t, evs, "occupant-unavailable")
	if evs[0].Occupant.Show != presence.ShowDND || !evs[0].Fresh() {
		t.Fatalf("unavailable %+v", evs[0])
	}
	// Unavailable for someone unknown is a no-op.
	expect(t, apply(t, m, unavail(t, "secondwitch", x(gone))), "")
	checkModel(t, m)

	// We leave; presence until the confirmation is ignored.
	expect(t, m.Leaving(coven), "leaving")
	if r := state(t, m); r.State != mucwatch.StateLeft || r.Occupants != 0 {
		t.Fatalf("room %+v", r)
	}
	expect(t, m.Leaving(coven), "")
	expect(t, apply(t, m, avail(t, "thirdwitch", x(participant))), "")
	expect(t, apply(t, m, unavail(t, "firstwitch", x(gone))), "")
	evs = apply(t, m, unavail(t, "romeo", x(gone, 110)))
	expect(t, evs, "room-left")
	if _, ok := m.Room(coven); ok || m.Tracks(coven) {
		t.Fatal("room still tracked")
	}
	if _, ok := m.ApplyPresence(avail(t, "romeo", x(participant, 110))); ok {
		t.Fatal("presence from a forgotten room handled")
	}
	checkModel(t, m)
}

// Self presence is recognized by status 110, never by nick.
func TestSelfOnlyByStatus110(t *testing.T) {
	m, _ := newModel(t)
	m.Joining(occJID("romeo"))
	expect(t, apply(t, m, avail(t, "romeo", x(participant))), "occupant-available")
	if r := state(t, m); r.State != mucwatch.StateJoining {
		t.Fatalf("joined without status 110: %+v", r)
	}
	if _, ok := m.Self(coven); ok {
		t.Fatal("self without status 110")
	}
	// Our presence under any nick is ours.
	evs := apply(t, m, avail(t, "romeo", x(participant, 110)))
	expect(t, evs, "occupant-updated,room-joined")
	if !evs[0].Occupant.Self {
		t.Fatalf("%+v", evs[0])
	}
	checkModel(t, m)
}

func TestRoomCreated(t *testing.T) {
	m, _ := newModel(t)
	m.Joining(occJID("romeo"))
	evs := apply(t, m, avail(t, "romeo", x(moderator, 201, 110)))
	expect(t, evs, "occupant-available,room-joined,room-created")
	if r := state(t, m); !r.Created || r.State != mucwatch.StateJoined {
		t.Fatalf("room %+v", r)
	}
}

// Status 210: the service assigned another nick than the one we asked for.
func TestNickAssigned(t *testing.T) {
	m, _ := newModel(t)
	m.Joining(occJID("romeo"))
	apply(t, m, avail(t, "juliet", x(participant)))
	evs := apply(t, m, avail(t, "Romeo-1", x(participant, 110, 210)))
	expect(t, evs, "occupant-available,nick-changed,room-joined")
	if e := evs[1]; e.OldNick != "romeo" || e.Occupant.Nick != "Romeo-1" || !e.JID.Equal(occJID("Romeo-1")) || !slices.Contains(e.Codes, 210) {
		t.Fatalf("nick-changed %+v", e)
	}
	if r := state(t, m); r.Nick != "Romeo-1" || r.Occupants != 2 {
		t.Fatalf("room %+v", r)
	}
	// A rejoin that gets yet another nick: the old own occupant is gone.
	m.Rejoining(coven)
	apply(t, m, avail(t, "juliet", x(participant)))
	evs = apply(t, m, avail(t, "Romeo-2", x(participant, 110, 210)))
	expect(t, evs, "occupant-unavailable,occupant-available,nick-changed,room-joined")
	if evs[0].Occupant.Nick != "Romeo-1" || !evs[0].Occupant.Self {
		t.Fatalf("old self %+v", evs[0])
	}
	if r := state(t, m); r.Nick != "Romeo-2" || r.Occupants != 2 {
		t.Fatalf("room %+v", r)
	}
	checkModel(t, m)
}

// Status 303: a nick change, for us and for others.
func TestNickChange(t *testing.T) {
	t.Run("self", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m, "juliet")
		evs := apply(t, m, unavail(t, "romeo", x(`<item affiliation="none" role="participant" nick="oldhag"/>`, 303, 110)))
		expect(t, evs, "nick-changed")
		e := evs[0]
		if e.OldNick != "romeo" || !e.JID.Equal(occJID("oldhag")) || !e.Occupant.Self || e.Occupant.Nick != "oldhag" {
			t.Fatalf("nick-changed %+v", e)
		}
		if r := state(t, m); r.State != mucwatch.StateJoined || r.Nick != "oldhag" || r.Occupants != 2 {
			t.Fatalf("room %+v", r)
		}
		if _, ok := m.Occupant(occJID("romeo")); ok {
			t.Fatal("old nick still there")
		}
		checkModel(t, m)
		// The available presence from the new nick says nothing new.
		expect(t, apply(t, m, avail(t, "oldhag", x(moderator, 110))), "")
		checkModel(t, m)
	})
	t.Run("other", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m, "juliet", "nurse")
		apply(t, m, avail(t, "juliet", x(participant), ann(service, "server-unavailable")))
		evs := apply(t, m, unavail(t, "juliet", x(`<item affiliation="none" role="participant" nick="Capulet"/>`, 303)))
		expect(t, evs, "nick-changed")
		if e := evs[0]; e.OldNick != "juliet" || e.Occupant.Nick != "Capulet" || e.Occupant.Self || e.Occupant.Fresh() {
			t.Fatalf("nick-changed %+v (the mark goes with the occupant)", e)
		}
		expect(t, apply(t, m, avail(t, "Capulet", x(participant))), "occupant-restored")
		// A change of case only is a nick change like any other.
		evs = apply(t, m, unavail(t, "Capulet", x(`<item affiliation="none" role="participant" nick="capulet"/>`, 303)))
		expect(t, evs, "nick-changed")
		if r := state(t, m); r.Occupants != 3 {
			t.Fatalf("room %+v", r)
		}
		if _, ok := m.Occupant(occJID("Capulet")); ok {
			t.Fatal("the old spelling is still an occupant")
		}
		// Into a nick we still list: the service says it is free, so the old
		// holder is gone. A nick in another case is another nick.
		evs = apply(t, m, unavail(t, "capulet", x(`<item affiliation="none" role="participant" nick="Nurse"/>`, 303)))
		expect(t, evs, "nick-changed")
		evs = apply(t, m, unavail(t, "Nurse", x(`<item affiliation="none" role="participant" nick="nurse"/>`, 303)))
		expect(t, evs, "occupant-unavailable,nick-changed")
		if evs[0].Occupant.Nick != "nurse" || evs[1].Occupant.Nick != "nurse" || evs[1].OldNick != "Nurse" {
			t.Fatalf("events %+v", evs)
		}
		// A new nick that is no valid resourcepart: the occupant just leaves.
		// (U+0378 is unassigned, which PRECIS refuses.)
		evs = apply(t, m, unavail(t, "nurse", x(`<item affiliation="none" role="participant" nick="`+"\u0378"+`"/>`, 303)))
		expect(t, evs, "occupant-unavailable")
		checkModel(t, m)
	})
}

// Our own removal, by status code.
func TestSelfRemoval(t *testing.T) {
	for _, tc := range []struct {
		name     string
		children string
		kind     string
		state    mucwatch.RoomState
		check    func(mucwatch.Removal) bool
	}{
		{"banned", x(`<item affiliation="outcast" role="none"><actor nick="Hecate"/><reason>Treason</reason></item>`, 301, 110),
			"room-kicked", mucwatch.StateKicked, func(r mucwatch.Removal) bool {
				return r.Has(301) && r.Actor == "Hecate" && r.Reason == "Treason" && !r.Technical()
			}},
		{"kicked", x(`<item affiliation="none" role="none"><reason>Avaunt</reason></item>`, 307, 110),
			"room-kicked", mucwatch.StateKicked, func(r mucwatch.Removal) bool { return r.Has(307) && r.Reason == "Avaunt" }},
		{"affiliation change", x(gone, 321, 110), "room-kicked", mucwatch.StateKicked, func(r mucwatch.Removal) bool { return r.Has(321) }},
		{"members only", x(gone, 322, 110), "room-kicked", mucwatch.StateKicked, func(r mucwatch.Removal) bool { return r.Has(322) }},
		{"no reason given", x(gone, 110), "room-kicked", mucwatch.StateKicked, func(r mucwatch.Removal) bool { return r.Has(110) && !r.Technical() }},
		{"system shutdown", x(gone, 110, 332), "room-dropped", mucwatch.StateKicked, func(r mucwatch.Removal) bool { return r.Has(332) && r.Technical() }},
		{"technical problem", x(gone, 110, 333), "room-dropped", mucwatch.StateKicked, func(r mucwatch.Removal) bool { return r.Has(333) && r.Technical() }},
		{"destroyed", x(gone+`<destroy jid="heath@chat.shakespeare.lit"><reason>Macbeth doth come.</reason></destroy>`, 110),
			"room-destroyed", mucwatch.StateDestroyed, func(r mucwatch.Removal) bool {
				return r.Venue.String() == "heath@chat.shakespeare.lit" && r.Reason == "Macbeth doth come."
			}},
		{"destroyed without 110 or venue", x(gone + `<destroy/>`), "room-destroyed", mucwatch.StateDestroyed,
			func(r mucwatch.Removal) bool { return r.Venue.Equal(jid.JID{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newModel(t)
			join(t, m, "firstwitch", "secondwitch")
			// Make the room stale too: leaving it must not leave a stale count.
			apply(t, m, avail(t, "firstwitch", x(participant), ann(ownSrv, "server-unavailable")))
			apply(t, m, avail(t, "romeo", x(moderator, 110), ann(ownSrv, "server-unavailable")))
			if !state(t, m).Stale {
				t.Fatal("not stale")
			}
			evs := apply(t, m, unavail(t, "romeo", tc.children))
			expect(t, evs, tc.kind)
			e := evs[0]
			if !tc.check(e.Removal) || !e.Occupant.Self || e.Occupant.Nick != "romeo" {
				t.Fatalf("event %+v", e)
			}
			r := state(t, m)
			if r.State != tc.state || r.Occupants != 0 || r.Stale || r.Joined() || !tc.check(r.Removal) {
				t.Fatalf("room %+v", r)
			}
			checkModel(t, m)
			// Presence from a room we are out of is ignored.
			expect(t, apply(t, m, avail(t, "firstwitch", x(participant))), "")
			// We may join it again (or the client rejoins it after a delay).
			expect(t, m.Rejoining(coven), "rejoining")
			expect(t, apply(t, m, avail(t, "romeo", x(participant, 110))), "occupant-available,room-joined")
			if r := state(t, m); r.State != mucwatch.StateJoined || len(r.Removal.Codes) != 0 {
				t.Fatalf("room %+v", r)
			}
			checkModel(t, m)
		})
	}
}

// Other occupants' removal, by status code: the room does not change.
func TestOccupantRemoval(t *testing.T) {
	for _, code := range []int{301, 307, 321, 322, 332, 333} {
		m, _ := newModel(t)
		join(t, m, "hecate")
		evs := apply(t, m, unavail(t, "hecate", x(`<item affiliation="none" role="none"><actor nick="romeo"/><reason>Begone</reason></item>`, code)))
		expect(t, evs, "occupant-unavailable")
		e := evs[0]
		if !slices.Equal(e.Codes, []int{code}) || !e.Removal.Has(code) || e.Removal.Actor != "romeo" || e.Removal.Reason != "Begone" || e.Occupant.Nick != "hecate" {
			t.Fatalf("%d: event %+v", code, e)
		}
		if r := state(t, m); r.State != mucwatch.StateJoined || r.Occupants != 1 {
			t.Fatalf("%d: room %+v", code, r)
		}
		checkModel(t, m)
	}
}

func TestJoinErrors(t *testing.T) {
	for _, tc := range []struct {
		condition stanza.Condition
		sentinel  error
	}{
		{stanza.Conflict, mucwatch.ErrNickInUse},
		{stanza.NotAuthorized, mucwatch.ErrPasswordRequired},
		{stanza.RegistrationRequired, mucwatch.ErrMembersOnly},
		{stanza.Forbidden, mucwatch.ErrBanned},
		{stanza.ItemNotFound, mucwatch.ErrRoomNotFound},
		{stanza.ServiceUnavailable, mucwatch.ErrRoomFull},
		{stanza.NotAllowed, mucwatch.ErrNotAllowed},
		{stanza.JIDMalformed, mucwatch.ErrNickRequired},
		{stanza.NotAcceptable, mucwatch.ErrNickReserved},
		{stanza.PolicyViolation, nil},
		{"a-condition-from-the-future", nil},
	} {
		t.Run(string(tc.condition), func(t *testing.T) {
			m, _ := newModel(t)
			m.Joining(occJID("romeo"))
			apply(t, m, avail(t, "juliet", x(participant)))
			evs := apply(t, m, pres(t, `<presence from="%s/romeo" type="error"><x xmlns="http://jabber.org/protocol/muc"/>`+
				`<error type="cancel"><%s xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">No way</text></error></presence>`,
				roomAddr, tc.condition))
			expect(t, evs, "room-join-failed")
			e := evs[0]
			var je *mucwatch.JoinError
			if !errors.As(e.Err, &je) || je.Condition != tc.condition || je.Text != "No way" || !je.Room.Equal(coven) || !e.JID.Equal(occJID("romeo")) {
				t.Fatalf("event %+v", e)
			}
			if !errors.Is(e.Err, stanza.Error{Condition: tc.condition}) {
				t.Fatalf("%v does not match its stanza error", e.Err)
			}
			for _, s := range []error{mucwatch.ErrNickInUse, mucwatch.ErrPasswordRequired, mucwatch.ErrMembersOnly, mucwatch.ErrBanned,
				mucwatch.ErrRoomNotFound, mucwatch.ErrRoomFull, mucwatch.ErrNotAllowed, mucwatch.ErrNickRequired, mucwatch.ErrNickReserved} {
				if got := errors.Is(e.Err, s); got != (s == tc.sentinel) {
					t.Fatalf("errors.Is(%v, %v) = %v", e.Err, s, got)
				}
			}
			if _, ok := m.Room(coven); ok || m.Stats() != (mucwatch.Stats{}) {
				t.Fatalf("room still tracked: %+v", m.Stats())
			}
		})
	}
	t.Run("no condition, from the room, while rejoining", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m, "juliet")
		m.Rejoining(coven)
		evs := apply(t, m, pres(t, `<presence from="%s" type="error"/>`, roomAddr))
		expect(t, evs, "room-join-failed")
		var je *mucwatch.JoinError
		if !errors.As(evs[0].Err, &je) || je.Condition != stanza.UndefinedCondition || !evs[0].JID.Equal(occJID("romeo")) {
			t.Fatalf("event %+v", evs[0])
		}
		checkModel(t, m)
	})
	t.Run("while joined", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m, "juliet")
		// A nick change refused: the room does not change.
		evs := apply(t, m, pres(t, `<presence from="%s/juliet" type="error"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`, roomAddr))
		expect(t, evs, "room-error")
		if !errors.Is(evs[0].Err, mucwatch.ErrNickInUse) || state(t, m).State != mucwatch.StateJoined {
			t.Fatalf("event %+v", evs[0])
		}
		checkModel(t, m)
	})
}

// The two annotators of a room occupant: the MUC service (its link to the
// occupant's server) and the account's own server (its link to the MUC
// service). Each clears only its own mark. On another occupant neither
// makes the room stale; on our own occupant either does.
func TestTwoAnnotatorsOnOneOccupant(t *testing.T) {
	m, clk := newModel(t)
	join(t, m, "juliet")
	clk.t = clk.t.Add(time.Minute)
	since := clk.t

	evs := apply(t, m, avail(t, "juliet", x(participant), ann(service, "server-unavailable")))
	expect(t, evs, "occupant-stale")
	if markBy(evs[0].Mark) != service+":server-unavailable" || !evs[0].Mark.Since.Equal(since) || evs[0].Fresh() {
		t.Fatalf("event %+v", evs[0])
	}
	if r := state(t, m); r.Stale || r.StaleOccupants != 1 {
		t.Fatalf("the service's mark on another occupant made the room stale: %+v", r)
	}

	evs = apply(t, m, avail(t, "juliet", x(participant), ann(ownSrv, "server-unavailable")))
	expect(t, evs, "occupant-stale")
	if markBy(evs[0].Mark) != ownSrv+":server-unavailable" {
		t.Fatalf("occupant-stale %+v", evs[0])
	}
	if o, _ := m.Occupant(occJID("juliet")); len(o.Marks) != 2 {
		t.Fatalf("marks %+v", o.Marks)
	}
	if r := state(t, m); r.State != mucwatch.StateJoined || r.Stale {
		t.Fatalf("our server's mark on another occupant made the room stale: %+v", r)
	}
	checkModel(t, m)

	// The service's link is back: its mark goes, ours stays.
	evs = apply(t, m, avail(t, "juliet", x(participant), ann(service, "")))
	expect(t, evs, "occupant-restored")
	if evs[0].Fresh() || markBy(evs[0].Mark) != service+":server-unavailable" {
		t.Fatalf("event %+v", evs[0])
	}
	evs = apply(t, m, avail(t, "juliet", x(participant), ann(ownSrv, "")))
	expect(t, evs, "occupant-restored")
	if !evs[0].Fresh() || !evs[0].Resent {
		t.Fatalf("events %+v", evs)
	}

	// On our own occupant: the room is stale from the first mark to the
	// last, and restored (with Resent: the client self-pings) when the last
	// goes.
	evs = apply(t, m, avail(t, "romeo", x(moderator, 110), ann(service, "connection-paused")))
	expect(t, evs, "occupant-stale,room-stale")
	if markBy(evs[1].Mark) != service+":connection-paused" {
		t.Fatalf("room-stale %+v", evs[1])
	}
	expect(t, apply(t, m, avail(t, "romeo", x(moderator, 110), ann(ownSrv, "server-unavailable"))), "occupant-stale")
	expect(t, apply(t, m, avail(t, "romeo", x(moderator, 110), ann(service, ""))), "occupant-restored")
	if r := state(t, m); r.State != mucwatch.StateStale || !r.Stale {
		t.Fatalf("room %+v", r)
	}
	evs = apply(t, m, avail(t, "romeo", x(moderator, 110), ann(ownSrv, "")))
	expect(t, evs, "occupant-restored,room-restored")
	if markBy(evs[1].Mark) != ownSrv+":server-unavailable" || !evs[1].Resent {
		t.Fatalf("events %+v", evs)
	}
	checkModel(t, m)

	// A new delivery (no annotation) clears every mark at once.
	apply(t, m, avail(t, "romeo", x(moderator, 110), ann(service, "connection-paused")))
	apply(t, m, avail(t, "romeo", x(moderator, 110), ann(ownSrv, "server-unavailable")))
	evs = apply(t, m, avail(t, "romeo", `<show>chat</show>`, x(moderator, 110)))
	expect(t, evs, "occupant-updated,occupant-restored,occupant-restored,room-restored")
	if evs[3].Resent || evs[0].Resent {
		t.Fatalf("a new delivery is no re-send: %+v", evs)
	}
	checkModel(t, m)
}

// Our own server marks every occupant of the room when its link to the
// service is down, ours included: the room is stale because of our own
// occupant's mark, and only that one.
func TestOwnServerMarksRoom(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "a", "b", "c")
	expect(t, apply(t, m, avail(t, "a", x(participant), ann(ownSrv, "server-unavailable"))), "occupant-stale")
	expect(t, apply(t, m, avail(t, "romeo", x(moderator, 110), ann(ownSrv, "server-unavailable"))), "occupant-stale,room-stale")
	expect(t, apply(t, m, avail(t, "b", x(participant), ann(ownSrv, "server-unavailable"))), "occupant-stale")
	expect(t, apply(t, m, avail(t, "a", x(participant), ann(ownSrv, ""))), "occupant-restored")
	evs := apply(t, m, avail(t, "romeo", x(moderator, 110), ann(ownSrv, "")))
	expect(t, evs, "occupant-restored,room-restored")
	if markBy(evs[1].Mark) != ownSrv+":server-unavailable" || !evs[1].Resent {
		t.Fatalf("room-restored %+v", evs[1])
	}
	// The last marked occupant leaves: nothing more about the room.
	expect(t, apply(t, m, unavail(t, "b", x(gone))), "occupant-unavailable")
	checkModel(t, m)
}

// Any mark on our own occupant makes the room stale, whoever set it.
func TestMarkOnSelf(t *testing.T) {
	for _, annotator := range []string{service, ownSrv} {
		m, _ := newModel(t)
		join(t, m, "juliet")
		evs := apply(t, m, avail(t, "romeo", x(moderator, 110), ann(annotator, "connection-paused")))
		expect(t, evs, "occupant-stale,room-stale")
		if markBy(evs[1].Mark) != annotator+":connection-paused" || state(t, m).State != mucwatch.StateStale {
			t.Fatalf("%s: %+v", annotator, evs)
		}
		checkModel(t, m)
		evs = apply(t, m, avail(t, "romeo", x(moderator, 110), ann(annotator, "")))
		expect(t, evs, "occupant-restored,room-restored")
		checkModel(t, m)
		// Our own occupant leaving the list (Sweep) restores the room as well.
		apply(t, m, avail(t, "romeo", x(moderator, 110), ann(annotator, "connection-paused")))
		m.Rejoining(coven)
		evs = m.Sweep(coven)
		if count(evs, mucwatch.EventOccupantUnavailable) != 2 || count(evs, mucwatch.EventRoomRestored) != 1 {
			t.Fatalf("sweep %+v", evs)
		}
		checkModel(t, m)
	}
}

// Our stream drops; after the reconnect the client rejoins; the occupant
// list refreshes who is still there, and our own presence removes the
// others.
func TestDisconnectAndRejoin(t *testing.T) {
	m, clk := newModel(t)
	join(t, m, "juliet", "nurse", "tybalt")
	apply(t, m, avail(t, "tybalt", x(participant), ann(service, "server-unavailable")))
	other := jid.MustParse("heath@chat.shakespeare.lit")
	m.Joining(jid.MustParse("heath@chat.shakespeare.lit/romeo"))
	m.Joining(jid.MustParse("gone@chat.shakespeare.lit/romeo"))
	m.Leaving(jid.MustParse("gone@chat.shakespeare.lit"))

	clk.t = clk.t.Add(time.Minute)
	evs := m.MarkDisconnected()
	if count(evs, mucwatch.EventRoomStale) != 2 || count(evs, mucwatch.EventOccupantStale) != 4 || count(evs, mucwatch.EventRoomLeft) != 1 || len(evs) != 7 {
		t.Fatalf("events %q", kinds(evs))
	}
	for _, e := range evs {
		if e.Kind == mucwatch.EventRoomLeft {
			continue
		}
		if e.Mark.Condition != psa.LocalDisconnected || !e.Mark.By.Equal(account.Bare()) || !e.Mark.Since.Equal(clk.t) {
			t.Fatalf("event %+v", e)
		}
	}
	r := state(t, m)
	if r.State != mucwatch.StateStale || !r.Stale || r.StaleOccupants != 4 || len(r.Marks) != 1 {
		t.Fatalf("room %+v", r)
	}
	// A second drop before the reconnect changes nothing.
	expect(t, m.MarkDisconnected(), "")
	checkModel(t, m)

	// After the reconnect.
	clk.t = clk.t.Add(time.Minute)
	expect(t, m.Rejoining(coven), "rejoining")
	if r := state(t, m); r.State != mucwatch.StateRejoining || !r.Stale {
		t.Fatalf("room %+v", r)
	}
	expect(t, apply(t, m, avail(t, "juliet", x(participant))), "occupant-restored")
	// The service still cannot reach tybalt's server: it re-sends him
	// annotated, which clears our mark but not its own.
	evs = apply(t, m, avail(t, "tybalt", x(participant), ann(service, "server-unavailable")))
	expect(t, evs, "occupant-restored")
	if evs[0].Mark.Condition != psa.LocalDisconnected || evs[0].Fresh() {
		t.Fatalf("tybalt %+v", evs[0])
	}
	evs = apply(t, m, avail(t, "romeo", x(moderator, 110)))
	expect(t, evs, "occupant-restored,occupant-unavailable,room-joined,room-restored")
	if evs[1].Occupant.Nick != "nurse" || evs[3].Mark.Condition != psa.LocalDisconnected {
		t.Fatalf("events %+v", evs)
	}
	r = state(t, m)
	if r.State != mucwatch.StateJoined || r.Stale || r.Occupants != 3 || r.StaleOccupants != 1 || len(r.Marks) != 0 {
		t.Fatalf("room %+v", r)
	}
	checkModel(t, m)

	// The other room never completed its join: it is still joining, and
	// stale until it does.
	h, _ := m.Room(other)
	if h.State != mucwatch.StateJoining || !h.Stale {
		t.Fatalf("heath %+v", h)
	}
	expect(t, m.Rejoining(other), "rejoining")
	if h, _ := m.Room(other); h.State != mucwatch.StateJoining {
		t.Fatalf("heath %+v", h)
	}
	evs = apply(t, m, pres(t, `<presence from="heath@chat.shakespeare.lit/romeo">%s</presence>`, x(participant, 110)))
	expect(t, evs, "occupant-available,room-joined,room-restored")
	checkModel(t, m)
}

// Our stream drops and is resumed (XEP-0198): the service never saw us
// leave, the presences it sent meanwhile are replayed, and
// ClearDisconnected makes the room and every occupant fresh again, without
// a rejoin or a sweep; marks of others stay.
func TestDisconnectAndResume(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet", "nurse", "tybalt")
	apply(t, m, avail(t, "tybalt", x(participant), ann(service, "server-unavailable")))
	m.MarkDisconnected()

	// Replayed: the nurse changed her status during the gap.
	expect(t, apply(t, m, avail(t, "nurse", x(participant), "<show>away</show>")), "occupant-updated,occupant-restored")
	evs, omitted := m.ClearDisconnected(-1)
	if omitted != 0 || count(evs, mucwatch.EventOccupantRestored) != 3 || count(evs, mucwatch.EventRoomRestored) != 1 || len(evs) != 4 {
		t.Fatalf("events %q, %d omitted", kinds(evs), omitted)
	}
	for _, e := range evs {
		if e.Mark.Condition != psa.LocalDisconnected || e.Resent {
			t.Fatalf("event %+v", e)
		}
	}
	r := state(t, m)
	if r.State != mucwatch.StateJoined || r.Stale || r.Occupants != 4 || r.StaleOccupants != 1 || len(r.Marks) != 0 {
		t.Fatalf("room %+v", r)
	}
	if evs, _ := m.ClearDisconnected(-1); len(evs) != 0 {
		t.Fatalf("a second ClearDisconnected: %q", kinds(evs))
	}
	checkModel(t, m)

	// Bounded events: the room's are never left out.
	m.MarkDisconnected()
	evs, omitted = m.ClearDisconnected(0)
	if kinds(evs) != "room-restored" || omitted != 4 {
		t.Fatalf("events %q, %d omitted", kinds(evs), omitted)
	}
	checkModel(t, m)
}

func TestSpoofedAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name, annotator string
		err             error
	}{
		{"third domain", "evil.example", psa.ErrUntrusted},
		{"the occupant's real server", "capulet.lit", psa.ErrUntrusted},
		{"another service of ours", "muc.montague.lit", psa.ErrUntrusted},
		{"a user", "juliet@capulet.lit", psa.ErrInvalidFrom},
		{"the room itself", roomAddr, psa.ErrInvalidFrom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newModel(t)
			join(t, m, "juliet")
			apply(t, m, avail(t, "juliet", x(`<item affiliation="none" role="participant" jid="juliet@capulet.lit/balcony"/>`)))
			for _, p := range []*presence.Presence{
				avail(t, "juliet", x(`<item affiliation="none" role="participant" jid="juliet@capulet.lit/balcony"/>`), ann(tc.annotator, "server-unavailable")),
				avail(t, "romeo", x(moderator, 110), ann(tc.annotator, "server-unavailable")),
			} {
				nick := p.From.Resourcepart()
				evs := apply(t, m, p)
				expect(t, evs, "rejected")
				if !errors.Is(evs[0].Err, tc.err) || !evs[0].JID.Equal(occJID(nick)) {
					t.Fatalf("%s: rejection %+v", nick, evs[0])
				}
			}
			if r := state(t, m); r.Stale || r.StaleOccupants != 0 {
				t.Fatalf("spoofed mark applied: %+v", r)
			}
			// A spoofed empty annotation does not clear a real mark either.
			apply(t, m, avail(t, "juliet", x(participant), ann(service, "server-unavailable")))
			expect(t, apply(t, m, avail(t, "juliet", x(participant), ann(tc.annotator, ""))), "rejected")
			if o, _ := m.Occupant(occJID("juliet")); o.Fresh() {
				t.Fatal("spoofed restore applied")
			}
			checkModel(t, m)
		})
	}
	t.Run("on unavailable", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m, "juliet")
		evs := apply(t, m, unavail(t, "juliet", x(gone), ann(service, "server-unavailable")))
		expect(t, evs, "rejected,occupant-unavailable")
		if !errors.Is(evs[0].Err, psa.ErrExcluded) || evs[0].Annotation.From.String() != service {
			t.Fatalf("rejection %+v", evs[0])
		}
		checkModel(t, m)
	})
	t.Run("on error and subscription presence", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m, "juliet")
		for _, typ := range []string{"subscribe", "probe", "error"} {
			evs := apply(t, m, pres(t, `<presence from="%s/juliet" type="%s">%s</presence>`, roomAddr, typ, ann(service, "server-unavailable")))
			want := "rejected"
			if typ == "error" {
				want = "rejected,room-error"
			}
			expect(t, evs, want)
			if !errors.Is(evs[0].Err, psa.ErrExcluded) {
				t.Fatalf("%s: %v", typ, evs[0].Err)
			}
		}
		checkModel(t, m)
	})
	t.Run("malformed", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m, "juliet")
		apply(t, m, avail(t, "juliet", x(participant), ann(service, "server-unavailable")))
		evs := apply(t, m, avail(t, "juliet", x(participant), `<state-annotation xmlns="urn:xmpp:psa"><server-unavailable/></state-annotation>`))
		expect(t, evs, "rejected")
		if !errors.Is(evs[0].Err, psa.ErrMalformed) {
			t.Fatalf("%v", evs[0].Err)
		}
		if o, _ := m.Occupant(occJID("juliet")); o.Fresh() {
			t.Fatal("a malformed annotation cleared a mark")
		}
	})
}

// Occupants are keyed by their exact occupant JID, as the service keys
// them: nicks that differ in case, width or spaces are other occupants.
func TestNicksExact(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "Juliet")
	for _, spelling := range []string{"juliet", "JULIET", "Ｊｕｌｉｅｔ", "Juliet ", "Juliet2", "Julíet", "Jul iet"} {
		evs := apply(t, m, avail(t, spelling, `<status>`+spelling+`</status>`, x(participant)))
		expect(t, evs, "occupant-available")
		if o := evs[0].Occupant; o.Nick != spelling || o.JID.Resourcepart() != spelling {
			t.Fatalf("%q: occupant %+v", spelling, o)
		}
		if o, ok := m.Occupant(occJID(spelling)); !ok || o.StatusText() != spelling {
			t.Fatalf("Occupant(%q) = %+v, %v", spelling, o, ok)
		}
	}
	if o, ok := m.Occupant(occJID("Juliet")); !ok || o.StatusText() != "" {
		t.Fatalf("Occupant(Juliet) = %+v, %v", o, ok)
	}
	if r := state(t, m); r.Occupants != 9 {
		t.Fatalf("room %+v", r)
	}
	expect(t, apply(t, m, unavail(t, "JULIET", x(gone))), "occupant-unavailable")
	if _, ok := m.Occupant(occJID("Juliet")); !ok {
		t.Fatal("JULIET left and took Juliet with her")
	}
	checkModel(t, m)
	// Our own presence (110) from our nick in another case: the service says
	// that occupant is us now, so our nick is that one.
	evs := apply(t, m, avail(t, "ROMEO", x(moderator, 110)))
	expect(t, evs, "occupant-unavailable,occupant-available,nick-changed")
	if evs[0].Occupant.Nick != "romeo" || evs[2].OldNick != "romeo" || state(t, m).Nick != "ROMEO" {
		t.Fatalf("events %+v", evs)
	}
	checkModel(t, m)
}

func TestRecordSelfPing(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet")
	expect(t, m.RecordSelfPing(coven, mucwatch.VerdictUndecided), "")
	expect(t, m.RecordSelfPing(coven, mucwatch.VerdictJoined), "")
	evs := m.RecordSelfPing(coven, mucwatch.VerdictNotJoined)
	expect(t, evs, "room-stale")
	if evs[0].Mark.Condition != "" {
		t.Fatalf("mark %+v", evs[0].Mark)
	}
	if r := state(t, m); r.State != mucwatch.StateStale || r.Verdict != mucwatch.VerdictNotJoined {
		t.Fatalf("room %+v", r)
	}
	checkModel(t, m)
	// Undecided does not undo it; Joined does.
	expect(t, m.RecordSelfPing(coven, mucwatch.VerdictUndecided), "")
	expect(t, m.RecordSelfPing(coven, mucwatch.VerdictJoined), "room-restored")
	// NotJoined again: the client rejoins; the rejoin clears the verdict.
	m.RecordSelfPing(coven, mucwatch.VerdictNotJoined)
	expect(t, m.Rejoining(coven), "rejoining")
	expect(t, m.RecordSelfPing(coven, mucwatch.VerdictNotJoined), "")
	apply(t, m, avail(t, "juliet", x(participant)))
	expect(t, apply(t, m, avail(t, "romeo", x(moderator, 110))), "room-joined,room-restored")
	if r := state(t, m); r.Verdict != mucwatch.VerdictNone || r.State != mucwatch.StateJoined {
		t.Fatalf("room %+v", r)
	}
	// Verdicts for rooms not joined or not tracked are ignored.
	expect(t, m.RecordSelfPing(jid.MustParse("nowhere@chat.shakespeare.lit"), mucwatch.VerdictNotJoined), "")
	checkModel(t, m)
}

func TestIntents(t *testing.T) {
	m, _ := newModel(t)
	evs := m.Joining(coven)
	expect(t, evs, "rejected")
	if !errors.Is(evs[0].Err, mucwatch.ErrNotOccupantJID) {
		t.Fatalf("%v", evs[0].Err)
	}
	expect(t, m.Joining(jid.MustParse("chat.shakespeare.lit/romeo")), "rejected")
	expect(t, m.Joining(occJID("romeo")), "joining")
	evs = m.Joining(occJID("romeo2"))
	if kinds(evs) != "rejected" || !errors.Is(evs[0].Err, mucwatch.ErrAlreadyJoined) {
		t.Fatalf("events %+v", evs)
	}
	evs = m.Rejoining(jid.MustParse("nowhere@chat.shakespeare.lit"))
	if kinds(evs) != "rejected" || !errors.Is(evs[0].Err, mucwatch.ErrUnknownRoom) {
		t.Fatalf("events %+v", evs)
	}
	expect(t, m.Forget(jid.MustParse("nowhere@chat.shakespeare.lit")), "")
	expect(t, m.Leaving(jid.MustParse("nowhere@chat.shakespeare.lit")), "")
	expect(t, m.Sweep(jid.MustParse("nowhere@chat.shakespeare.lit")), "")
	// Forget works in any state.
	expect(t, m.Forget(occJID("romeo")), "room-left")
	checkModel(t, m)
	if m.Stats() != (mucwatch.Stats{}) {
		t.Fatalf("stats %+v", m.Stats())
	}

	// Leaving a room we were kicked from forgets it at once.
	join(t, m)
	apply(t, m, unavail(t, "romeo", x(gone, 307, 110)))
	expect(t, m.Leaving(coven), "room-left")
	checkModel(t, m)
}

// A Leaving whose confirmation comes after the client joined again.
func TestLeaveThenJoinAgain(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet")
	expect(t, m.Leaving(coven), "leaving")
	expect(t, m.Joining(occJID("romeo")), "joining")
	// The confirmation of the leave does not end the new join.
	expect(t, apply(t, m, unavail(t, "romeo", x(gone, 110))), "")
	expect(t, apply(t, m, avail(t, "juliet", x(participant))), "occupant-available")
	expect(t, apply(t, m, avail(t, "romeo", x(moderator, 110))), "occupant-available,room-joined")
	// A later unavailable of ours is a removal again.
	expect(t, apply(t, m, unavail(t, "romeo", x(gone, 110, 307))), "room-kicked")
	checkModel(t, m)

	// A kick while a leave is pending is no confirmation of the leave.
	m.Leaving(coven)
	m.Joining(occJID("romeo"))
	evs := apply(t, m, unavail(t, "romeo", x(gone, 110, 301)))
	expect(t, evs, "room-kicked")
	if !evs[0].JID.Equal(occJID("romeo")) || !evs[0].Removal.Has(301) {
		t.Fatalf("event %+v", evs[0])
	}
	// A destruction reported in another occupant's presence names our
	// occupant.
	join(t, m)
	evs = apply(t, m, unavail(t, "juliet", x(gone+`<destroy/>`)))
	expect(t, evs, "room-destroyed")
	if !evs[0].JID.Equal(occJID("romeo")) {
		t.Fatalf("event %+v", evs[0])
	}
	checkModel(t, m)
}

func TestRouting(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet")
	for _, s := range []string{
		`<presence from="juliet@capulet.lit/balcony"/>`,
		`<presence from="other@chat.shakespeare.lit/juliet"><x xmlns="` + nsMUC + `"><item role="participant"/></x></presence>`,
		`<presence/>`,
	} {
		if evs, ok := m.ApplyPresence(pres(t, "%s", s)); ok || len(evs) != 0 {
			t.Fatalf("%s: handled %v, %+v", s, ok, evs)
		}
	}
	// Presence from the room's own JID (a room avatar) is the room's, and
	// concerns no occupant.
	for _, s := range []string{
		`<presence from="` + roomAddr + `"><x xmlns="vcard-temp:x:update"><photo>abc</photo></x></presence>`,
		`<presence from="` + roomAddr + `" type="unavailable"/>`,
	} {
		if evs, ok := m.ApplyPresence(pres(t, "%s", s)); !ok || len(evs) != 0 {
			t.Fatalf("%s: handled %v, %+v", s, ok, evs)
		}
	}
	// AppendPresence appends.
	dst := make([]mucwatch.Event, 1, 8)
	dst, ok := m.AppendPresence(dst, avail(t, "nurse", x(participant)))
	if !ok || len(dst) != 2 || dst[1].Kind != mucwatch.EventOccupantAvailable {
		t.Fatalf("%v %+v", ok, dst)
	}
	checkModel(t, m)
}

func TestLimits(t *testing.T) {
	t.Run("rooms", func(t *testing.T) {
		m, _ := newModel(t, mucwatch.WithMaxRooms(2))
		m.Joining(jid.MustParse("a@chat.shakespeare.lit/romeo"))
		m.Joining(jid.MustParse("b@chat.shakespeare.lit/romeo"))
		evs := m.Joining(jid.MustParse("c@chat.shakespeare.lit/romeo"))
		if kinds(evs) != "rejected" || !errors.Is(evs[0].Err, mucwatch.ErrLimit) {
			t.Fatalf("events %+v", evs)
		}
		m.Forget(jid.MustParse("a@chat.shakespeare.lit"))
		expect(t, m.Joining(jid.MustParse("c@chat.shakespeare.lit/romeo")), "joining")
		checkModel(t, m)
	})
	t.Run("occupants", func(t *testing.T) {
		m, _ := newModel(t, mucwatch.WithMaxOccupants(2))
		m.Joining(occJID("romeo"))
		apply(t, m, avail(t, "a", x(participant)))
		apply(t, m, avail(t, "b", x(participant)))
		evs := apply(t, m, avail(t, "c", x(participant), ann(service, "server-unavailable")))
		if kinds(evs) != "rejected" || !errors.Is(evs[0].Err, mucwatch.ErrLimit) {
			t.Fatalf("events %+v", evs)
		}
		// Our own presence is always tracked, and known occupants update.
		expect(t, apply(t, m, avail(t, "romeo", x(participant, 110))), "occupant-available,room-joined")
		expect(t, apply(t, m, avail(t, "b", `<show>away</show>`, x(participant))), "occupant-updated")
		// Someone leaving makes room.
		apply(t, m, unavail(t, "a", x(gone)))
		expect(t, apply(t, m, avail(t, "c", x(participant))), "occupant-available")
		if r := state(t, m); r.Occupants != 3 {
			t.Fatalf("room %+v", r)
		}
		checkModel(t, m)
	})
}

func TestSnapshotsAreCopies(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet")
	apply(t, m, avail(t, "juliet", x(participant), ann(service, "server-unavailable")))
	before := slices.Collect(m.Occupants(coven))
	room := state(t, m)
	apply(t, m, avail(t, "juliet", `<show>xa</show>`, x(moderator)))
	apply(t, m, unavail(t, "romeo", x(gone, 307, 110)))
	if len(before) != 2 || room.State != mucwatch.StateJoined || room.Occupants != 2 {
		t.Fatalf("snapshot changed under the reader: %+v %+v", before, room)
	}
	for _, o := range before {
		if o.Nick == "juliet" && (o.Show != "" || o.Role != "participant" || len(o.Marks) != 1) {
			t.Fatalf("snapshot changed under the reader: %+v", o)
		}
	}
	if n := len(slices.Collect(m.Occupants(coven))); n != 0 {
		t.Fatalf("%d occupants after the kick", n)
	}
	if n := len(slices.Collect(m.Occupants(jid.MustParse("nowhere@chat.shakespeare.lit")))); n != 0 {
		t.Fatal("occupants of an unknown room")
	}
	// Iteration may stop early.
	join(t, m, "a", "b", "c")
	for range m.Occupants(coven) {
		break
	}
	for range m.Rooms() {
		break
	}
}

func TestNames(t *testing.T) {
	if mucwatch.EventRoomDropped.String() != "room-dropped" || mucwatch.EventOccupantAvailable.String() != "occupant-available" ||
		mucwatch.EventKind(0).String() != "unknown" || mucwatch.EventKind(200).String() != "unknown" {
		t.Fatal("event names")
	}
	if mucwatch.StateRejoining.String() != "rejoining" || mucwatch.StateNone.String() != "none" || mucwatch.RoomState(99).String() != "unknown" {
		t.Fatal("state names")
	}
	if mucwatch.VerdictNotJoined.String() != "not-joined" || mucwatch.Verdict(9).String() != "unknown" {
		t.Fatal("verdict names")
	}
	e := &mucwatch.JoinError{Room: coven, Condition: stanza.Conflict, Text: "taken"}
	if e.Error() != "mucwatch: coven@chat.shakespeare.lit: conflict: taken" {
		t.Fatal(e.Error())
	}
}

func TestEdgeCases(t *testing.T) {
	t.Run("error text by language", func(t *testing.T) {
		for _, tc := range []struct{ texts, want string }{
			{`<text xml:lang="fr" xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Non</text><text xml:lang="de" xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Nein</text>`, "Nein"},
			{`<text xml:lang="fr" xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">Non</text><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">No</text>`, "No"},
			{``, ""},
		} {
			m, _ := newModel(t)
			m.Joining(occJID("romeo"))
			evs := apply(t, m, pres(t, `<presence from="%s/romeo" type="error" xml:lang="en"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>%s</error></presence>`, roomAddr, tc.texts))
			var je *mucwatch.JoinError
			if !errors.As(evs[0].Err, &je) || je.Text != tc.want || !errors.Is(je, mucwatch.ErrBanned) {
				t.Fatalf("%+v, want text %q", evs[0].Err, tc.want)
			}
		}
	})
	t.Run("error in a room we are out of", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m)
		apply(t, m, unavail(t, "romeo", x(gone, 110, 307)))
		expect(t, apply(t, m, pres(t, `<presence from="%s/romeo" type="error"/>`, roomAddr)), "")
		if r := state(t, m); r.State != mucwatch.StateKicked {
			t.Fatalf("room %+v", r)
		}
	})
	t.Run("forget a stale room", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m, "juliet")
		m.MarkDisconnected()
		expect(t, m.Forget(coven), "room-left")
		if s := m.Stats(); s != (mucwatch.Stats{}) {
			t.Fatalf("stats %+v", s)
		}
		checkModel(t, m)
	})
	t.Run("a marked occupant turns out to be us", func(t *testing.T) {
		m, _ := newModel(t)
		join(t, m)
		apply(t, m, unavail(t, "romeo", x(gone, 110, 332)))
		m.Rejoining(coven)
		// Our occupant arrives annotated by the service, without 110 first.
		expect(t, apply(t, m, avail(t, "romeo", x(participant), ann(service, "server-unavailable"))), "occupant-available,occupant-stale")
		if state(t, m).Stale {
			t.Fatal("stale before we knew it was us")
		}
		evs := apply(t, m, avail(t, "romeo", x(participant, 110), ann(service, "server-unavailable")))
		expect(t, evs, "occupant-updated,room-joined,room-stale")
		if markBy(evs[2].Mark) != service+":server-unavailable" || !evs[2].Resent {
			t.Fatalf("room-stale %+v", evs[2])
		}
		checkModel(t, m)
	})
}

// Rooms and occupants are found whatever the spelling of the room JID on the
// wire, and under the new JID when a caller changed From after decoding.
func TestPresenceKeys(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet")
	evs, ok := m.ApplyPresence(pres(t, `<presence from="Coven@Chat.Shakespeare.LIT/juliet"><show>away</show>%s</presence>`, x(participant)))
	if !ok {
		t.Fatal("presence from the room in upper case not handled")
	}
	expect(t, evs, "occupant-updated")
	p := avail(t, "juliet", x(participant))
	p.From = jid.MustParse("elsewhere@chat.shakespeare.lit/juliet")
	if _, ok := m.ApplyPresence(p); ok {
		t.Fatal("a presence whose From was changed to another room was handled")
	}
	// Built by hand, not decoded.
	evs, ok = m.ApplyPresence(&presence.Presence{From: occJID("nurse"), MUC: &presence.MUCUser{Item: presence.MUCItem{Role: "participant"}}})
	if !ok {
		t.Fatal("hand-built presence not handled")
	}
	expect(t, evs, "occupant-available")
	checkModel(t, m)
}

// Event.Fresh says whether what the event is about is fresh afterwards: the
// room for room-stale and room-restored, so that a caller printing
// e.Fresh() for every event needs no case for room events.
func TestEventFreshRoom(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet")
	evs := m.MarkDisconnected()
	expect(t, evs, "room-stale,occupant-stale,occupant-stale")
	for _, e := range evs {
		if e.Fresh() {
			t.Errorf("%s: Fresh() is true after our stream dropped", e.Kind)
		}
	}
	expect(t, m.Rejoining(coven), "rejoining")
	apply(t, m, avail(t, "juliet", x(participant)))
	evs = apply(t, m, avail(t, "romeo", x(moderator, 110)))
	if count(evs, mucwatch.EventRoomRestored) != 1 {
		t.Fatalf("events %q", kinds(evs))
	}
	for _, e := range evs {
		if !e.Fresh() {
			t.Errorf("%s: Fresh() is false after the rejoin", e.Kind)
		}
	}
}
