package prosody_test

import (
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// XEP-0198 hibernation of a contact's session: its presence annotated
// <connection-paused/> by its server, an empty annotation on resume, and the
// normal unavailable when hibernation times out. Local contacts get it from
// the same server; remote ones over s2s. Sessions without PSA get no
// annotation (a remote pause reaches them as a plain copy of the presence).
func TestHibernation(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		mont.HibernationTime = time.Second
		capu.HibernationTime = time.Second
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	plain := client(ctx, t, mont, "romeo", "plain", rawclient.Config{Features: []string{"urn:xmpp:other"}})
	must(t, plain.SendPresence(ctx, ""))

	sm := rawclient.Config{StreamManagement: true}
	benvolio := client(ctx, t, mont, "benvolio", "street", sm)
	must(t, benvolio.SendPresence(ctx, "<status>He ran this way</status>"))
	juliet := client(ctx, t, capu, "juliet", "balcony", sm)
	must(t, juliet.SendPresence(ctx, "<status>Ay me!</status>"))
	bfull, jfull := benvolio.JID(), juliet.JID()
	for _, c := range []*rawclient.Client{romeo, plain} {
		expect(ctx, t, c, "benvolio's presence", plainPresence(bfull, ""))
		expect(ctx, t, c, "juliet's presence", plainPresence(jfull, ""))
	}
	// Mercutio is not benvolio's contact: he has benvolio's directed presence.
	mercutio := client(ctx, t, mont, "mercutio", "square", psaFeatures)
	must(t, mercutio.SendPresence(ctx, ""))
	must(t, benvolio.Sendf("<presence to='%s'><status>Directed</status></presence>", mercutio.JID()))
	expect(ctx, t, mercutio, "benvolio's directed presence", plainPresence(bfull, ""))

	cases := []struct {
		name      string
		c         *rawclient.Client
		full      string
		server    string
		observers []*rawclient.Client
	}{
		{"local contact", benvolio, bfull, montague, []*rawclient.Client{romeo, mercutio}},
		{"remote contact", juliet, jfull, capulet, []*rawclient.Client{romeo}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			must(t, tc.c.Drop())
			for _, o := range tc.observers {
				p := expect(ctx, t, o, "connection-paused", annotated(tc.full, tc.server, "connection-paused"))
				if p.Child(rawclient.NSClient, "status") == nil {
					t.Errorf("paused presence lost its content: %s", p)
				}
				if o == mercutio && p.Child(rawclient.NSClient, "status").Text() != "Directed" {
					t.Errorf("directed recipient got another presence than the directed one: %s", p)
				}
			}
			must(t, tc.c.Resume(ctx))
			for _, o := range tc.observers {
				expect(ctx, t, o, "empty annotation", annotated(tc.full, tc.server, ""))
			}

			must(t, tc.c.Drop())
			dropped := time.Now()
			for _, o := range tc.observers {
				expect(ctx, t, o, "connection-paused again", annotated(tc.full, tc.server, "connection-paused"))
				expect(ctx, t, o, "unavailable after the hibernation timeout", plainPresence(tc.full, "unavailable"))
			}
			t.Logf("hibernation timeout -> unavailable after %v", time.Since(dropped))
		})
	}

	must(t, plain.Ping(ctx, ""))
	if got := annotations(plain.History()); len(got) > 0 {
		t.Errorf("non-PSA session got annotations:\n%s", dump(got))
	}
}
