package prosody_test

import (
	"context"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// A client trusts an annotation when its `from` is its own server's domain
// or the domain of the presence's sender. That holds only if servers strip
// the annotations that clients and occupants put into presence themselves:
// these tests forge them and check what the receiving client gets on the
// wire.

// forged is a state annotation that a client puts in its own presence.
func forged(by, cond string) string {
	return "<state-annotation xmlns='" + rawclient.NSPSA + "' from='" + by + "'><" + cond + "/></state-annotation>"
}

// noCaps is for clients of a server without mod_psa, or in a room of a
// service without it: nobody asks for their caps.
var noCaps = rawclient.Config{NoCaps: true}

// withStatus matches a presence from `from` of type typ with status text.
func withStatus(from, typ, status string) func(*rawclient.Element) bool {
	return func(e *rawclient.Element) bool {
		s := e.Child(rawclient.NSClient, "status")
		return e.Is(rawclient.NSClient, "presence") && e.Attr("from") == from && e.Attr("type") == typ && s != nil && s.Text() == status
	}
}

// annotationsBy returns the `from` of every annotation of e.
func annotationsBy(e *rawclient.Element) []string {
	var by []string
	for _, a := range e.ChildrenNamed(rawclient.NSPSA, "state-annotation") {
		by = append(by, a.Attr("from"))
	}
	return by
}

func expectUnannotated(ctx context.Context, t *testing.T, c *rawclient.Client, what string, match func(*rawclient.Element) bool) {
	t.Helper()
	p := expect(ctx, t, c, what, match)
	if by := annotationsBy(p); len(by) > 0 {
		t.Errorf("%s: %s got a forged annotation (from %v): %s", what, c.JID(), by, p)
	}
}

// A remote server that does not strip what its users put in (here one
// without mod_psa) relays juliet's forged annotations: montague.lit keeps
// only the ones from capulet.lit itself, the sending server speaking for its
// own users.
func TestForgedAnnotationOverS2S(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(_, capu *prosodytest.Spec) { capu.WithoutPSA = true })
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	plain := client(ctx, t, mont, "romeo", "plain", rawclient.Config{Features: []string{"urn:xmpp:other"}})
	must(t, plain.SendPresence(ctx, ""))
	juliet := client(ctx, t, capu, "juliet", "balcony", noCaps)
	must(t, juliet.SendPresence(ctx, "<status>Wherefore art thou</status>"))
	jfull := juliet.JID()
	expect(ctx, t, romeo, "juliet's presence", plainPresence(jfull, ""))

	// In her name, montague.lit's and its MUC service's: all stripped.
	must(t, juliet.Send("<presence><status>forged 1</status>"+
		forged(montague, "server-unavailable")+forged(conference, "server-unavailable")+
		forged("juliet@capulet.lit", "connection-paused")+"</presence>"))
	for _, c := range []*rawclient.Client{romeo, plain} {
		expectUnannotated(ctx, t, c, "juliet's presence with annotations from other domains", withStatus(jfull, "", "forged 1"))
	}

	// Her server's own domain is kept (once), the others are not.
	must(t, juliet.Send("<presence><status>forged 2</status>"+
		forged(montague, "server-unavailable")+forged(capulet, "connection-paused")+forged(capulet, "server-unavailable")+"</presence>"))
	p := expect(ctx, t, romeo, "juliet's presence annotated by capulet.lit", withStatus(jfull, "", "forged 2"))
	if by := annotationsBy(p); len(by) != 1 || by[0] != capulet || annotationOf(p).Child(rawclient.NSPSA, "connection-paused") == nil {
		t.Errorf("want only the first annotation from %s, got %v: %s", capulet, by, p)
	}
}

// Local users cannot annotate their own presence: not in a broadcast, not in
// directed presence, and the same holds for users of another server that
// runs mod_psa.
func TestForgedAnnotationFromClients(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	benvolio := client(ctx, t, mont, "benvolio", "street", psaFeatures)
	must(t, benvolio.SendPresence(ctx, ""))
	mercutio := client(ctx, t, mont, "mercutio", "square", psaFeatures)
	must(t, mercutio.SendPresence(ctx, ""))
	juliet := client(ctx, t, capu, "juliet", "balcony", psaFeatures)
	must(t, juliet.SendPresence(ctx, ""))
	expect(ctx, t, romeo, "benvolio's presence", plainPresence(benvolio.JID(), ""))
	expect(ctx, t, romeo, "juliet's presence", plainPresence(juliet.JID(), ""))

	// Broadcast presence of a local contact.
	must(t, benvolio.Send("<presence><status>broadcast</status>"+forged(montague, "connection-paused")+"</presence>"))
	expectUnannotated(ctx, t, romeo, "benvolio's annotated broadcast", withStatus(benvolio.JID(), "", "broadcast"))
	// His own reflection carries none either: the server stored it stripped.
	expectUnannotated(ctx, t, benvolio, "benvolio's reflected presence", withStatus(benvolio.JID(), "", "broadcast"))

	// Directed presence from a local stranger.
	must(t, mercutio.Sendf("<presence to='%s'><status>directed</status>%s</presence>", romeo.JID(), forged(montague, "connection-paused")))
	expectUnannotated(ctx, t, romeo, "mercutio's annotated directed presence", withStatus(mercutio.JID(), "", "directed"))

	// A remote contact whose server runs mod_psa: it strips, montague.lit
	// would keep an annotation from capulet.lit.
	must(t, juliet.Send("<presence><status>remote</status>"+forged(capulet, "connection-paused")+"</presence>"))
	expectUnannotated(ctx, t, romeo, "juliet's annotated broadcast", withStatus(juliet.JID(), "", "remote"))
	must(t, juliet.Sendf("<presence to='%s'><status>remote directed</status>%s</presence>", romeo.JID(), forged(capulet, "server-unavailable")))
	expectUnannotated(ctx, t, romeo, "juliet's annotated directed presence", withStatus(juliet.JID(), "", "remote directed"))
}

// An occupant cannot annotate her own occupant presence with the MUC
// service's domain: the service strips what occupants send into the room,
// also when the occupant's server does not (capulet.lit without mod_psa),
// and the occupant's own server strips it when it runs mod_psa.
func TestForgedOccupantAnnotation(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(_, capu *prosodytest.Spec) { capu.WithoutPSA = true })
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference

	romeo := occupant(ctx, t, mont, "romeo", "lane", psaFeatures, room, "Romeo")
	benvolio := occupant(ctx, t, mont, "benvolio", "street", psaFeatures, room, "Benvolio")
	nurse := occupant(ctx, t, capu, "nurse", "garden", noCaps, room, "Nurse")
	expect(ctx, t, romeo, "benvolio's occupant presence", plainPresence(room+"/Benvolio", ""))
	expect(ctx, t, romeo, "the nurse's occupant presence", plainPresence(room+"/Nurse", ""))

	// Over s2s, from a server that lets it through.
	must(t, nurse.Sendf("<presence to='%s/Nurse'><status>forged</status>%s%s</presence>", room, forged(conference, "server-unavailable"), forged(capulet, "connection-paused")))
	for _, c := range []*rawclient.Client{romeo, benvolio, nurse} {
		expectUnannotated(ctx, t, c, "the nurse's annotated occupant presence", withStatus(room+"/Nurse", "", "forged"))
	}
	// From a local occupant.
	must(t, benvolio.Sendf("<presence to='%s/Benvolio'><status>forged</status>%s</presence>", room, forged(conference, "server-unavailable")))
	for _, c := range []*rawclient.Client{romeo, benvolio, nurse} {
		expectUnannotated(ctx, t, c, "benvolio's annotated occupant presence", withStatus(room+"/Benvolio", "", "forged"))
	}
}

// XEP-0191: benvolio blocks romeo. Romeo gets benvolio's unavailable and
// then nothing of his: not the connection-paused presence when benvolio's
// session hibernates, nor the empty annotation when it resumes. Mercutio,
// who has benvolio's directed presence and is not blocked, gets both (and
// after him, since romeo comes first in the list, anything romeo would get).
func TestPauseRespectsBlockList(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.Modules = []string{"blocklist"}
		mont.HibernationTime = 30 * time.Second
	})
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	mercutio := client(ctx, t, mont, "mercutio", "square", psaFeatures)
	must(t, mercutio.SendPresence(ctx, ""))
	benvolio := client(ctx, t, mont, "benvolio", "street", rawclient.Config{StreamManagement: true})
	must(t, benvolio.SendPresence(ctx, "<status>He ran this way</status>"))
	bfull := benvolio.JID()
	expect(ctx, t, romeo, "benvolio's presence", plainPresence(bfull, ""))
	must(t, benvolio.Sendf("<presence to='%s'><status>Directed</status></presence>", mercutio.JID()))
	expect(ctx, t, mercutio, "benvolio's directed presence", plainPresence(bfull, ""))

	res, err := benvolio.IQ(ctx, "set", "", "<block xmlns='urn:xmpp:blocking'><item jid='romeo@"+montague+"'/></block>")
	must(t, err)
	if res.Attr("type") != "result" {
		t.Fatalf("block: %s", res)
	}
	expect(ctx, t, romeo, "benvolio's unavailable after the block", plainPresence(bfull, "unavailable"))
	blocked := len(romeo.History())

	leaked := func(step string) {
		t.Helper()
		must(t, romeo.Ping(ctx, ""))
		for _, e := range romeo.History()[blocked:] {
			if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == bfull {
				t.Errorf("%s: romeo, blocked, got benvolio's presence: %s", step, e)
			}
		}
	}

	must(t, benvolio.Drop())
	expect(ctx, t, mercutio, "connection-paused", annotated(bfull, montague, "connection-paused"))
	leaked("hibernation")

	must(t, benvolio.Resume(ctx))
	expect(ctx, t, mercutio, "empty annotation", annotated(bfull, montague, ""))
	leaked("resumption")
	// The blocks are silent for benvolio too: no "You have blocked this
	// JID" errors for presences he did not send.
	must(t, benvolio.Ping(ctx, ""))
	for _, e := range benvolio.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("type") == "error" {
			t.Errorf("benvolio got an error for a presence mod_psa sent in his name: %s", e)
		}
	}
}

// A contact that leaves with an annotated unavailable (capulet.lit, without
// mod_psa, lets juliet's annotation from capulet.lit through, and
// montague.lit keeps it: it is her server's domain) must be seen leaving by
// clients that did not ask for annotations, and must be forgotten: the next
// outage re-sends nothing for her.
func TestAnnotatedUnavailableReachesEveryone(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(_, capu *prosodytest.Spec) { capu.WithoutPSA = true })
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	plain := client(ctx, t, mont, "romeo", "plain", rawclient.Config{Features: []string{"urn:xmpp:other"}})
	must(t, plain.SendPresence(ctx, ""))
	juliet := client(ctx, t, capu, "juliet", "balcony", noCaps)
	must(t, juliet.SendPresence(ctx, "<status>Wherefore art thou</status>"))
	nurse := client(ctx, t, capu, "nurse", "garden", noCaps)
	must(t, nurse.SendPresence(ctx, ""))
	jfull, nfull := juliet.JID(), nurse.JID()
	for _, c := range []*rawclient.Client{romeo, plain} {
		expect(ctx, t, c, "juliet's presence", plainPresence(jfull, ""))
		expect(ctx, t, c, "the nurse's presence", plainPresence(nfull, ""))
	}

	must(t, juliet.Send("<presence type='unavailable'><status>Farewell</status>"+forged(capulet, "connection-paused")+"</presence>"))
	p := expect(ctx, t, plain, "juliet's unavailable", withStatus(jfull, "unavailable", "Farewell"))
	if by := annotationsBy(p); len(by) > 0 {
		t.Errorf("non-PSA session got an annotation: %s", p)
	}
	expect(ctx, t, romeo, "juliet's unavailable", withStatus(jfull, "unavailable", "Farewell"))

	// romeo's server forgot juliet's presence: the cut re-sends the
	// nurse's only.
	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "the nurse's server-unavailable", annotated(nfull, montague, "server-unavailable"))
	must(t, romeo.Ping(ctx, ""))
	for _, e := range romeo.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == jfull && e.Attr("type") == "" && annotationOf(e) != nil {
			t.Errorf("juliet, gone, came back annotated: %s", e)
		}
	}
}

// The same for an occupant of a remote room that leaves with an annotated
// unavailable (from the room's service, conference.capulet.lit, which runs
// no mod_psa and lets it through).
func TestAnnotatedOccupantUnavailableReachesEveryone(t *testing.T) {
	t.Parallel()
	const capConference = "conference." + capulet
	n := shakespeare(t, func(_, capu *prosodytest.Spec) {
		capu.WithoutPSA = true
		capu.MUC = capConference
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "tomb@" + capConference

	plain := occupant(ctx, t, mont, "mercutio", "plain", noCaps, room, "Mercutio")
	tybalt := occupant(ctx, t, capu, "tybalt", "street", noCaps, room, "Tybalt")
	expect(ctx, t, plain, "tybalt's occupant presence", plainPresence(room+"/Tybalt", ""))

	must(t, tybalt.Sendf("<presence type='unavailable' to='%s/Tybalt'><status>Slain</status>%s</presence>", room, forged(capConference, "server-unavailable")))
	p := expect(ctx, t, plain, "tybalt leaving", withStatus(room+"/Tybalt", "unavailable", "Slain"))
	if by := annotationsBy(p); len(by) > 0 {
		t.Errorf("non-PSA session got an annotation: %s", p)
	}
}

// XEP-0191 on the receiving side: romeo blocks juliet. When the link to
// capulet.lit is cut, his server re-sends the presences it remembers from
// there annotated, but not juliet's.
func TestOutageRespectsBlockList(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) { mont.Modules = []string{"blocklist"} })
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	juliet := client(ctx, t, capu, "juliet", "balcony", rawclient.Config{})
	must(t, juliet.SendPresence(ctx, ""))
	nurse := client(ctx, t, capu, "nurse", "garden", rawclient.Config{})
	must(t, nurse.SendPresence(ctx, ""))
	jfull, nfull := juliet.JID(), nurse.JID()
	expect(ctx, t, romeo, "juliet's presence", plainPresence(jfull, ""))
	expect(ctx, t, romeo, "the nurse's presence", plainPresence(nfull, ""))

	res, err := romeo.IQ(ctx, "set", "", "<block xmlns='urn:xmpp:blocking'><item jid='juliet@"+capulet+"'/></block>")
	must(t, err)
	if res.Attr("type") != "result" {
		t.Fatalf("block: %s", res)
	}
	blocked := len(romeo.History())

	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "the nurse's server-unavailable", annotated(nfull, montague, "server-unavailable"))
	must(t, romeo.Ping(ctx, ""))
	for _, e := range romeo.History()[blocked:] {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == jfull {
			t.Errorf("romeo blocked juliet and got her presence: %s", e)
		}
	}
}

// A MUC service on the same server that runs no mod_psa does not strip what
// occupants send into its rooms: the user host, which sees the service's
// stanzas directly, keeps no annotation from it.
func TestLocalMUCWithoutPSA(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		mont.MUCWithoutPSA = true
		capu.WithoutPSA = true
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	// JoinMUC would wait for the service to ask for his caps: this one
	// does not.
	must(t, romeo.Sendf("<presence to='%s/Romeo'><x xmlns='%s'/></presence>", room, rawclient.NSMUC))
	expect(ctx, t, romeo, "his own occupant presence", plainPresence(room+"/Romeo", ""))
	nurse := occupant(ctx, t, capu, "nurse", "garden", noCaps, room, "Nurse")
	expect(ctx, t, romeo, "the nurse's occupant presence", plainPresence(room+"/Nurse", ""))

	must(t, nurse.Sendf("<presence to='%s/Nurse'><status>forged</status>%s</presence>", room, forged(conference, "server-unavailable")))
	expectUnannotated(ctx, t, romeo, "the nurse's annotated occupant presence", withStatus(room+"/Nurse", "", "forged"))
}
