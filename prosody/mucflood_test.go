package prosody_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// mantua is a third server for the MUC caps table tests: a remote domain
// whose occupant must keep its place when another remote domain floods.
const mantua = "mantua.lit"

// expectNurseAnnotated waits until mont logged that the MUC service queued
// its announcements of capulet.lit's occupants and then sent them all,
// makes a round trip from each client to the service (which sent the
// annotations before logging, in order), and fails unless each received the
// nurse's server-unavailable in room.
func expectNurseAnnotated(ctx context.Context, t *testing.T, mont *prosodytest.Server, mark int, room string, clients ...*rawclient.Client) {
	t.Helper()
	announcementsSent(ctx, t, mont, mark, "annotated server-unavailable for "+capulet)
	match := annotated(room+"/Nurse", conference, "server-unavailable")
	for _, c := range clients {
		must(t, c.RoundTrip(ctx, conference))
		found := false
		for _, e := range c.History() {
			found = found || match(e)
		}
		if !found {
			t.Errorf("%s got no server-unavailable for the nurse:\n%s", c.JID(), dump(c.History()))
		}
	}
}

// Presences with caps sent into a room by someone who is refused (here:
// the nickname is taken) are not occupants' and take no place in the MUC
// service's caps table: before, four such presences flushed a table of four
// and romeo, an occupant, got no annotation.
func TestMUCCapsTableFlood(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.PSAOptions["psa_muc_max_tracked_jids"] = "4"
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference

	romeo := occupant(ctx, t, mont, "romeo", "lane", psaFeatures, room, "Romeo")
	occupant(ctx, t, capu, "nurse", "garden", psaFeatures, room, "Nurse")
	expect(ctx, t, romeo, "the nurse's occupant presence", plainPresence(room+"/Nurse", ""))

	// Tybalt, who never gets in, sends presence with caps to the room from 4
	// resources (a remote server can use any number).
	for i := range 4 {
		c := client(ctx, t, capu, "tybalt", fmt.Sprintf("r%d", i), psaFeatures)
		must(t, c.Sendf("<presence to='%s/Romeo'><x xmlns='%s'/>%s</presence>", room, rawclient.NSMUC, c.CapsElement()))
		expect(ctx, t, c, "the conflict error", func(e *rawclient.Element) bool {
			return e.Is(rawclient.NSClient, "presence") && e.Attr("type") == "error" && e.Attr("from") == room+"/Romeo"
		})
	}
	mark := mont.LogMark()
	must(t, n.Cut(montague, capulet))
	expectNurseAnnotated(ctx, t, mont, mark, room, romeo)
}

// Many occupants from one remote domain (a hostile server can join any
// number of resources) evict only that domain's entries from the MUC
// service's caps table: occupants from other domains, remote (mantua.lit)
// or local (montague.lit), keep their annotations. Either the domain's quota
// stops it, or, with a full table, the domain holding the most entries (the
// flooding one) loses one.
func TestMUCCapsTablePerDomainQuota(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		options map[string]string
	}{
		{"quota", map[string]string{"psa_muc_max_tracked_jids": "4", "psa_muc_max_tracked_jids_per_domain": "2"}},
		{"full table", map[string]string{"psa_muc_max_tracked_jids": "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			perDomainFlood(t, tc.options)
		})
	}
}

// threeServers starts montague.lit (romeo, the MUC service, with mod_psa
// options), capulet.lit (nurse, tybalt) and mantua.lit (john).
func threeServers(t *testing.T, options map[string]string) *prosodytest.Network {
	t.Helper()
	mont := prosodytest.Spec{
		Domain: montague, MUC: conference,
		Users:      map[string]string{"romeo": pw},
		PSAOptions: prosodytest.FastPSA(),
	}
	for k, v := range options {
		mont.PSAOptions[k] = v
	}
	capu := prosodytest.Spec{
		Domain: capulet, Users: map[string]string{"nurse": pw, "tybalt": pw},
		PSAOptions: prosodytest.FastPSA(),
	}
	mant := prosodytest.Spec{
		Domain: mantua, Users: map[string]string{"john": pw},
		PSAOptions: prosodytest.FastPSA(),
	}
	return prosodytest.Start(t, mont, capu, mant)
}

func perDomainFlood(t *testing.T, options map[string]string) {
	n := threeServers(t, options)
	ctx := testContext(t, 60*time.Second)
	room := "orchard@" + conference

	romeo := occupant(ctx, t, n.Server(montague), "romeo", "lane", psaFeatures, room, "Romeo")
	john := occupant(ctx, t, n.Server(mantua), "john", "cell", psaFeatures, room, "John")
	occupant(ctx, t, n.Server(capulet), "nurse", "garden", psaFeatures, room, "Nurse")
	expect(ctx, t, romeo, "the nurse's occupant presence", plainPresence(room+"/Nurse", ""))
	expect(ctx, t, john, "the nurse's occupant presence", plainPresence(room+"/Nurse", ""))

	// Tybalt joins from 4 resources under 4 nicknames: real occupants, each
	// with caps the service asks about.
	for i := range 4 {
		c := client(ctx, t, n.Server(capulet), "tybalt", fmt.Sprintf("r%d", i), psaFeatures)
		must(t, c.JoinMUC(ctx, room, fmt.Sprintf("Tybalt%d", i)))
	}
	mark := n.Server(montague).LogMark()
	must(t, n.Cut(montague, capulet))
	expectNurseAnnotated(ctx, t, n.Server(montague), mark, room, romeo, john)
}

// An occupant whose entry its domain's quota pushed out of the caps table is
// still in the room: when the last tracked occupant from its domain leaves,
// the service still watches the domain and annotates the occupant.
func TestMUCUntrackedOccupantStillAnnotated(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.PSAOptions["psa_muc_max_tracked_jids_per_domain"] = "1"
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference

	romeo := occupant(ctx, t, mont, "romeo", "lane", psaFeatures, room, "Romeo")
	occupant(ctx, t, capu, "nurse", "garden", psaFeatures, room, "Nurse")
	// Tybalt takes capulet.lit's only place, then leaves.
	tybalt := client(ctx, t, capu, "tybalt", "street", psaFeatures)
	must(t, tybalt.JoinMUC(ctx, room, "Tybalt"))
	must(t, tybalt.Sendf("<presence type='unavailable' to='%s/Tybalt'/>", room))
	expect(ctx, t, romeo, "tybalt leaving", plainPresence(room+"/Tybalt", "unavailable"))

	mark := mont.LogMark()
	must(t, n.Cut(montague, capulet))
	expectNurseAnnotated(ctx, t, mont, mark, room, romeo)
}

// With the table full, a newcomer from a domain that holds fewer entries
// takes the place of the least recently seen entry of the domain holding the
// most (capulet.lit), not of the least recently seen overall (romeo).
func TestMUCCapsTableNewcomerTakesFromLargestDomain(t *testing.T) {
	t.Parallel()
	n := threeServers(t, map[string]string{"psa_muc_max_tracked_jids": "3"})
	ctx := testContext(t, 60*time.Second)
	room := "orchard@" + conference

	romeo := occupant(ctx, t, n.Server(montague), "romeo", "lane", psaFeatures, room, "Romeo")
	occupant(ctx, t, n.Server(capulet), "nurse", "garden", psaFeatures, room, "Nurse")
	for i := range 2 {
		c := client(ctx, t, n.Server(capulet), "tybalt", fmt.Sprintf("r%d", i), psaFeatures)
		must(t, c.JoinMUC(ctx, room, fmt.Sprintf("Tybalt%d", i)))
	}
	john := occupant(ctx, t, n.Server(mantua), "john", "cell", psaFeatures, room, "John")
	expect(ctx, t, romeo, "john's occupant presence", plainPresence(room+"/John", ""))

	mark := n.Server(montague).LogMark()
	must(t, n.Cut(montague, capulet))
	expectNurseAnnotated(ctx, t, n.Server(montague), mark, room, romeo, john)
}
