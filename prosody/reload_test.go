package prosody_test

import (
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/rawclient"
)

// module:reload keeps what mod_psa knows: which sessions get annotations,
// the presences they got, and the domains in outage. A reload before a cut
// still annotates; a reload during an outage still restores.
func TestReloadKeepsState(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()

	reload := func() {
		t.Helper()
		// The shell answers once the module is loaded again.
		out, err := mont.Shell(ctx, `module:reload("psa", "`+montague+`")`)
		must(t, err)
		if !strings.Contains(out, "Module reloaded") {
			t.Fatalf("reload: %s", out)
		}
	}

	reload()
	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable after a reload", annotated(jfull, montague, "server-unavailable"))

	reload()
	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation after a reload during the outage", annotated(jfull, montague, ""))
}

// The same on a MUC component: after a reload the service still knows which
// occupants get annotations and which domains they come from.
func TestReloadKeepsMUCState(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference

	romeo := occupant(ctx, t, mont, "romeo", "lane", psaFeatures, room, "Romeo")
	occupant(ctx, t, capu, "nurse", "garden", psaFeatures, room, "Nurse")

	out, err := mont.Shell(ctx, `module:reload("psa", "`+conference+`")`)
	must(t, err)
	if !strings.Contains(out, "Module reloaded") {
		t.Fatalf("reload: %s", out)
	}
	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable from the MUC after a reload", annotated(room+"/Nurse", conference, "server-unavailable"))
	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation from the MUC", annotated(room+"/Nurse", conference, ""))
}

// A disco#info query that the MUC service had in flight when it reloaded is
// asked again: the occupant still gets annotations.
func TestReloadMUCAsksPendingCapsAgain(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference

	occupant(ctx, t, capu, "nurse", "garden", psaFeatures, room, "Nurse")
	hold := make(chan struct{})
	romeo := client(ctx, t, mont, "romeo", "lane", rawclient.Config{Features: []string{rawclient.NSPSA}, HoldDisco: hold})
	must(t, romeo.SendPresence(ctx, ""))       // montague.lit's query, held
	must(t, romeo.JoinMUC(ctx, room, "Romeo")) // the MUC service's query, held

	out, err := mont.Shell(ctx, `module:reload("psa", "`+conference+`")`)
	must(t, err)
	if !strings.Contains(out, "Module reloaded") {
		t.Fatalf("reload: %s", out)
	}
	close(hold)
	must(t, romeo.AwaitCapsQuery(ctx, conference))

	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable from the MUC", annotated(room+"/Nurse", conference, "server-unavailable"))
}
