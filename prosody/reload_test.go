package prosody_test

import (
	"strings"
	"testing"
	"time"
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
