package prosody_test

import (
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// certAuth makes the servers trust the network's CA, so that they
// authenticate each other by certificate (SASL EXTERNAL) instead of
// dialback, as servers with real certificates do: only then does Prosody 13
// use stream management (XEP-0198) on s2s links.
func certAuth(specs ...*prosodytest.Spec) {
	for _, s := range specs {
		s.ExtraConfig += "\nssl = { cafile = \"certs/ca.crt\" }\n"
	}
}

// A room message on its way to a frozen occupant server when the MUC
// service's keepalive gives up on the link. Prosody 13 acknowledges s2s
// stanzas (XEP-0198 on s2s): the unacknowledged message bounces with
// recipient-unavailable from the service's own host when mod_psa closes the
// silent session, and that bounce would kick the occupant. 0.12 loses the
// message silently. Either way the occupant stays in the room, annotated,
// and is restored when the server wakes.
func TestMUCUnackedBounceDoesNotKick(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		mont.PSAOptions["psa_keepalive_interval"] = "0.5"
		mont.PSAOptions["psa_ping_timeout"] = "2"
		certAuth(mont, capu)
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference
	nick := room + "/Nurse"

	romeo := occupant(ctx, t, mont, "romeo", "lane", psaFeatures, room, "Romeo")
	nurse := occupant(ctx, t, capu, "nurse", "garden", psaFeatures, room, "Nurse")
	expect(ctx, t, romeo, "the nurse's occupant presence", plainPresence(nick, ""))
	expect(ctx, t, nurse, "romeo's occupant presence", plainPresence(room+"/Romeo", ""))

	mark := mont.LogMark()
	must(t, capu.Freeze())
	t.Cleanup(func() { _ = capu.Thaw() })
	// Sent before the keepalive notices: the service routes it to the
	// frozen server, where nobody acknowledges it.
	must(t, romeo.Sendf("<message type='groupchat' to='%s'><body>Nurse?</body></message>", room))
	expect(ctx, t, romeo, "server-unavailable from the MUC", annotated(nick, conference, "server-unavailable"))
	if _, _, err := mont.WaitLog(ctx, mark, "Link conference.montague.lit -> capulet.lit is down (no answer to a keepalive ping"); err != nil {
		t.Fatal(err)
	}

	must(t, capu.Thaw())
	expect(ctx, t, romeo, "empty annotation from the MUC", annotated(nick, conference, ""))
	must(t, romeo.Sendf("<message type='groupchat' to='%s'><body>Nurse!</body></message>", room))
	expect(ctx, t, nurse, "groupchat after the thaw", func(e *rawclient.Element) bool {
		b := e.Child(rawclient.NSClient, "body")
		return e.Is(rawclient.NSClient, "message") && b != nil && b.Text() == "Nurse!"
	})
	must(t, romeo.RoundTrip(ctx, conference))
	for _, e := range romeo.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == nick && e.Attr("type") == "unavailable" {
			t.Fatalf("the nurse was kicked from the room: %s", e)
		}
	}
}

// A reachability ping that was written into an s2s session which then dies.
// Prosody 13 bounces it recipient-unavailable from our own host (XEP-0198 on
// s2s); that is no answer from the remote domain and must not count as
// "reachable": the lost session is checked again on a new one. 0.12 loses
// the ping silently and re-checks when the session is destroyed.
func TestS2SPingLostWithSession(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		mont.PSAOptions["psa_keepalive_interval"] = "0"
		mont.PSAOptions["psa_ping_timeout"] = "30" // the session's end decides, not the timeout
		certAuth(mont, capu)
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()

	// capulet.lit hangs; its connection to montague.lit drops: montague.lit
	// pings capulet.lit over its own, still open, session.
	must(t, capu.Freeze())
	t.Cleanup(func() { _ = capu.Thaw() })
	mark := mont.LogMark()
	must(t, n.CutOneWay(capulet, montague))
	if _, _, err := mont.WaitLog(ctx, mark, "Checking reachability of capulet.lit from montague.lit (incoming s2s session lost)"); err != nil {
		t.Fatal(err)
	}
	// Now that session dies too, with the ping unanswered.
	must(t, n.CutOneWay(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable", annotated(jfull, montague, "server-unavailable"))
	down, _, err := mont.WaitLog(ctx, mark, "Link montague.lit -> capulet.lit is down")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(mont.LogTail(100000), "\n") {
		if strings.Contains(line, "Link montague.lit -> capulet.lit is up") {
			t.Errorf("a ping lost with its session counted as an answer (down: %q):\n%s", down, line)
		}
	}

	must(t, capu.Thaw())
	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation", annotated(jfull, montague, ""))
}
