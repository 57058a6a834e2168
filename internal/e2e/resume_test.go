package e2e_test

import (
	"context"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/cutproxy"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

// newCutProxy puts a cutproxy.Proxy in front of target until the test ends.
func newCutProxy(t testing.TB, target string) *cutproxy.Proxy {
	t.Helper()
	p, err := cutproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// resumeScene connects juliet (raw, capulet.lit) and romeo (psakit,
// montague.lit, through a cutproxy.Proxy), and puts romeo and the nurse (raw,
// capulet.lit) in the orchard.
func resumeScene(t *testing.T, hibernation time.Duration) (ctx context.Context, n *prosodytest.Network, p *cutproxy.Proxy, rec *recorder, romeo *client.Client, juliet, nurse *rawclient.Client) {
	n = shakespeare(t, func(mont, _ *prosodytest.Spec) { mont.HibernationTime = hibernation })
	ctx = testContext(t, 90*time.Second)
	p = newCutProxy(t, n.Server(montague).C2SAddr)
	j, rec, romeo := romeoSeesJuliet(ctx, t, n, "<status>Ay me!</status>", client.WithAddress(p.Addr()))
	nc := nurseInRoom(ctx, t, n, romeo, orchardRoom)
	rec.expect(ctx, t, "the nurse in the room", roomEvent(mucwatch.EventOccupantAvailable, orchardRoom, orchardRoom+"/Nurse"))
	roundTrip(ctx, t, romeo)
	return ctx, n, p, rec, romeo, j, nc
}

const orchardRoom = "orchard@" + conference

// cutAndChange cuts romeo's connection, waits until montague.lit has his
// session hibernate, and has juliet and the nurse change their presence,
// which montague.lit queues for the hibernating session.
func cutAndChange(ctx context.Context, t *testing.T, n *prosodytest.Network, p *cutproxy.Proxy, rec *recorder, juliet, nurse *rawclient.Client) time.Time {
	t.Helper()
	mont := n.Server(montague)
	mark := mont.LogMark()
	cut := time.Now()
	p.Cut()
	rec.expect(ctx, t, "disconnected", connEvent(client.ConnDisconnected))
	_, next, err := mont.WaitLog(ctx, mark, "Session going into hibernation")
	must(t, err)
	must(t, juliet.SendPresence(ctx, "<show>away</show><status>At the window</status>"))
	must(t, nurse.Sendf("<presence to='%s/Nurse'><show>dnd</show></presence>", orchardRoom))
	for range 2 {
		_, next, err = mont.WaitLog(ctx, next, "stanza queued")
		must(t, err)
	}
	return cut
}

// Our own stream drops without closing (a network failure) and is resumed
// (XEP-0198, Prosody's mod_smacks): what changed during the gap arrives,
// no room is rejoined, the roster is not fetched again and nothing is
// swept; every entry is fresh again.
func TestOwnStreamResumed(t *testing.T) {
	t.Parallel()
	ctx, n, p, rec, romeo, juliet, nurse := resumeScene(t, 0)
	bound := romeo.JID()
	from := rec.mark()
	cut := cutAndChange(ctx, t, n, p, rec, juliet, nurse)
	p.Restore()

	rec.expect(ctx, t, "resumed", connEvent(client.ConnResumed))
	e := rec.expect(ctx, t, "resynced", connEvent(client.ConnResynced))
	timing(t, "cut -> resynced (resumed)", e.at.Sub(cut))
	if e.conn.Swept != 0 {
		t.Errorf("swept %d after a resumption", e.conn.Swept)
	}
	j, _ := rec.waitFrom(ctx, t, from, "juliet's change during the gap", func(e event) bool {
		return rosterEvent(roster.EventUpdated, juliet.JID())(e) && e.roster.Resource.Show == "away"
	})
	if !j.roster.Fresh() {
		t.Errorf("juliet's update: %v", j)
	}
	rec.waitFrom(ctx, t, from, "the nurse's change during the gap", func(e event) bool {
		return roomEvent(mucwatch.EventOccupantUpdated, orchardRoom, orchardRoom+"/Nurse")(e) && e.room.Occupant.Show == "dnd"
	})
	for what, match := range map[string]func(event) bool{
		"connected":       connEvent(client.ConnConnected),
		"rejoin":          actionEvent(client.ActionRejoin, orchardRoom, "reconnect"),
		"juliet unavail.": rosterEvent(roster.EventUnavailable, juliet.JID()),
		"room left":       roomEvent(mucwatch.EventRoomLeft, orchardRoom, ""),
	} {
		if c := rec.count(from, match); c != 0 {
			t.Errorf("%d %s events after a resumption:\n%s", c, what, dumpEvents(rec.since(from)))
		}
	}
	if !romeo.JID().Equal(bound) {
		t.Errorf("resumed as %s, bound as %s", romeo.JID(), bound)
	}
	if st := romeo.Roster().Stats(); st.Stale != 0 {
		t.Errorf("roster stats after the resumption: %+v", st)
	}
	r, ok := romeo.Rooms().Room(jid.MustParse(orchardRoom))
	if !ok || r.State != mucwatch.StateJoined || r.Stale || r.StaleOccupants != 0 {
		t.Errorf("room after the resumption: %+v", r)
	}
}

// The gap outlasts mod_smacks' hibernation time: the resumption fails, and
// the client binds a new session and resyncs in full (ConnConnected, the
// rooms rejoined, a settle sweep).
func TestOwnStreamResumeExpired(t *testing.T) {
	t.Parallel()
	ctx, n, p, rec, romeo, juliet, nurse := resumeScene(t, time.Second)
	mont := n.Server(montague)
	mark := mont.LogMark()
	from := rec.mark()
	cutAndChange(ctx, t, n, p, rec, juliet, nurse)
	_, _, err := mont.WaitLog(ctx, mark, "Destroying session for hibernating too long")
	must(t, err)
	p.Restore()

	rec.expect(ctx, t, "connected anew", connEvent(client.ConnConnected))
	rec.expect(ctx, t, "rejoin", actionEvent(client.ActionRejoin, orchardRoom, "reconnect"))
	rec.expect(ctx, t, "resynced", connEvent(client.ConnResynced))
	if c := rec.count(from, connEvent(client.ConnResumed)); c != 0 {
		t.Errorf("%d resumed events after the hibernation ended", c)
	}
	rec.until(ctx, t, "juliet away and fresh", func() bool {
		r, ok := romeo.Roster().Resource(jid.MustParse(juliet.JID()))
		return ok && r.Show == "away" && r.Fresh()
	})
	rec.until(ctx, t, "the room fresh", func() bool {
		r, ok := romeo.Rooms().Room(jid.MustParse(orchardRoom))
		return ok && r.State == mucwatch.StateJoined && !r.Stale
	})
	if _, ok := findLog(mont, mark, "mod_smacks session resumed"); ok {
		t.Error("montague.lit resumed a session it destroyed")
	}
}
