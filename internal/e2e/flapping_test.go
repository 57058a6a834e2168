package e2e_test

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// A link that flaps 20 times in 10 s: the contact (juliet) and the MUC
// occupant (the nurse) on the other domain end fresh, the models hold what
// they should and nothing more, and Close leaves no goroutine behind.
//
// Not parallel: leaktest compares the goroutines before and after, and
// another test running meanwhile would count as a leak.
func TestFlappingLink(t *testing.T) {
	leaktest.Check(t) // first: its check runs after every other cleanup
	n := shakespeare(t, nil)
	ctx := testContext(t, 90*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference
	nurseNick := room + "/Nurse"

	juliet := raw(ctx, t, capu, "juliet", "balcony", rawclient.Config{}, "<status>Ay me!</status>")
	jfull := juliet.JID()
	rec := newRecorder()
	romeo := dial(ctx, t, mont, "romeo", "lane", rec)
	nurse := nurseInRoom(ctx, t, n, romeo, room)
	nfull := nurse.JID()
	rec.until(ctx, t, "juliet, the nurse and her occupant are there", func() bool {
		_, j := romeo.Roster().Resource(jid.MustParse(jfull))
		_, nr := romeo.Roster().Resource(jid.MustParse(nfull))
		_, o := romeo.Rooms().Occupant(jid.MustParse(nurseNick))
		return j && nr && o
	})
	start := rec.mark()

	const flaps = 20
	tick := time.NewTicker(250 * time.Millisecond) // a cut and a heal every 0.5 s: 20 flaps in 10 s
	defer tick.Stop()
	began := time.Now()
	var (
		lastHeal time.Time
		mark     int
	)
	for i := range flaps {
		<-tick.C
		must(t, n.Cut(montague, capulet))
		<-tick.C
		if i == flaps-1 {
			mark = mont.LogMark()
			lastHeal = time.Now()
		}
		must(t, n.Heal(montague, capulet))
	}
	t.Logf("%d cut/heal cycles in %v", flaps, time.Since(began).Round(time.Millisecond))

	// Settle: both annotators (montague.lit for juliet, the MUC service for
	// the nurse's occupant) declare the link up, and the client ends fresh.
	for _, line := range []string{"Link montague.lit -> capulet.lit is up", "Link conference.montague.lit -> capulet.lit is up"} {
		if _, _, err := mont.WaitLog(ctx, mark, line); err != nil {
			t.Fatal(err)
		}
	}
	// montague.lit's re-sends to romeo and the MUC service's announcements
	// leave over the next turns of the event loop, until their queues are
	// empty. A round trip then makes sure the client has applied them.
	for _, q := range []struct{ up, done string }{
		{"Link montague.lit -> capulet.lit is up", "Re-sends done"},
		{"Link conference.montague.lit -> capulet.lit is up", "Occupant announcements done"},
	} {
		_, up, err := mont.WaitLog(ctx, mark, q.up)
		must(t, err)
		if _, _, err := mont.WaitLog(ctx, up, q.done); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip(ctx, t, romeo)
	timing(t, "last heal -> models final", time.Since(lastHeal))
	rs, ro := romeo.Roster().Stats(), romeo.Rooms().Stats()
	if rs.Stale != 0 || ro.StaleOccupants != 0 || ro.StaleRooms != 0 {
		t.Errorf("stale after the flapping: roster %+v, rooms %+v", rs, ro)
	}

	// Every stale event has its restored event (the callbacks may lag the
	// models a little: wait for them).
	counts := func() (stale, restored, ostale, orestored int) {
		return rec.count(start, marked(roster.EventStale, jfull, psa.ServerUnavailable, montague)),
			rec.count(start, marked(roster.EventRestored, jfull, psa.ServerUnavailable, montague)),
			rec.count(start, occupantMarked(mucwatch.EventOccupantStale, room, nurseNick, psa.ServerUnavailable, conference)),
			rec.count(start, occupantMarked(mucwatch.EventOccupantRestored, room, nurseNick, psa.ServerUnavailable, conference))
	}
	rec.until(ctx, t, "balanced events", func() bool {
		s, r, os, or := counts()
		return s > 0 && s == r && os > 0 && os == or
	})
	stale, restored, ostale, orestored := counts()
	t.Logf("juliet: %d stale and %d restored events; the nurse's occupant: %d and %d", stale, restored, ostale, orestored)
	for _, kind := range []roster.EventKind{roster.EventUnavailable, roster.EventRejected} {
		if n := rec.count(start, func(e event) bool { return e.roster != nil && e.roster.Kind == kind }); n > 0 {
			t.Errorf("%d %s events during the flapping:\n%s", n, kind, dumpEvents(rec.since(start)))
		}
	}
	if n := rec.count(start, roomEvent(mucwatch.EventOccupantUnavailable, room, nurseNick)); n > 0 {
		t.Errorf("the nurse left the room %d times", n)
	}

	// The models hold exactly what they should.
	st := romeo.Roster().Stats()
	if st.Bytes == 0 || st.StrangerBytes != 0 {
		t.Errorf("roster stats after the flapping: %+v", st)
	}
	st.Bytes = 0 // what two resources' records take
	if st != (roster.Stats{Items: 3, Contacts: 3, Resources: 2}) {
		t.Errorf("roster stats after the flapping: %+v", st)
	}
	if st := romeo.Rooms().Stats(); st != (mucwatch.Stats{Rooms: 1, Joined: 1, Occupants: 2}) {
		t.Errorf("rooms stats after the flapping: %+v", st)
	}
	if r := resource(t, romeo, jfull); !r.Fresh() || r.StatusText() != "Ay me!" {
		t.Errorf("juliet after the flapping: fresh=%v status %q", r.Fresh(), r.StatusText())
	}
	// The link works: juliet's next presence arrives, fresh.
	must(t, juliet.Send("<presence><show>dnd</show></presence>"))
	rec.until(ctx, t, "juliet's new presence", func() bool {
		r, ok := romeo.Roster().Resource(jid.MustParse(jfull))
		return ok && r.Show == "dnd" && r.Fresh()
	})

	// Close ends every goroutine of the client (leaktest checks at the end).
	must(t, romeo.Close())
}
