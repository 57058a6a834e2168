package prosody_test

import (
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// A presence that came in over an incoming s2s session only (capulet.lit
// connected to montague.lit and authenticated by certificate, so
// montague.lit never dialed back), then montague.lit's first attempt to
// connect to capulet.lit fails. A failed attempt never becomes an
// authenticated session, so Prosody (0.12 and 13) fires only the global
// s2s-destroyed for it: mod_psa must hear that one too, check the domain
// and annotate.
func TestS2SFailedFirstAttempt(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) { certAuth(mont, capu) })
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	// Mercutio has no roster: his presence goes nowhere remote.
	mercutio := client(ctx, t, mont, "mercutio", "square", psaFeatures)
	must(t, mercutio.SendPresence(ctx, ""))
	tybalt := client(ctx, t, capu, "tybalt", "street", rawclient.Config{})
	must(t, tybalt.Sendf("<presence to='%s'><status>Boy, this shall not excuse</status></presence>", mercutio.JID()))
	expect(ctx, t, mercutio, "tybalt's directed presence", plainPresence(tybalt.JID(), ""))
	if strings.Contains(mont.LogTail(100000), "Outgoing s2s connection montague.lit->capulet.lit") {
		t.Fatal("montague.lit connected to capulet.lit: the test needs an incoming session only")
	}

	mark := mont.LogMark()
	must(t, n.CutOneWay(montague, capulet))
	must(t, mercutio.Sendf("<message type='chat' to='%s'><body>Will you pluck your sword?</body></message>", tybalt.JID()))
	expect(ctx, t, mercutio, "the bounce of the message", func(e *rawclient.Element) bool {
		return e.Is(rawclient.NSClient, "message") && e.Attr("type") == "error" && e.Attr("from") == tybalt.JID()
	})
	expect(ctx, t, mercutio, "server-unavailable", annotated(tybalt.JID(), montague, "server-unavailable"))
	if _, _, err := mont.WaitLog(ctx, mark, "Link montague.lit -> capulet.lit is down"); err != nil {
		t.Fatal(err)
	}

	must(t, n.Heal(montague, capulet))
	expect(ctx, t, mercutio, "empty annotation", annotated(tybalt.JID(), montague, ""))
}
