package prosody_test

import (
	"context"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// cut cuts the link and returns a log mark of capulet.lit from before it.
func cut(t *testing.T, n *prosodytest.Network) int {
	t.Helper()
	mark := n.Server(capulet).LogMark()
	must(t, n.Cut(montague, capulet))
	return mark
}

// leaveDuringCut closes c (a capulet.lit client) while the link is cut, and
// waits until its server gave up delivering its unavailable to montague.lit,
// so that a heal cannot deliver it late. It first waits until the server
// dropped its s2s session to montague.lit (after cutMark) and a ping to
// montague.lit fails: the unavailable then goes into a new connection
// attempt, not into a connection reset a moment ago (where 0.12 loses it
// without a trace).
func leaveDuringCut(ctx context.Context, t *testing.T, srv *prosodytest.Server, c *rawclient.Client, cutMark int) {
	t.Helper()
	if _, _, err := srv.WaitLog(ctx, cutMark, "Destroying outgoing session "+capulet+"->"+montague); err != nil {
		t.Fatalf("%s kept its session to %s: %v", srv.Domain, montague, err)
	}
	e, err := c.IQ(ctx, "get", montague, "<ping xmlns='"+rawclient.NSPing+"'/>")
	must(t, err)
	if e.Attr("type") != "error" {
		t.Fatalf("montague.lit answered through the cut: %s", e)
	}
	mark := srv.LogMark()
	must(t, c.Close())
	if _, _, err := srv.WaitLog(ctx, mark, "because of failed outgoing connection to "+montague); err != nil {
		t.Fatalf("%s never gave up the queued unavailable: %v", srv.Domain, err)
	}
}

// A contact's resource that goes offline during an outage sent its
// unavailable into the cut link. After the heal the re-probe is answered for
// the resources still online only: the others get unavailable from the
// server once the answers are in, while the one still online stays.
func TestRestoreResourceGoneDuringOutage(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()
	chamber := client(ctx, t, n.Server(capulet), "juliet", "chamber", rawclient.Config{})
	must(t, chamber.SendPresence(ctx, "<status>Asleep</status>"))
	cfull := chamber.JID()
	expect(ctx, t, romeo, "juliet's second resource", plainPresence(cfull, ""))

	cutMark := cut(t, n)
	expectEach(ctx, t, romeo, "server-unavailable for both resources",
		annotated(jfull, montague, "server-unavailable"), annotated(cfull, montague, "server-unavailable"))
	leaveDuringCut(ctx, t, n.Server(capulet), chamber, cutMark)

	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "unavailable for the resource that left", plainPresence(cfull, "unavailable"))
	must(t, romeo.Ping(ctx, ""))
	for _, e := range romeo.History() {
		if plainPresence(jfull, "unavailable")(e) || plainPresence("juliet@"+capulet, "unavailable")(e) {
			t.Errorf("the resource still online was reported unavailable: %s", e)
		}
	}
}

// The same for an entity that is no contact and sent romeo directed
// presence: it is not probed, yet it must not stay online for ever.
func TestRestoreDirectedSenderGoneDuringOutage(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	tybalt := client(ctx, t, n.Server(capulet), "tybalt", "street", rawclient.Config{})
	must(t, tybalt.SendPresence(ctx, ""))
	must(t, tybalt.Sendf("<presence to='%s'><status>Boy, this shall not excuse</status></presence>", romeo.JID()))
	tfull := tybalt.JID()
	expect(ctx, t, romeo, "tybalt's directed presence", plainPresence(tfull, ""))
	// A second directed sender stays online: it must not be reported gone.
	house := client(ctx, t, n.Server(capulet), "tybalt", "house", rawclient.Config{})
	must(t, house.SendPresence(ctx, ""))
	must(t, house.Sendf("<presence to='%s'><status>Staying in</status></presence>", romeo.JID()))
	hfull := house.JID()
	expect(ctx, t, romeo, "tybalt's second directed presence", plainPresence(hfull, ""))

	cutMark := cut(t, n)
	expectEach(ctx, t, romeo, "server-unavailable for both of tybalt's resources",
		annotated(tfull, montague, "server-unavailable"), annotated(hfull, montague, "server-unavailable"))
	leaveDuringCut(ctx, t, n.Server(capulet), tybalt, cutMark)

	must(t, n.Heal(montague, capulet))
	expectEach(ctx, t, romeo, "the restore",
		annotated(juliet.JID(), montague, ""), annotated(hfull, montague, ""), plainPresence(tfull, "unavailable"))
	must(t, romeo.RoundTrip(ctx, capulet))
	must(t, romeo.Ping(ctx, ""))
	for _, e := range romeo.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("type") == "unavailable" &&
			(e.Attr("from") == juliet.JID() || e.Attr("from") == hfull) {
			t.Errorf("an entity still online was reported unavailable: %s", e)
		}
	}
}
