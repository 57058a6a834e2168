package e2e_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
)

// groupchat sends a groupchat message to room with the psakit client.
func groupchat(ctx context.Context, t testing.TB, c *client.Client, room, body string) {
	t.Helper()
	b := xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}})
	msg := stanza.Message{To: jid.MustParse(room), Type: stanza.GroupChatMessage}.Wrap(b)
	must(t, c.Send(ctx, msg))
}

// isBody matches a message with body.
func isBody(body string) func(*rawclient.Element) bool {
	return func(e *rawclient.Element) bool {
		b := e.Child(rawclient.NSClient, "body")
		return e.Is(rawclient.NSClient, "message") && b != nil && b.Text() == body
	}
}

// XEP-0310 case 3, a MUC occupant on an unreachable domain, seen from the
// room: the nurse (capulet.lit) is in a room of conference.montague.lit; when
// the link between the servers is cut, the MUC service marks her
// server-unavailable for romeo, clears the mark on the heal, and does not
// kick her.
func TestMUCOccupantUnreachable(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	room := "orchard@" + conference
	nurseNick := room + "/Nurse"

	rec := newRecorder()
	romeo := dial(ctx, t, mont, "romeo", "lane", rec)
	nurse := nurseInRoom(ctx, t, n, romeo, room)
	rec.expect(ctx, t, "the nurse in the room", roomEvent(mucwatch.EventOccupantAvailable, room, nurseNick))
	if _, err := nurse.Expect(ctx, func(e *rawclient.Element) bool { return e.Attr("from") == room+"/Romeo" }); err != nil {
		t.Fatal(err)
	}

	cut := time.Now()
	must(t, n.Cut(montague, capulet))
	e := rec.expect(ctx, t, "the nurse stale", occupantMarked(mucwatch.EventOccupantStale, room, nurseNick, psa.ServerUnavailable, conference))
	timing(t, "cut -> occupant stale event", e.at.Sub(cut))
	o, ok := romeo.Rooms().Occupant(jid.MustParse(nurseNick))
	if !ok || o.Fresh() || o.Marks[0].By.String() != conference {
		t.Errorf("the nurse while cut: %+v", o)
	}
	// The MUC service's word about one occupant does not make the room stale:
	// romeo is still in it.
	r, _ := romeo.Rooms().Room(jid.MustParse(room))
	if r.Stale || r.State != mucwatch.StateJoined || r.Occupants != 2 || r.StaleOccupants != 1 {
		t.Errorf("the room while cut: %+v", r)
	}
	// Talking in the room now must not reach capulet.lit (a bounce would kick
	// the nurse).
	groupchat(ctx, t, romeo, room, "Is she still there?")

	heal := time.Now()
	must(t, n.Heal(montague, capulet))
	e = rec.expect(ctx, t, "the nurse restored", occupantMarked(mucwatch.EventOccupantRestored, room, nurseNick, psa.ServerUnavailable, conference))
	timing(t, "heal -> occupant restored event", e.at.Sub(heal))
	if !e.room.Fresh() || !e.room.Resent {
		t.Errorf("restored event: fresh=%v resent=%v", e.room.Fresh(), e.room.Resent)
	}

	// She is still in the room, and hears it.
	groupchat(ctx, t, romeo, room, "Nurse!")
	if _, err := nurse.Expect(ctx, isBody("Nurse!")); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(0, roomEvent(mucwatch.EventOccupantUnavailable, room, nurseNick)); n > 0 {
		t.Errorf("the nurse left the room %d times:\n%s", n, dumpEvents(rec.since(0)))
	}
	for _, e := range nurse.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == nurseNick && e.Attr("type") == "unavailable" {
			t.Fatalf("the nurse was kicked: %s", e)
		}
	}
	if st := romeo.Rooms().Stats(); st.Joined != 1 || st.Occupants != 2 || st.StaleOccupants != 0 || st.StaleRooms != 0 {
		t.Errorf("rooms after the heal: %+v", st)
	}
}

// withRemoteMUC gives capulet.lit a MUC component.
func withRemoteMUC(_, capu *prosodytest.Spec) { capu.MUC = "conference.capulet.lit" }

// roomPolicy is the default room policy with a short self-ping timeout and
// rejoin delay: a test that goes wrong fails in seconds, not minutes.
func roomPolicy() client.RoomPolicy {
	p := client.DefaultRoomPolicy()
	p.PingTimeout = 3 * time.Second
	p.RejoinDelay = time.Second
	return p
}

// joinRemoteRoom makes juliet create room on capulet.lit's MUC service (so
// she owns it) and romeo's psakit client join it, and waits until the MUC
// service has enabled annotations for romeo.
func joinRemoteRoom(ctx context.Context, t *testing.T, n *prosodytest.Network, room string, rec *recorder, policy client.RoomPolicy) (romeo *client.Client, juliet *rawclient.Client) {
	t.Helper()
	mont, capu := n.Server(montague), n.Server(capulet)
	juliet = raw(ctx, t, capu, "juliet", "balcony", rawclient.Config{}, "")
	must(t, juliet.JoinMUC(ctx, room, "Juliet"))
	romeo = dial(ctx, t, mont, "romeo", "lane", rec, client.WithRoomPolicy(policy))
	mark := capu.LogMark()
	must(t, romeo.Join(ctx, jid.MustParse(room+"/Romeo")))
	awaitOccupantAnnotations(ctx, t, capu, mark, romeo.JID().String())
	if _, err := juliet.Expect(ctx, func(e *rawclient.Element) bool { return e.Attr("from") == room+"/Romeo" }); err != nil {
		t.Fatal(err)
	}
	return romeo, juliet
}

// selfPing waits for the next self-ping of room, and returns it.
func selfPing(ctx context.Context, t *testing.T, rec *recorder, room string) event {
	t.Helper()
	return rec.expect(ctx, t, "self-ping", func(e event) bool {
		return e.action != nil && e.action.Kind == client.ActionSelfPing && e.action.Room.String() == room
	})
}

// Our own server loses its link to a remote MUC service: the room goes stale
// (montague.lit marks its occupants, our own included), and on the heal the
// client self-pings the room and finds itself still joined. Then the room
// drops romeo during a second outage (juliet kicks him; the service cannot
// tell him): the self-ping after the heal says not joined, and the client
// rejoins.
func TestRemoteRoomUnreachable(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, withRemoteMUC)
	ctx := testContext(t, 60*time.Second)
	capu := n.Server(capulet)
	room := "tomb@conference.capulet.lit"
	rec := newRecorder()
	romeo, juliet := joinRemoteRoom(ctx, t, n, room, rec, roomPolicy())
	roomJID := jid.MustParse(room)

	t.Run("still joined", func(t *testing.T) {
		rec.skip()
		cut := time.Now()
		must(t, n.Cut(montague, capulet))
		e := rec.expect(ctx, t, "the room stale", roomEvent(mucwatch.EventRoomStale, room, ""))
		timing(t, "cut -> room stale event", e.at.Sub(cut))
		if e.room.Mark.Condition != psa.ServerUnavailable || e.room.Mark.By.String() != montague {
			t.Errorf("room stale because of %+v, want server-unavailable by montague.lit", e.room.Mark)
		}
		self, ok := romeo.Rooms().Self(roomJID)
		if !ok || self.Fresh() {
			t.Errorf("our own occupant while cut: %+v", self)
		}
		if r, _ := romeo.Rooms().Room(roomJID); !r.Stale || r.State != mucwatch.StateStale {
			t.Errorf("the room while cut: %+v", r)
		}

		heal := time.Now()
		must(t, n.Heal(montague, capulet))
		e = rec.expect(ctx, t, "the room restored", roomEvent(mucwatch.EventRoomRestored, room, ""))
		timing(t, "heal -> room restored event", e.at.Sub(heal))
		if !e.room.Resent {
			t.Error("the room's restore is not marked as a re-send: no reason to self-ping")
		}
		a := selfPing(ctx, t, rec, room)
		timing(t, "heal -> self-ping verdict", a.at.Sub(heal))
		if a.action.Reason != "restored" {
			t.Errorf("self-ping for %q, want restored", a.action.Reason)
		}
		if a.action.Verdict != mucwatch.VerdictJoined {
			t.Errorf("self-ping verdict %s (%v), want joined", a.action.Verdict, a.action.Err)
		}
		if r, _ := romeo.Rooms().Room(roomJID); r.Stale || r.State != mucwatch.StateJoined || r.StaleOccupants != 0 {
			t.Errorf("the room after the heal: %+v", r)
		}
	})

	t.Run("dropped during the outage", func(t *testing.T) {
		rec.skip()
		mark := capu.LogMark()
		must(t, n.Cut(montague, capulet))
		rec.expect(ctx, t, "the room stale", roomEvent(mucwatch.EventRoomStale, room, ""))
		// Once the MUC service knows montague.lit is unreachable it routes
		// nothing there: romeo will not hear that he was kicked.
		if _, _, err := capu.WaitLog(ctx, mark, "Link conference.capulet.lit -> montague.lit is down"); err != nil {
			t.Fatal(err)
		}
		res, err := juliet.IQ(ctx, "set", room, "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Romeo' role='none'><reason>Banished</reason></item></query>")
		if err != nil || res.Attr("type") != "result" {
			t.Fatalf("kicking romeo: %v %s", err, res)
		}
		if r, _ := romeo.Rooms().Room(roomJID); !r.Joined() {
			t.Fatalf("romeo heard of the kick during the outage: %+v", r)
		}

		heal := time.Now()
		must(t, n.Heal(montague, capulet))
		rec.expect(ctx, t, "the room restored", roomEvent(mucwatch.EventRoomRestored, room, ""))
		a := selfPing(ctx, t, rec, room)
		if a.action.Verdict != mucwatch.VerdictNotJoined {
			t.Errorf("self-ping verdict %s (%v), want not-joined", a.action.Verdict, a.action.Err)
		}
		rec.expect(ctx, t, "rejoin", actionEvent(client.ActionRejoin, room, "not-joined"))
		e := rec.expect(ctx, t, "rejoined", roomEvent(mucwatch.EventRoomJoined, room, ""))
		timing(t, "heal -> rejoined after a silent kick", e.at.Sub(heal))
		if _, err := juliet.Expect(ctx, func(e *rawclient.Element) bool {
			return e.Is(rawclient.NSClient, "presence") && e.Attr("from") == room+"/Romeo" && e.Attr("type") == ""
		}); err != nil {
			t.Fatalf("juliet does not see romeo back: %v", err)
		}
		if r, _ := romeo.Rooms().Room(roomJID); r.Stale || r.State != mucwatch.StateJoined || r.Occupants != 2 {
			t.Errorf("the room after the rejoin: %+v", r)
		}
	})
}

// The answer to the self-ping that the client sends as soon as its own
// server says the link is back gets through, although the MUC service may
// not have noticed yet that the link is back: six cut and heal cycles, and
// every first self-ping is answered.
func TestSelfPingAnsweredAfterHeal(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, withRemoteMUC)
	ctx := testContext(t, 90*time.Second)
	capu := n.Server(capulet)
	room := "tomb@conference.capulet.lit"
	rec := newRecorder()
	joinRemoteRoom(ctx, t, n, room, rec, roomPolicy())

	for i := range 6 {
		rec.skip()
		mark := capu.LogMark()
		must(t, n.Cut(montague, capulet))
		rec.expect(ctx, t, "the room stale", roomEvent(mucwatch.EventRoomStale, room, ""))
		heal := time.Now()
		must(t, n.Heal(montague, capulet))
		rec.expect(ctx, t, "the room restored", roomEvent(mucwatch.EventRoomRestored, room, ""))
		a := selfPing(ctx, t, rec, room)
		if a.action.Verdict != mucwatch.VerdictJoined {
			line, _ := findLog(capu, mark, "Not routing iq to romeo@montague.lit/lane")
			t.Fatalf("cycle %d: self-ping verdict %s (%v) after the heal; the MUC server's log: %q", i+1, a.action.Verdict, a.action.Err, line)
		}
		timing(t, fmt.Sprintf("cycle %d: heal -> self-ping answered", i+1), a.at.Sub(heal))
	}
}

// The remote MUC service's server is killed and restarted: the room, which
// was not persistent, is gone. The service answers the self-ping after the
// restore with item-not-found from its own domain (Prosody's answer for a
// room that does not exist, not a nick change in flight): not joined, and
// the client rejoins.
func TestRemoteRoomServerRestarted(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, withRemoteMUC)
	ctx := testContext(t, 60*time.Second)
	capu := n.Server(capulet)
	room := "tomb@conference.capulet.lit"
	rec := newRecorder()
	romeo, _ := joinRemoteRoom(ctx, t, n, room, rec, roomPolicy())
	roomJID := jid.MustParse(room)

	rec.skip()
	killed := time.Now()
	must(t, capu.Kill())
	e := rec.expect(ctx, t, "the room stale", roomEvent(mucwatch.EventRoomStale, room, ""))
	timing(t, "kill -9 of the room's server -> room stale", e.at.Sub(killed))
	restarted := time.Now()
	must(t, capu.Restart(ctx))
	rec.expect(ctx, t, "the room restored", roomEvent(mucwatch.EventRoomRestored, room, ""))
	a := selfPing(ctx, t, rec, room)
	var se stanza.Error
	if !errors.As(a.action.Err, &se) || se.Condition != stanza.ItemNotFound || se.By.String() != "conference.capulet.lit" {
		t.Errorf("self-ping answered %v, want item-not-found by conference.capulet.lit", a.action.Err)
	}
	if a.action.Verdict != mucwatch.VerdictNotJoined {
		r, _ := romeo.Rooms().Room(roomJID)
		t.Fatalf("the room is gone, but the self-ping verdict is %s: the model shows %s with %d occupants", a.action.Verdict, r.State, r.Occupants)
	}
	rec.expect(ctx, t, "rejoin", actionEvent(client.ActionRejoin, room, "not-joined"))
	e = rec.expect(ctx, t, "rejoined", roomEvent(mucwatch.EventRoomJoined, room, ""))
	timing(t, "restart -> rejoined", e.at.Sub(restarted))
	// The room was created anew: juliet is not in it, romeo is alone.
	if r, _ := romeo.Rooms().Room(roomJID); r.Stale || r.State != mucwatch.StateJoined || r.Occupants != 1 {
		t.Errorf("the room after the rejoin: %+v, want joined, fresh, romeo alone", r)
	}
}
