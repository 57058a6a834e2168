package e2e_test

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// Our own server is killed (SIGKILL) and restarted. The client marks every
// contact and room local-disconnected, reconnects, fetches the roster again
// (it changed meanwhile), gets its contacts' presences again (juliet and the
// nurse are back; benvolio's session died with the server, and the server
// says so), removes after the settle window the presence nobody sent again
// (tybalt's, a directed presence from outside the roster), and rejoins its
// room.
func TestOwnServerKilledAndRestarted(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 90*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference
	nurseNick := room + "/Nurse"
	self := "romeo@montague.lit"

	benvolio := raw(ctx, t, mont, "benvolio", "street", rawclient.Config{}, "<status>He ran this way</status>")
	juliet := raw(ctx, t, capu, "juliet", "balcony", rawclient.Config{}, "<status>Wherefore art thou</status>")
	bfull, jfull := benvolio.JID(), juliet.JID()
	rec := newRecorder()
	romeo := dial(ctx, t, mont, "romeo", "lane", rec, client.WithRoomPolicy(roomPolicy()))
	must(t, romeo.Join(ctx, jid.MustParse(room+"/Romeo")))
	nurse := raw(ctx, t, capu, "nurse", "garden", rawclient.Config{}, "")
	must(t, nurse.JoinMUC(ctx, room, "Nurse"))
	nfull := nurse.JID()
	tybalt := raw(ctx, t, capu, "tybalt", "street", rawclient.Config{}, "")
	must(t, tybalt.Sendf("<presence to='%s'><status>Boy, this shall not excuse the injuries</status></presence>", romeo.JID()))
	tfull := tybalt.JID()
	rec.until(ctx, t, "benvolio, juliet, the nurse and tybalt are there", func() bool {
		for _, full := range []string{bfull, jfull, nfull, tfull} {
			if _, ok := romeo.Roster().Resource(jid.MustParse(full)); !ok {
				return false
			}
		}
		_, ok := romeo.Rooms().Occupant(jid.MustParse(nurseNick))
		return ok
	})
	rec.skip()

	// The marks come first (in one batch), then the connection event.
	mark := rec.mark()
	killed := time.Now()
	must(t, mont.Kill())
	e := rec.expect(ctx, t, "disconnected", connEvent(client.ConnDisconnected))
	timing(t, "kill -9 of our server -> disconnected", e.at.Sub(killed))
	for _, full := range []string{bfull, jfull, nfull, tfull} {
		rec.waitFrom(ctx, t, mark, full+" local-disconnected", marked(roster.EventStale, full, psa.LocalDisconnected, self))
	}
	e, _ = rec.waitFrom(ctx, t, mark, "the room stale", roomEvent(mucwatch.EventRoomStale, room, ""))
	if e.room.Mark.Condition != psa.LocalDisconnected {
		t.Errorf("the room is stale because of %+v, want local-disconnected", e.room.Mark)
	}
	rec.waitFrom(ctx, t, mark, "the nurse local-disconnected", occupantMarked(mucwatch.EventOccupantStale, room, nurseNick, psa.LocalDisconnected, self))
	rec.expect(ctx, t, "reconnecting", connEvent(client.ConnReconnecting))
	if st := romeo.Roster().Stats(); st.Resources != 4 || st.Stale != 4 {
		t.Errorf("roster while disconnected: %+v, want 4 resources, all stale", st)
	}
	if st := romeo.Rooms().Stats(); st.StaleRooms != 1 || st.StaleOccupants != 2 {
		t.Errorf("rooms while disconnected: %+v, want the room and its 2 occupants stale", st)
	}
	if romeo.Session() != nil {
		t.Error("the client has a session while its server is dead")
	}

	// The roster changes while the server is down: mercutio is added.
	must(t, mont.WriteRoster("romeo", 2, map[string]string{
		"juliet@capulet.lit":    "both",
		"nurse@capulet.lit":     "both",
		"benvolio@montague.lit": "both",
		"mercutio@montague.lit": "both",
	}))
	// What the new session brings comes after this mark: the roster fetched
	// in it comes before the connection event.
	reconnected := rec.mark()
	restarted := time.Now()
	must(t, mont.Restart(ctx))
	timing(t, "restart of montague.lit", time.Since(restarted))
	e = rec.expect(ctx, t, "connected again", connEvent(client.ConnConnected))
	connected := e.at
	timing(t, "kill -9 -> reconnected (restart included)", e.at.Sub(killed))
	timing(t, "restart -> reconnected", e.at.Sub(restarted))

	// The roster is fetched again, by version: the new item arrives.
	rec.waitFrom(ctx, t, reconnected, "mercutio added", func(e event) bool {
		return e.roster != nil && e.roster.Kind == roster.EventItemAdded && e.roster.JID.String() == "mercutio@montague.lit"
	})
	// The server probes the contacts again: the answers refresh juliet and
	// the nurse, and tell that benvolio is gone.
	for _, full := range []string{jfull, nfull} {
		e, _ = rec.waitFrom(ctx, t, reconnected, full+" refreshed", marked(roster.EventRestored, full, psa.LocalDisconnected, self))
		timing(t, "reconnected -> "+full+" refreshed", e.at.Sub(connected))
	}
	rec.waitFrom(ctx, t, reconnected, "benvolio gone", rosterEvent(roster.EventUnavailable, bfull))
	// The room policy rejoins the room (the restart destroyed it).
	rec.waitFrom(ctx, t, reconnected, "rejoin", actionEvent(client.ActionRejoin, room, "reconnect"))
	e, _ = rec.waitFrom(ctx, t, reconnected, "rejoined", roomEvent(mucwatch.EventRoomJoined, room, ""))
	timing(t, "restart -> room rejoined", e.at.Sub(restarted))
	// The nurse was not in the new room: the rejoin swept her.
	rec.waitFrom(ctx, t, reconnected, "the nurse swept", roomEvent(mucwatch.EventOccupantUnavailable, room, nurseNick))
	// After the settle window tybalt's presence, which nobody sent again, is
	// swept.
	e, _ = rec.waitFrom(ctx, t, reconnected, "resynced", connEvent(client.ConnResynced))
	timing(t, "reconnected -> resynced (settle 2s)", e.at.Sub(connected))
	if e.conn.Swept != 1 {
		t.Errorf("swept %d resources, want 1 (tybalt)", e.conn.Swept)
	}
	rec.waitFrom(ctx, t, reconnected, "tybalt swept", rosterEvent(roster.EventUnavailable, tfull))

	if st := romeo.Roster().Stats(); st.Items != 4 || st.Resources != 2 || st.Stale != 0 || st.Strangers != 0 {
		t.Errorf("roster after the resync: %+v, want 4 items, 2 fresh resources, no stranger", st)
	}
	if r := resource(t, romeo, jfull); !r.Fresh() || r.StatusText() != "Wherefore art thou" {
		t.Errorf("juliet after the resync: fresh=%v status %q", r.Fresh(), r.StatusText())
	}
	if r, ok := romeo.Rooms().Room(jid.MustParse(room)); !ok || r.State != mucwatch.StateJoined || r.Stale || r.Occupants != 1 {
		t.Errorf("the room after the rejoin: %+v, want joined, fresh, romeo alone", r)
	}
	if romeo.JID().String() != self+"/lane" {
		t.Errorf("bound %s after the reconnect, want %s/lane", romeo.JID(), self)
	}
}
