package e2e_test

import (
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// A peer that hangs without closing its connections (SIGSTOP): TCP stays
// up, so Prosody alone notices only after its 840 s read timeout. mod_psa's
// keepalive ping gets no answer, montague.lit puts capulet.lit in outage,
// and juliet goes stale for romeo; when the peer wakes she is restored.
func TestFrozenPeer(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		mont.PSAOptions["psa_keepalive_interval"] = "0.5"
		mont.PSAOptions["psa_ping_timeout"] = "3"
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	juliet := raw(ctx, t, capu, "juliet", "balcony", rawclient.Config{}, "<status>Ay me!</status>")
	jfull := juliet.JID()
	rec := newRecorder()
	romeo := dial(ctx, t, mont, "romeo", "lane", rec)
	rec.expect(ctx, t, "juliet available", rosterEvent(roster.EventAvailable, jfull))
	awaitPresenceFrom(ctx, t, juliet, romeo.JID().String()) // both s2s directions up

	mark := mont.LogMark()
	frozen := time.Now()
	must(t, capu.Freeze())
	t.Cleanup(func() { _ = capu.Thaw() })
	e := rec.expect(ctx, t, "juliet stale", marked(roster.EventStale, jfull, psa.ServerUnavailable, montague))
	timing(t, "freeze -> stale event", e.at.Sub(frozen))
	// The keepalive found it, not a closed connection.
	if _, _, err := mont.WaitLog(ctx, mark, "no answer to a keepalive ping"); err != nil {
		t.Fatalf("montague.lit's log says nothing of the keepalive: %v\n%s", err, mont.LogTail(40))
	}
	if r := resource(t, romeo, jfull); r.StatusText() != "Ay me!" {
		t.Errorf("the stale presence lost its content: %q", r.StatusText())
	}

	thawed := time.Now()
	must(t, capu.Thaw())
	e = rec.expect(ctx, t, "juliet restored", marked(roster.EventRestored, jfull, psa.ServerUnavailable, montague))
	timing(t, "thaw -> restored event", e.at.Sub(thawed))
	if r := resource(t, romeo, jfull); !r.Fresh() {
		t.Errorf("juliet after the thaw: %+v", r.Marks)
	}
}
