package prosody_test

import (
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// slowRechecks makes montague.lit re-check an unreachable domain only after an
// hour: a heal noticed within the test's deadline was noticed by something
// else than the re-check schedule.
func slowRechecks(mont, _ *prosodytest.Spec) {
	mont.PSAOptions["psa_recheck_interval"] = "3600"
	mont.PSAOptions["psa_recheck_max_interval"] = "3600"
}

// After a long outage the re-checks are far apart; an s2s session that the
// remote server establishes after the heal tells mod_psa at once that the
// domain is back.
func TestHealNoticedByIncomingSession(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, slowRechecks)
	ctx := testContext(t, 60*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()

	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable", annotated(jfull, montague, "server-unavailable"))

	must(t, n.Heal(montague, capulet))
	// juliet's server opens a new session to montague.lit to deliver this.
	must(t, juliet.Sendf("<message to='%s'><body>Art thou there?</body></message>", romeo.Bare()))
	expect(ctx, t, romeo, "empty annotation", annotated(jfull, montague, ""))
	expect(ctx, t, romeo, "juliet's message", func(e *rawclient.Element) bool {
		return e.Is(rawclient.NSClient, "message") && e.Attr("from") == jfull
	})
}

// The same when this server opens the new session itself (romeo writes to
// juliet).
func TestHealNoticedByOutgoingSession(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, slowRechecks)
	ctx := testContext(t, 60*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()

	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable", annotated(jfull, montague, "server-unavailable"))

	must(t, n.Heal(montague, capulet))
	must(t, romeo.Sendf("<message to='%s'><body>Juliet?</body></message>", jfull))
	expect(ctx, t, juliet, "romeo's message", func(e *rawclient.Element) bool {
		return e.Is(rawclient.NSClient, "message") && e.Attr("from") == romeo.JID()
	})
	expect(ctx, t, romeo, "empty annotation", annotated(jfull, montague, ""))
}
