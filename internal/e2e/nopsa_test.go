package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// Clients that do not advertise urn:xmpp:psa (caps without it, or no caps at
// all) receive no annotation, while a psakit client of the same account, in
// the same situation, does.
func TestNoAnnotationsWithoutPSA(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	juliet := raw(ctx, t, capu, "juliet", "balcony", rawclient.Config{}, "<status>Wherefore art thou</status>")
	jfull := juliet.JID()
	rec := newRecorder()
	dial(ctx, t, mont, "romeo", "lane", rec)
	others := map[string]*rawclient.Client{
		"caps without urn:xmpp:psa": raw(ctx, t, mont, "romeo", "plain", rawclient.Config{Features: []string{"urn:xmpp:other"}}, ""),
		"no caps":                   raw(ctx, t, mont, "romeo", "nocaps", rawclient.Config{NoCaps: true}, ""),
	}
	rec.expect(ctx, t, "juliet available", rosterEvent(roster.EventAvailable, jfull))
	for name, c := range others {
		// juliet's presence reaches every available resource of romeo's.
		if _, err := c.Expect(ctx, func(e *rawclient.Element) bool {
			return e.Is(rawclient.NSClient, "presence") && e.Attr("from") == jfull
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	must(t, n.Cut(montague, capulet))
	rec.expect(ctx, t, "juliet stale", marked(roster.EventStale, jfull, psa.ServerUnavailable, montague))
	must(t, n.Heal(montague, capulet))
	rec.expect(ctx, t, "juliet restored", marked(roster.EventRestored, jfull, psa.ServerUnavailable, montague))

	for name, c := range others {
		// The server handled everything before the answer to this ping.
		must(t, c.Ping(ctx, ""))
		for _, e := range c.History() {
			if e.Child(rawclient.NSPSA, "state-annotation") != nil || strings.Contains(e.String(), rawclient.NSPSA) {
				t.Errorf("%s received an annotation: %s", name, e)
			}
		}
	}
}
