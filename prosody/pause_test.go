package prosody_test

import (
	"fmt"
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
	mercutio := client(ctx, t, mont, "mercutio", "square", psaFeatures)
	must(t, mercutio.SendPresence(ctx, ""))
	must(t, mercutio.JoinMUC(ctx, room, "Mercutio"))

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
