package prosody_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/rawclient"
)

// A MUC occupant whose server is cut off from the MUC service is annotated by
// the service to the other (PSA) occupants and cleared when the link heals,
// and the service sends nothing to that server meanwhile, so the occupant is
// not kicked.
func TestMUCOccupantServerUnreachable(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference

	romeo := occupant(ctx, t, mont, "romeo", "lane", psaFeatures, room, "Romeo")
	mercutio := client(ctx, t, mont, "mercutio", "square", rawclient.Config{})
	must(t, mercutio.SendPresence(ctx, ""))
	must(t, mercutio.JoinMUC(ctx, room, "Mercutio"))
	nurse := occupant(ctx, t, capu, "nurse", "garden", psaFeatures, room, "Nurse")
	nick := room + "/Nurse"
	expect(ctx, t, romeo, "the nurse's occupant presence", plainPresence(nick, ""))
	expect(ctx, t, mercutio, "the nurse's occupant presence", plainPresence(nick, ""))

	expect(ctx, t, nurse, "romeo's occupant presence", plainPresence(room+"/Romeo", ""))

	cut := time.Now()
	mark := mont.LogMark()
	must(t, n.Cut(montague, capulet))
	p := expect(ctx, t, romeo, "server-unavailable from the MUC", annotated(nick, conference, "server-unavailable"))
	t.Logf("cut -> MUC annotation: %v", time.Since(cut))
	if p.Child(rawclient.NSMUCUser, "x") == nil {
		t.Errorf("annotated occupant presence without MUC payload: %s", p)
	}
	// On the other side, the nurse's own server annotates the remote room's
	// occupants: their presences come from conference.montague.lit.
	expect(ctx, t, nurse, "server-unavailable from her server", annotated(room+"/Romeo", capulet, "server-unavailable"))

	// Speaking in the room now must not reach capulet.lit (a bounce would
	// kick the nurse).
	must(t, romeo.Sendf("<message type='groupchat' to='%s'><body>Is she still there?</body></message>", room))
	expect(ctx, t, romeo, "own groupchat echo", func(e *rawclient.Element) bool {
		return e.Is(rawclient.NSClient, "message") && e.Attr("from") == room+"/Romeo"
	})
	if _, _, err := mont.WaitLog(ctx, mark, "during its outage"); err != nil {
		t.Fatal(err)
	}

	// Someone joining during the outage learns about it too.
	benvolio := occupant(ctx, t, mont, "benvolio", "street", psaFeatures, room, "Benvolio")
	expect(ctx, t, benvolio, "server-unavailable for a late joiner", annotated(nick, conference, "server-unavailable"))

	heal := time.Now()
	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation from the MUC", annotated(nick, conference, ""))
	t.Logf("heal -> MUC empty annotation: %v", time.Since(heal))
	expect(ctx, t, benvolio, "empty annotation for the late joiner", annotated(nick, conference, ""))
	expect(ctx, t, nurse, "empty annotation from her server", annotated(room+"/Romeo", capulet, ""))

	// The nurse is still in the room and hears it.
	must(t, romeo.Sendf("<message type='groupchat' to='%s'><body>Nurse!</body></message>", room))
	expect(ctx, t, nurse, "groupchat after the heal", func(e *rawclient.Element) bool {
		b := e.Child(rawclient.NSClient, "body")
		return e.Is(rawclient.NSClient, "message") && b != nil && b.Text() == "Nurse!"
	})
	for _, e := range romeo.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == nick && e.Attr("type") == "unavailable" {
			t.Fatalf("the nurse left the room: %s", e)
		}
	}
	for _, e := range nurse.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == nick && e.Attr("type") == "unavailable" {
			t.Fatalf("the nurse was kicked: %s", e)
		}
	}
	must(t, mercutio.RoundTrip(ctx, conference))
	for _, e := range annotations(mercutio.History()) {
		if strings.HasPrefix(e.Attr("from"), room) {
			t.Errorf("non-PSA occupant got an annotation: %s", e)
		}
	}
}

// Leaving one room leaves the occupant's annotations on in the others.
func TestMUCLeavingOneRoomKeepsAnnotationsInOthers(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	orchard, tomb := "orchard@"+conference, "tomb@"+conference

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	nurse := client(ctx, t, capu, "nurse", "garden", rawclient.Config{})
	must(t, nurse.SendPresence(ctx, ""))
	must(t, nurse.JoinMUC(ctx, orchard, "Nurse"))
	must(t, romeo.JoinMUC(ctx, orchard, "Romeo"))
	// Same caps: the service does not ask again.
	rejoin(ctx, t, nurse, tomb, "Nurse")
	rejoin(ctx, t, romeo, tomb, "Romeo")
	must(t, romeo.Sendf("<presence type='unavailable' to='%s/Romeo'/>", tomb))
	expect(ctx, t, romeo, "leaving the tomb", plainPresence(tomb+"/Romeo", "unavailable"))

	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable in the orchard", annotated(orchard+"/Nurse", conference, "server-unavailable"))
	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation in the orchard", annotated(orchard+"/Nurse", conference, ""))
}

// rejoin joins a second room with the caps the MUC service already verified
// (so it asks no disco#info) and waits for the own presence (status 110).
func rejoin(ctx context.Context, t *testing.T, c *rawclient.Client, room, nick string) {
	t.Helper()
	must(t, c.Sendf("<presence to='%s/%s'><x xmlns='%s'><history maxstanzas='0'/></x>%s</presence>", room, nick, rawclient.NSMUC, c.CapsElement()))
	expect(ctx, t, c, "own presence in "+room, func(e *rawclient.Element) bool {
		if !plainPresence(room+"/"+nick, "")(e) {
			return false
		}
		for _, s := range e.Child(rawclient.NSMUCUser, "x").ChildrenNamed(rawclient.NSMUCUser, "status") {
			if s.Attr("code") == "110" {
				return true
			}
		}
		return false
	})
}

// In a room that broadcasts only moderators' presence, a participant's
// annotated presence does not reach the other occupants either.
func TestMUCAnnotationsFollowPresenceBroadcast(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	must(t, romeo.JoinMUC(ctx, room, "Romeo")) // the creator: owner, moderator
	// Only moderators' presence is broadcast (XEP-0045 room configuration).
	res, err := romeo.IQ(ctx, "set", room, "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"+
		"<field var='muc#roomconfig_presencebroadcast'><value>moderator</value></field></x></query>")
	must(t, err)
	if res.Attr("type") != "result" {
		t.Fatalf("room configuration refused: %s", res)
	}
	nurse := client(ctx, t, capu, "nurse", "garden", psaFeatures)
	must(t, nurse.SendPresence(ctx, ""))
	must(t, nurse.JoinMUC(ctx, room, "Nurse")) // a participant

	mark := mont.LogMark()
	must(t, n.Cut(montague, capulet))
	announcementsSent(ctx, t, mont, mark, "annotated server-unavailable for capulet.lit")
	must(t, romeo.RoundTrip(ctx, conference))
	for _, e := range romeo.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == room+"/Nurse" {
			t.Errorf("a participant's presence reached another occupant: %s", e)
		}
	}
}
