package mucwatch_test

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
)

func TestMarkUnreachable(t *testing.T) {
	m, clk := newModel(t)
	join(t, m, "juliet", "mercutio")
	// A room on another service, which must not be touched.
	other := jid.MustParse("hall@muc.capulet.lit")
	expect(t, m.Joining(jid.MustParse("hall@muc.capulet.lit/romeo")), "joining")
	expect(t, apply(t, m, pres(t, `<presence from="hall@muc.capulet.lit/romeo">%s</presence>`, x(participant, 110))), "occupant-available,room-joined")

	svc := jid.MustParse(service)
	clk.t = clk.t.Add(1000)
	evs, omitted := m.MarkUnreachable(svc, -1)
	if omitted != 0 || kinds(evs) != "room-stale,occupant-stale,occupant-stale,occupant-stale" {
		t.Fatalf("MarkUnreachable: %q, %d omitted", kinds(evs), omitted)
	}
	for _, e := range evs {
		if !e.Mark.Inferred() || e.Mark.Condition != psa.ServerUnavailable || !e.Mark.Since.Equal(clk.t) || e.Room.String() != roomAddr {
			t.Fatalf("event %+v", e)
		}
	}
	r := state(t, m)
	if !r.Stale || r.State != mucwatch.StateStale || len(r.Marks) != 1 || !r.Marks[0].Inferred() || r.StaleOccupants != 3 {
		t.Fatalf("room %+v", r)
	}
	if h, _ := m.Room(other); h.Stale {
		t.Fatalf("a room on another service went stale: %+v", h)
	}
	checkModel(t, m)
	if evs, _ := m.MarkUnreachable(svc, -1); len(evs) != 0 {
		t.Fatalf("marked twice: %q", kinds(evs))
	}

	// The service's empty annotation does not remove the inferred mark; a new
	// presence from an occupant removes it from that occupant.
	apply(t, m, avail(t, "mercutio", x(participant), ann(service, "")))
	if o, _ := m.Occupant(occJID("mercutio")); o.Fresh() {
		t.Fatal("an empty annotation cleared the inferred mark")
	}
	expect(t, apply(t, m, avail(t, "juliet", x(participant), "<show>away</show>")), "occupant-updated,occupant-restored")
	checkModel(t, m)

	evs, omitted = m.ClearUnreachable(svc, -1)
	if omitted != 0 || count(evs, mucwatch.EventOccupantRestored) != 2 || count(evs, mucwatch.EventRoomRestored) != 1 || len(evs) != 3 {
		t.Fatalf("ClearUnreachable: %q, %d omitted", kinds(evs), omitted)
	}
	if last := evs[len(evs)-1]; last.Kind != mucwatch.EventRoomRestored || !last.Mark.Inferred() || !last.Resent {
		t.Fatalf("the room's restore event %+v: its Mark tells the room policy to self-ping", last)
	}
	r = state(t, m)
	if r.Stale || r.State != mucwatch.StateJoined || len(r.Marks) != 0 || r.StaleOccupants != 0 {
		t.Fatalf("room %+v", r)
	}
	checkModel(t, m)
	if evs, _ := m.ClearUnreachable(svc, -1); len(evs) != 0 {
		t.Fatalf("cleared twice: %q", kinds(evs))
	}
}

func TestMarkUnreachableBoundedAndOthers(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet", "mercutio")
	svc := jid.MustParse(service)
	// A server's mark on our own occupant stays when ours goes.
	apply(t, m, avail(t, "romeo", x(moderator, 110), ann(ownSrv, "server-unavailable")))
	evs, omitted := m.MarkUnreachable(svc, 0)
	if omitted != 3 || kinds(evs) != "" || state(t, m).StaleOccupants != 3 {
		t.Fatalf("no room for occupants' events: %q, %d omitted", kinds(evs), omitted)
	}
	evs, _ = m.ClearUnreachable(svc, -1)
	if count(evs, mucwatch.EventRoomRestored) != 0 || !state(t, m).Stale {
		t.Fatalf("our own server's mark must keep the room stale: %q", kinds(evs))
	}
	checkModel(t, m)
	if evs, omitted := m.MarkUnreachable(jid.JID{}, -1); len(evs) != 0 || omitted != 0 {
		t.Fatalf("the zero domain: %q", kinds(evs))
	}
	if evs, omitted := m.ClearUnreachable(jid.JID{}, -1); len(evs) != 0 || omitted != 0 {
		t.Fatalf("the zero domain: %q", kinds(evs))
	}
}
