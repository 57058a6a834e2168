package e2e_test

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// A peer that hangs without closing its connections (SIGSTOP): TCP stays
// up, so Prosody alone notices only after its 840 s read timeout. mod_psa's
// keepalive pings get no answer: montague.lit and its MUC service put
// capulet.lit in outage, juliet goes stale for romeo and so does the
// nurse's occupant in the room; when the peer wakes both are restored.
func TestFrozenPeer(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		mont.PSAOptions["psa_keepalive_interval"] = "0.5"
		mont.PSAOptions["psa_ping_timeout"] = "3"
	})
	room := "orchard@" + conference
	nurseNick := room + "/Nurse"
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "<status>Ay me!</status>")
	jfull := juliet.JID()
	nurseInRoom(ctx, t, n, romeo, room)
	rec.until(ctx, t, "the nurse's occupant is there", func() bool {
		_, ok := romeo.Rooms().Occupant(jid.MustParse(nurseNick))
		return ok
	})

	// The two annotators' events come in either order: both are looked for
	// from here.
	mark, start := mont.LogMark(), rec.mark()
	frozen := time.Now()
	must(t, capu.Freeze())
	t.Cleanup(func() { _ = capu.Thaw() })
	e, _ := rec.waitFrom(ctx, t, start, "juliet stale", marked(roster.EventStale, jfull, psa.ServerUnavailable, montague))
	timing(t, "freeze -> stale event", e.at.Sub(frozen))
	e, _ = rec.waitFrom(ctx, t, start, "the nurse's occupant stale",
		occupantMarked(mucwatch.EventOccupantStale, room, nurseNick, psa.ServerUnavailable, conference))
	timing(t, "freeze -> occupant stale event", e.at.Sub(frozen))
	// The keepalives found it, not a closed connection.
	for _, line := range []string{
		"Link montague.lit -> capulet.lit is down (no answer to a keepalive ping",
		"Link conference.montague.lit -> capulet.lit is down (no answer to a keepalive ping",
	} {
		if _, _, err := mont.WaitLog(ctx, mark, line); err != nil {
			t.Fatalf("no %q in montague.lit's log: %v\n%s", line, err, mont.LogTail(40))
		}
	}
	if r := resource(t, romeo, jfull); r.StatusText() != "Ay me!" {
		t.Errorf("the stale presence lost its content: %q", r.StatusText())
	}

	thawed, start := time.Now(), rec.mark()
	must(t, capu.Thaw())
	e, _ = rec.waitFrom(ctx, t, start, "juliet restored", marked(roster.EventRestored, jfull, psa.ServerUnavailable, montague))
	timing(t, "thaw -> restored event", e.at.Sub(thawed))
	rec.waitFrom(ctx, t, start, "the nurse's occupant restored",
		occupantMarked(mucwatch.EventOccupantRestored, room, nurseNick, psa.ServerUnavailable, conference))
	if r := resource(t, romeo, jfull); !r.Fresh() {
		t.Errorf("juliet after the thaw: %+v", r.Marks)
	}
}
