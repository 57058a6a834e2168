package e2e_test

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/mucwatch"
)

// Prosody 0.12 keys occupants by their exact occupant JID: while romeo is
// Romeo in a room of conference.montague.lit, the nurse (capulet.lit) may
// join as ROMEO. She claims status 110 in her presence, marks herself with
// montague.lit's name on and off, and leaves. Romeo's nick, his own
// occupant and the target of his self-pings stay his, the room never goes
// stale, and the self-ping after she left still says joined.
func TestMUCCaseVariantNick(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	room := "orchard@" + conference
	roomJID := jid.MustParse(room)
	ours, hers := room+"/Romeo", room+"/ROMEO"

	policy := roomPolicy()
	policy.Silence = time.Second // self-pings come soon after she leaves
	rec := newRecorder()
	romeo := dial(ctx, t, mont, "romeo", "lane", rec, client.WithRoomPolicy(policy))
	mark := mont.LogMark()
	must(t, romeo.Join(ctx, jid.MustParse(ours)))
	awaitOccupantAnnotations(ctx, t, mont, mark, romeo.JID().String())
	joined := rec.mark()

	// check fails the test unless romeo's place in the room is his own.
	check := func(when string) {
		t.Helper()
		r, ok := romeo.Rooms().Room(roomJID)
		if !ok || r.Nick != "Romeo" || r.State != mucwatch.StateJoined || r.Stale {
			t.Fatalf("%s: the room %+v (%v), want joined as Romeo, not stale", when, r, ok)
		}
		me, ok := romeo.Rooms().Self(roomJID)
		if !ok || me.JID.String() != ours || !me.Fresh() {
			t.Fatalf("%s: our own occupant %+v (%v), want %s", when, me, ok, ours)
		}
	}

	nurse := raw(ctx, t, n.Server(capulet), "nurse", "garden", rawclient.Config{}, "")
	must(t, nurse.JoinMUC(ctx, room, "ROMEO"))
	e := rec.expect(ctx, t, "ROMEO in the room", func(e event) bool { return e.room != nil && e.room.JID.String() == hers })
	if e.room.Kind != mucwatch.EventOccupantAvailable || e.room.Occupant.Self {
		t.Fatalf("ROMEO joined: %s, want a new occupant, not ours\n%s", e, dumpEvents(rec.since(joined)))
	}
	check("she joined")
	if o, ok := romeo.Rooms().Occupant(jid.MustParse(hers)); !ok || o.Self {
		t.Fatalf("her occupant %+v (%v)", o, ok)
	}

	// She claims our status code, and an outage of our own server, on and
	// off; then a last presence that tells romeo has seen all of them.
	for range 3 {
		must(t, nurse.Sendf("<presence to='%s'><x xmlns='%s'><status code='110'/></x>"+
			"<state-annotation xmlns='urn:xmpp:psa' from='%s'><server-unavailable/></state-annotation></presence>",
			rawclient.Escape(hers), rawclient.NSMUCUser, montague))
		must(t, nurse.Sendf("<presence to='%s'><state-annotation xmlns='urn:xmpp:psa' from='%s'/></presence>",
			rawclient.Escape(hers), montague))
	}
	must(t, nurse.Sendf("<presence to='%s'><status>done</status></presence>", rawclient.Escape(hers)))
	rec.expect(ctx, t, "her last presence", func(e event) bool {
		return roomEvent(mucwatch.EventOccupantUpdated, room, hers)(e) && e.room.Occupant.StatusText() == "done"
	})
	check("her presences")

	must(t, nurse.Sendf("<presence to='%s' type='unavailable'/>", rawclient.Escape(hers)))
	rec.expect(ctx, t, "ROMEO left", roomEvent(mucwatch.EventOccupantUnavailable, room, hers))
	left := rec.mark()
	check("she left")
	if _, ok := romeo.Rooms().Occupant(jid.MustParse(hers)); ok {
		t.Fatal("she is still an occupant")
	}

	e, _ = rec.waitFrom(ctx, t, left, "a self-ping after she left", func(e event) bool {
		return e.action != nil && e.action.Kind == client.ActionSelfPing && e.action.Room.String() == room
	})
	if a := e.action; a.Occupant.String() != ours || a.Verdict != mucwatch.VerdictJoined || a.Err != nil {
		t.Fatalf("self-ping to %s: %s (%v), want a result from %s", a.Occupant, a.Verdict, a.Err, ours)
	}
	check("the self-ping")

	// Nothing she did flipped the room, so nothing made romeo self-ping for
	// a restored room; and none of his pings went to her.
	for _, k := range []mucwatch.EventKind{mucwatch.EventRoomStale, mucwatch.EventRoomRestored, mucwatch.EventNickChanged} {
		if n := rec.count(joined, roomEvent(k, room, "")); n > 0 {
			t.Errorf("%d %s events:\n%s", n, k, dumpEvents(rec.since(joined)))
		}
	}
	if n := rec.count(joined, actionEvent(client.ActionSelfPing, room, "restored")); n > 0 {
		t.Errorf("%d self-pings for a restored room", n)
	}
	for _, el := range nurse.History() {
		if el.Is(rawclient.NSClient, "iq") && el.Child(rawclient.NSPing, "ping") != nil {
			t.Errorf("the nurse got a ping: %s", el)
		}
	}
}
