package e2e_test

import (
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/roster"
)

// juliet's server does not strip what its users put in (it runs no
// mod_psa) and she annotates her own presence in the name of romeo's server:
// romeo's server strips it, so his psakit client never marks her stale. An
// annotation in her own server's name is kept: it speaks for her.
func TestForgedAnnotationNeverMarks(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(_, capu *prosodytest.Spec) { capu.WithoutPSA = true })
	ctx := testContext(t, 60*time.Second)
	juliet, rec, _ := romeoSeesJulietWith(ctx, t, n, rawclient.Config{NoCaps: true}, "<status>Wherefore art thou</status>")
	jfull := juliet.JID()
	from := rec.mark()

	updated := func(status string) func(event) bool {
		return func(e event) bool {
			return rosterEvent(roster.EventUpdated, jfull)(e) && e.roster.Resource.StatusText() == status
		}
	}
	must(t, juliet.Send("<presence><status>forged</status><state-annotation xmlns='"+rawclient.NSPSA+
		"' from='"+montague+"'><server-unavailable/></state-annotation></presence>"))
	rec.expect(ctx, t, "juliet's new status", updated("forged"))
	// Presence from juliet arrives in order: once this one is applied, the
	// forged one was handled completely.
	must(t, juliet.Send("<presence><status>after</status></presence>"))
	rec.expect(ctx, t, "juliet's next status", updated("after"))
	if got := rec.count(from, rosterEvent(roster.EventStale, jfull)); got != 0 {
		t.Fatalf("juliet marked stale by a forged annotation:\n%s", dumpEvents(rec.since(from)))
	}
}
