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

// A re-check in flight does not swallow the evidence of a heal. After a
// long outage the re-checks are far apart (here an hour: the backoff has
// grown) and a re-check ping can hang for up to psa_ping_timeout in a
// connection attempt over a route that drops packets. Evidence that the
// domain is back arriving meanwhile (a presence from it) must be acted on
// when that ping fails, not dropped until the next re-check: the old module
// dropped it (and evidence within a second of the last check), so the heal
// was noticed only at the next re-check, up to 300 s later with its
// defaults.
func TestHealEvidenceDuringHangingRecheck(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		slowRechecks(mont, capu)
		// The hanging ping fails when the test heals the route, not by
		// its timeout.
		mont.PSAOptions["psa_ping_timeout"] = "3600"
	})
	ctx := testContext(t, 60*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()

	// montague.lit can no longer reach capulet.lit; capulet.lit's own
	// session to montague.lit stays up, so juliet's presences still come.
	must(t, n.CutOneWay(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable", annotated(jfull, montague, "server-unavailable"))

	// Now the route drops packets: a connection attempt hangs.
	held, err := n.StallOneWay(montague, capulet)
	must(t, err)
	// A presence from capulet.lit is evidence that it may be back: a
	// re-check, whose connection attempt hangs.
	must(t, juliet.SendPresence(ctx, "<status>first</status>"))
	expect(ctx, t, romeo, "juliet's first presence, annotated", annotatedWithStatus(jfull, "server-unavailable", "first"))
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatalf("montague.lit made no connection attempt to capulet.lit after juliet's presence: %v", ctx.Err())
	}
	// More evidence while that re-check hangs.
	must(t, juliet.SendPresence(ctx, "<status>second</status>"))
	expect(ctx, t, romeo, "juliet's second presence, annotated", annotatedWithStatus(jfull, "server-unavailable", "second"))

	// The route is back: the hanging attempt fails (reset), and the
	// evidence that came meanwhile makes montague.lit look again at once.
	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation", annotated(jfull, montague, ""))
}
