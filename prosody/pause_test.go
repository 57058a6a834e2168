package prosody_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// A user with more roster contacts than psa_max_directed_per_session joins a
// room and hibernates: the pause goes to the contacts, never into the room
// (the room would re-broadcast the paused presence, the roster status text
// with it, to every occupant).
func TestPauseNotIntoRoomWithLargeRoster(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.HibernationTime = 30 * time.Second
		for i := range 120 {
			mont.Roster["romeo"][fmt.Sprintf("friend%d@%s", i, montague)] = "both"
		}
	})
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	room := "orchard@" + conference

	benvolio := client(ctx, t, mont, "benvolio", "street", psaFeatures)
	must(t, benvolio.SendPresence(ctx, ""))
	mercutio := occupant(ctx, t, mont, "mercutio", "square", psaFeatures, room, "Mercutio")

	romeo := client(ctx, t, mont, "romeo", "lane", rawclient.Config{StreamManagement: true})
	must(t, romeo.SendPresence(ctx, "<status>For my contacts only</status>"))
	must(t, romeo.JoinMUC(ctx, room, "Romeo"))
	expect(ctx, t, mercutio, "romeo joining", plainPresence(room+"/Romeo", ""))
	expect(ctx, t, benvolio, "romeo's presence", plainPresence(romeo.JID(), ""))
	joined := len(mercutio.History())

	must(t, romeo.Drop())
	expect(ctx, t, benvolio, "connection-paused", annotated(romeo.JID(), montague, "connection-paused"))
	// The room handled anything sent into it before it answers this.
	must(t, mercutio.RoundTrip(ctx, conference))
	for _, e := range mercutio.History()[joined:] {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == room+"/Romeo" {
			t.Errorf("the pause reached the room: %s", e)
		}
	}
}

// The user's own other resources get one pause annotation and one empty
// annotation, not two: mod_presence lists them among the session's directed
// presences too.
func TestPauseOnceToOwnResources(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.HibernationTime = 30 * time.Second
	})
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)

	desk := client(ctx, t, mont, "romeo", "desk", psaFeatures)
	must(t, desk.SendPresence(ctx, ""))
	lane := client(ctx, t, mont, "romeo", "lane", rawclient.Config{StreamManagement: true})
	must(t, lane.SendPresence(ctx, ""))
	expect(ctx, t, desk, "the other resource", plainPresence(lane.JID(), ""))

	must(t, lane.Drop())
	expect(ctx, t, desk, "connection-paused", annotated(lane.JID(), montague, "connection-paused"))
	must(t, lane.Resume(ctx))
	expect(ctx, t, desk, "empty annotation", annotated(lane.JID(), montague, ""))
	must(t, desk.Ping(ctx, ""))
	var got []string
	for _, e := range annotations(desk.History()) {
		got = append(got, e.String())
	}
	if len(got) != 2 {
		t.Fatalf("want one pause and one resume, got %d annotations:\n%s", len(got), strings.Join(got, "\n"))
	}
}
