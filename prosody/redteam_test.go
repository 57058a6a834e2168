package prosody_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// verona is a second VirtualHost of montague.lit's Prosody process.
const verona = "verona.lit"

// withVerona adds the VirtualHost verona.lit to the process of spec, with
// mod_psa or without.
func withVerona(spec *prosodytest.Spec, psa bool) {
	spec.ExtraConfig += "\nVirtualHost \"" + verona + "\"\n"
	if !psa {
		spec.ExtraConfig += "\tmodules_disabled = { \"psa\" }\n"
	}
}

// registerOnVerona creates user@verona.lit, an account of a VirtualHost
// that prosodytest does not know about, the way Server.Register does.
func registerOnVerona(t *testing.T, srv *prosodytest.Server, user string) {
	t.Helper()
	dir := filepath.Join(srv.Dir, "data", "verona%2elit", "accounts")
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, user+".dat"), []byte("return {\n\t[\"password\"] = \""+pw+"\";\n};\n"), 0o600))
}

// A user of another VirtualHost of the same Prosody process, one that does
// not load mod_psa, sends romeo a presence annotated in the name of romeo's
// own server. It never crosses s2s and is not sent by a client of
// montague.lit: montague.lit must still strip it, or romeo's client believes
// his own server.
func TestForgedAnnotationFromOtherVirtualHost(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) { withVerona(mont, false) })
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	registerOnVerona(t, mont, "mercutio")

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	plain := client(ctx, t, mont, "romeo", "plain", rawclient.Config{Features: []string{"urn:xmpp:other"}})
	must(t, plain.SendPresence(ctx, ""))
	mercutio, err := rawclient.Dial(ctx, rawclient.Config{
		Addr: mont.C2SAddr, Domain: verona, User: "mercutio", Password: pw, Resource: "square", NoCaps: true,
	})
	must(t, err)
	t.Cleanup(func() { _ = mercutio.Close() })

	for _, to := range []string{romeo.JID(), romeo.Bare()} {
		must(t, mercutio.Sendf("<presence to='%s'><status>to %s</status>%s%s</presence>", to, to,
			forged(montague, "server-unavailable"), forged(verona, "connection-paused")))
		expectUnannotated(ctx, t, romeo, "mercutio's presence annotated in montague.lit's name", withStatus(mercutio.JID(), "", "to "+to))
	}
	// A session without annotations sees the presence, without the annotation.
	expectUnannotated(ctx, t, plain, "mercutio's presence to the bare JID", withStatus(mercutio.JID(), "", "to "+romeo.Bare()))
}

// The same VirtualHost with mod_psa: its own annotations (a hibernating
// session's connection-paused) reach romeo, what its users forge does not.
func TestAnnotationFromOtherVirtualHostWithPSA(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		withVerona(mont, true)
		mont.HibernationTime = 30 * time.Second
	})
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	registerOnVerona(t, mont, "mercutio")

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	mercutio, err := rawclient.Dial(ctx, rawclient.Config{
		Addr: mont.C2SAddr, Domain: verona, User: "mercutio", Password: pw, Resource: "square",
		NoCaps: true, StreamManagement: true,
	})
	must(t, err)
	t.Cleanup(func() { _ = mercutio.Close() })
	mfull := mercutio.JID()

	must(t, mercutio.Send("<presence/>"))
	must(t, mercutio.Sendf("<presence to='%s'><status>forged</status>%s%s</presence>", romeo.JID(),
		forged(montague, "server-unavailable"), forged(verona, "connection-paused")))
	expectUnannotated(ctx, t, romeo, "mercutio's forged presence", withStatus(mfull, "", "forged"))

	must(t, mercutio.Drop())
	expect(ctx, t, romeo, "connection-paused from verona.lit", annotated(mfull, verona, "connection-paused"))
	must(t, mercutio.Resume(ctx))
	expect(ctx, t, romeo, "the empty annotation from verona.lit", annotated(mfull, verona, ""))
}

// A server or MUC service without mod_psa lets its users put an annotation
// in their own presence in its name, and montague.lit keeps it (it speaks
// for them). Such a presence is no re-send: it may be the first one a
// session gets from that JID. A session that did not ask for annotations
// must still see it, without the annotation, or the contact (or occupant)
// is invisible to it: online for everyone else, absent for it.
func TestForeignAnnotationDoesNotHideFromPlainSessions(t *testing.T) {
	t.Parallel()
	const capConference = "conference." + capulet
	n := shakespeare(t, func(_, capu *prosodytest.Spec) {
		capu.WithoutPSA = true
		capu.MUC = capConference
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "tomb@" + capConference

	plain := client(ctx, t, mont, "romeo", "plain", rawclient.Config{Features: []string{"urn:xmpp:other"}})
	must(t, plain.SendPresence(ctx, ""))
	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	// JoinMUC would wait for the service to ask for caps: this one does not.
	must(t, plain.Sendf("<presence to='%s/Romeo'><x xmlns='%s'/></presence>", room, rawclient.NSMUC))
	expect(ctx, t, plain, "his own occupant presence", plainPresence(room+"/Romeo", ""))

	// Juliet comes online with an annotation in her server's name.
	juliet := client(ctx, t, capu, "juliet", "balcony", noCaps)
	must(t, juliet.Send("<presence><status>hidden?</status>"+forged(capulet, "connection-paused")+"</presence>"))
	expect(ctx, t, romeo, "juliet's annotated presence", withStatus(juliet.JID(), "", "hidden?"))
	expectUnannotated(ctx, t, plain, "juliet's presence", withStatus(juliet.JID(), "", "hidden?"))

	// Tybalt joins the room with an annotation in the service's name.
	tybalt := client(ctx, t, capu, "tybalt", "street", noCaps)
	must(t, tybalt.Sendf("<presence to='%s/Tybalt'><x xmlns='%s'/><status>lurking</status>%s</presence>",
		room, rawclient.NSMUC, forged(capConference, "server-unavailable")))
	expectUnannotated(ctx, t, plain, "tybalt's occupant presence", withStatus(room+"/Tybalt", "", "lurking"))
}

// forgedAs is forged with the element written with a namespace prefix,
// which parsers must treat exactly as the default-namespace form.
func forgedAs(by, cond string) string {
	return "<psa:state-annotation xmlns:psa='" + rawclient.NSPSA + "' from='" + by + "'><psa:" + cond + "/></psa:state-annotation>"
}

// Wire tricks by clients: a prefixed element, presence types other than
// available, presence to the sender's own bare JID or another resource of
// it, and, over s2s from a server without mod_psa, spellings of
// montague.lit (upper case, trailing dot) that a client normalizing JIDs
// would take for its own server, and an error presence (a bounce echoes the
// original stanza's children). None keeps an annotation in another
// domain's name.
func TestForgedAnnotationSpellings(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(_, capu *prosodytest.Spec) { capu.WithoutPSA = true })
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	second := client(ctx, t, mont, "romeo", "second", psaFeatures)
	must(t, second.SendPresence(ctx, ""))
	mercutio := client(ctx, t, mont, "mercutio", "square", noCaps)
	must(t, mercutio.SendPresence(ctx, ""))
	juliet := client(ctx, t, capu, "juliet", "balcony", noCaps)
	must(t, juliet.SendPresence(ctx, ""))
	expect(ctx, t, romeo, "juliet's presence", plainPresence(juliet.JID(), ""))

	withType := func(from, typ string) func(*rawclient.Element) bool {
		return func(e *rawclient.Element) bool {
			return e.Is(rawclient.NSClient, "presence") && e.Attr("from") == from && e.Attr("type") == typ
		}
	}

	// A prefixed element from a local client.
	must(t, mercutio.Sendf("<presence to='%s'><status>prefixed</status>%s</presence>", romeo.JID(), forgedAs(montague, "server-unavailable")))
	expectUnannotated(ctx, t, romeo, "prefixed annotation", withStatus(mercutio.JID(), "", "prefixed"))
	// Other types from a local client.
	must(t, mercutio.Sendf("<presence type='subscribe' to='%s'>%s</presence>", romeo.Bare(), forged(montague, "server-unavailable")))
	expectUnannotated(ctx, t, romeo, "type subscribe", withType(mercutio.Bare(), "subscribe"))
	for _, typ := range []string{"error", "unavailable"} {
		must(t, mercutio.Sendf("<presence type='%s' to='%s'>%s</presence>", typ, romeo.JID(), forged(montague, "server-unavailable")))
		expectUnannotated(ctx, t, romeo, "type "+typ, withType(mercutio.JID(), typ))
	}
	// To his own bare JID and to another resource of his.
	must(t, second.Sendf("<presence to='%s'><status>own bare</status>%s</presence>", romeo.Bare(), forged(montague, "server-unavailable")))
	expectUnannotated(ctx, t, romeo, "presence to the own bare JID", withStatus(second.JID(), "", "own bare"))
	must(t, second.Sendf("<presence to='%s'><status>own resource</status>%s</presence>", romeo.JID(), forgedAs(montague, "connection-paused")))
	expectUnannotated(ctx, t, romeo, "presence to another own resource", withStatus(second.JID(), "", "own resource"))

	// Over s2s, montague.lit spelled otherwise, and prefixed.
	for i, by := range []string{"MONTAGUE.LIT", montague + ".", "Montague.Lit."} {
		status := "spelling " + by
		must(t, juliet.Sendf("<presence><status>%s</status>%s%s</presence>", status, forged(by, "server-unavailable"), forgedAs(by, "connection-paused")))
		p := expect(ctx, t, romeo, status, withStatus(juliet.JID(), "", status))
		if got := annotationsBy(p); len(got) > 0 {
			t.Errorf("%d: %s kept: %s", i, by, p)
		}
	}
	must(t, juliet.Sendf("<presence type='error' to='%s'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>%s</presence>",
		romeo.JID(), forged(montague, "connection-paused")))
	expectUnannotated(ctx, t, romeo, "an error presence echoing montague.lit's annotation", withType(juliet.JID(), "error"))
}

// Benvolio appears offline to romeo, his contact: after his broadcast he
// sends romeo a directed unavailable. When his session hibernates, romeo
// must not get his presence back, annotated connection-paused, nor the
// empty annotation on resumption: that would tell romeo he is online.
// Mercutio, another contact, gets both.
func TestPauseRespectsDirectedUnavailable(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.HibernationTime = 30 * time.Second
		mont.Roster["benvolio"]["mercutio@"+montague] = "both"
		mont.Roster["mercutio"] = map[string]string{"benvolio@" + montague: "both"}
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
	expect(ctx, t, mercutio, "benvolio's presence", plainPresence(bfull, ""))
	must(t, benvolio.Sendf("<presence type='unavailable' to='%s'/>", romeo.Bare()))
	expect(ctx, t, romeo, "benvolio's directed unavailable", plainPresence(bfull, "unavailable"))
	hidden := len(romeo.History())

	leaked := func(step string) {
		t.Helper()
		must(t, romeo.Ping(ctx, ""))
		for _, e := range romeo.History()[hidden:] {
			if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == bfull {
				t.Errorf("%s: romeo, to whom benvolio is offline, got his presence: %s", step, e)
			}
		}
	}
	must(t, benvolio.Drop())
	expect(ctx, t, mercutio, "connection-paused", annotated(bfull, montague, "connection-paused"))
	leaked("hibernation")
	must(t, benvolio.Resume(ctx))
	expect(ctx, t, mercutio, "empty annotation", annotated(bfull, montague, ""))
	leaked("resumption")

	// His next broadcast reaches romeo again, and so does the next pause.
	must(t, benvolio.SendPresence(ctx, "<status>Back</status>"))
	expect(ctx, t, romeo, "benvolio's next broadcast", withStatus(bfull, "", "Back"))
	must(t, benvolio.Drop())
	expect(ctx, t, romeo, "connection-paused after the broadcast", annotated(bfull, montague, "connection-paused"))
}

// While benvolio's session hibernates, his other resource cancels romeo's
// subscription to him: romeo gets his unavailable. The resumption must not
// send romeo his presence again (with the empty annotation): romeo may no
// longer see it. Mercutio, still a contact, gets it.
func TestResumeRespectsRevokedSubscription(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.HibernationTime = 30 * time.Second
		mont.Roster["benvolio"]["mercutio@"+montague] = "both"
		mont.Roster["mercutio"] = map[string]string{"benvolio@" + montague: "both"}
	})
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	mercutio := client(ctx, t, mont, "mercutio", "square", psaFeatures)
	must(t, mercutio.SendPresence(ctx, ""))
	benvolio := client(ctx, t, mont, "benvolio", "street", rawclient.Config{StreamManagement: true})
	must(t, benvolio.SendPresence(ctx, "<status>He ran this way</status>"))
	other := client(ctx, t, mont, "benvolio", "other", noCaps)
	bfull := benvolio.JID()
	expect(ctx, t, romeo, "benvolio's presence", plainPresence(bfull, ""))
	expect(ctx, t, mercutio, "benvolio's presence", plainPresence(bfull, ""))

	must(t, benvolio.Drop())
	expect(ctx, t, romeo, "connection-paused", annotated(bfull, montague, "connection-paused"))
	expect(ctx, t, mercutio, "connection-paused", annotated(bfull, montague, "connection-paused"))
	must(t, other.Sendf("<presence type='unsubscribed' to='%s'/>", romeo.Bare()))
	expect(ctx, t, romeo, "benvolio's unavailable after the cancellation", plainPresence(bfull, "unavailable"))
	revoked := len(romeo.History())

	must(t, benvolio.Resume(ctx))
	expect(ctx, t, mercutio, "empty annotation", annotated(bfull, montague, ""))
	must(t, romeo.Ping(ctx, ""))
	for _, e := range romeo.History()[revoked:] {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == bfull && e.Attr("type") == "" {
			t.Errorf("romeo, no longer subscribed, got benvolio's presence: %s", e)
		}
	}
}
