package e2e_test

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// XEP-0310 case 1, a contact on another domain goes stale and comes back:
// the link between montague.lit and capulet.lit is cut, then healed. The
// client (over StartTLS) marks juliet server-unavailable by montague.lit,
// keeps what she last said, clears the mark on the heal, and verifies her
// with a ping.
func TestRemoteContactCutAndHeal(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)

	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "<show>away</show><status>Wherefore art thou</status>",
		client.WithTLS(client.StartTLS), client.WithTLSConfig(mont.TLSConfig()))
	jfull := juliet.JID()
	if st := romeo.Session().ConnectionState(); !st.HandshakeComplete {
		t.Fatalf("the session runs over %T, not TLS", romeo.Session().Conn())
	}

	cut := time.Now()
	must(t, n.Cut(montague, capulet))
	e := rec.expect(ctx, t, "juliet stale", marked(roster.EventStale, jfull, psa.ServerUnavailable, montague))
	timing(t, "cut -> stale event (StartTLS)", e.at.Sub(cut))
	if !e.roster.Resent || e.roster.Fresh() {
		t.Errorf("stale event: resent=%v fresh=%v, want true, false", e.roster.Resent, e.roster.Fresh())
	}
	r := resource(t, romeo, jfull)
	if r.Fresh() || len(r.Marks) != 1 || r.Marks[0].Condition != psa.ServerUnavailable || r.Marks[0].By.String() != montague {
		t.Errorf("juliet's marks while cut: %+v", r.Marks)
	}
	if r.Show != "away" || r.StatusText() != "Wherefore art thou" {
		t.Errorf("the stale presence lost its content: show %q status %q", r.Show, r.StatusText())
	}
	if d, ok := r.Marks[0].Description(); !ok || d.Text == "" {
		t.Errorf("the mark has no description: %+v", r.Marks[0])
	}
	if st := romeo.Roster().Stats(); st.Stale != 1 {
		t.Errorf("stats while cut: %+v, want 1 stale", st)
	}

	heal := time.Now()
	must(t, n.Heal(montague, capulet))
	e = rec.expect(ctx, t, "juliet restored", marked(roster.EventRestored, jfull, psa.ServerUnavailable, montague))
	timing(t, "heal -> restored event (StartTLS)", e.at.Sub(heal))
	if !e.roster.Resent || !e.roster.Fresh() {
		t.Errorf("restored event: resent=%v fresh=%v, want true, true", e.roster.Resent, e.roster.Fresh())
	}
	// The restore policy checks juliet herself: she answers the ping.
	v := rec.expect(ctx, t, "verification of juliet", verifyEvent(jfull))
	timing(t, "heal -> verified", v.at.Sub(heal))
	if v.verify.Outcome != client.VerifyAlive {
		t.Errorf("verification: %s (%v), want alive", v.verify.Outcome, v.verify.Err)
	}
	if r := resource(t, romeo, jfull); !r.Fresh() || r.StatusText() != "Wherefore art thou" {
		t.Errorf("juliet after the heal: fresh=%v status %q", r.Fresh(), r.StatusText())
	}
	if st := romeo.Roster().Stats(); st.Stale != 0 || st.Resources != 1 || st.Items != 3 {
		t.Errorf("stats after the heal: %+v, want 3 items, 1 resource, 0 stale", st)
	}
	// The link carries news again.
	must(t, juliet.Send("<presence><show>chat</show></presence>"))
	rec.expect(ctx, t, "juliet's next presence", func(e event) bool {
		return rosterEvent(roster.EventUpdated, jfull)(e) && e.roster.Resource.Show == "chat" && e.roster.Fresh()
	})
}

// Case 1 with a killed server: capulet.lit dies with SIGKILL (no unavailable
// presence, no stream close) and comes back empty. juliet is marked stale;
// after the restart the mark clears, and the probe that follows the restore
// finds her gone: the client removes her.
func TestRemoteServerKilledAndRestarted(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	capu := n.Server(capulet)

	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "<status>Good night</status>")
	jfull := juliet.JID()

	killed := time.Now()
	must(t, capu.Kill())
	e := rec.expect(ctx, t, "juliet stale", marked(roster.EventStale, jfull, psa.ServerUnavailable, montague))
	timing(t, "kill -9 -> stale event", e.at.Sub(killed))
	if resource(t, romeo, jfull).Fresh() {
		t.Error("juliet is fresh while her server is dead")
	}

	restarted := time.Now()
	must(t, capu.Restart(ctx))
	timing(t, "restart of capulet.lit", time.Since(restarted))
	e = rec.expect(ctx, t, "juliet restored", marked(roster.EventRestored, jfull, psa.ServerUnavailable, montague))
	timing(t, "restart -> restored event", e.at.Sub(restarted))
	// Her session died with her server: the probe after the restore answers
	// unavailable, from her bare JID.
	e = rec.expect(ctx, t, "juliet unavailable", rosterEvent(roster.EventUnavailable, jfull))
	timing(t, "restart -> unavailable event", e.at.Sub(restarted))
	if c, ok := romeo.Roster().Contact(jid.MustParse("juliet@capulet.lit")); !ok || c.Online() || !c.InRoster {
		t.Errorf("juliet after the restart: %+v, want an offline roster contact", c)
	}
	// The restore policy asked her session too: capulet.lit answers the ping
	// and the disco#info query that follows with service-unavailable.
	v, _ := rec.waitFrom(ctx, t, 0, "verification of juliet", verifyEvent(jfull))
	if v.verify.Outcome != client.VerifyGone {
		t.Errorf("verification after the restart: %s (%v), want gone", v.verify.Outcome, v.verify.Err)
	}
	if st := romeo.Roster().Stats(); st.Resources != 0 || st.Stale != 0 {
		t.Errorf("stats after the restart: %+v, want no resource", st)
	}
}

// A contact whose client does not implement XEP-0199 answers the
// verification ping with service-unavailable, as her server answers for a
// session that is gone: the disco#info query that follows finds her there.
func TestVerifyClientWithoutPing(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)

	juliet, rec, romeo := romeoSeesJulietWith(ctx, t, n, rawclient.Config{NoPing: true}, "<status>Ay me!</status>")
	jfull := juliet.JID()
	must(t, n.Cut(montague, capulet))
	rec.expect(ctx, t, "juliet stale", marked(roster.EventStale, jfull, psa.ServerUnavailable, montague))
	must(t, n.Heal(montague, capulet))
	rec.expect(ctx, t, "juliet restored", marked(roster.EventRestored, jfull, psa.ServerUnavailable, montague))
	v := rec.expect(ctx, t, "verification of juliet", verifyEvent(jfull))
	if v.verify.Outcome != client.VerifyAlive || v.verify.Err != nil {
		t.Errorf("verification: %s (%v), want alive", v.verify.Outcome, v.verify.Err)
	}
	// romeo asked her both.
	for _, ns := range []string{rawclient.NSPing, rawclient.NSDiscoInfo} {
		if _, err := juliet.Expect(ctx, func(e *rawclient.Element) bool {
			return e.Is(rawclient.NSClient, "iq") && e.Attr("type") == "get" && e.Attr("from") == romeo.JID().String() &&
				len(e.Children) == 1 && e.Children[0].Name.Space == ns
		}); err != nil {
			t.Errorf("juliet never got the %s query: %v", ns, err)
		}
	}
}

// XEP-0310 case 2, a contact's session hibernates (XEP-0198) and resumes, and
// then one that times out: local (benvolio, annotated by montague.lit) and
// remote (juliet, annotated by capulet.lit over s2s).
func TestContactHibernation(t *testing.T) {
	t.Parallel()
	const hibernation = 3 * time.Second
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		mont.HibernationTime = hibernation
		capu.HibernationTime = hibernation
	})
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	rec := newRecorder()
	romeo := dial(ctx, t, mont, "romeo", "lane", rec)
	sm := rawclient.Config{StreamManagement: true}
	benvolio := raw(ctx, t, mont, "benvolio", "street", sm, "<status>He ran this way</status>")
	juliet := raw(ctx, t, capu, "juliet", "balcony", sm, "<status>Ay me!</status>")
	rec.expect(ctx, t, "benvolio available", rosterEvent(roster.EventAvailable, benvolio.JID()))
	rec.skip()
	rec.expect(ctx, t, "juliet available", rosterEvent(roster.EventAvailable, juliet.JID()))

	for _, tc := range []struct {
		name   string
		c      *rawclient.Client
		server string
	}{
		{"local contact", benvolio, montague},
		{"remote contact", juliet, capulet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := tc.c.JID()
			rec.skip()
			paused := time.Now()
			must(t, tc.c.Drop())
			e := rec.expect(ctx, t, "paused", marked(roster.EventStale, full, psa.ConnectionPaused, tc.server))
			timing(t, tc.name+": drop -> stale event", e.at.Sub(paused))
			if r := resource(t, romeo, full); r.Fresh() || r.StatusText() == "" {
				t.Errorf("paused resource: fresh=%v status %q", r.Fresh(), r.StatusText())
			}

			resumed := time.Now()
			must(t, tc.c.Resume(ctx))
			e = rec.expect(ctx, t, "resumed", marked(roster.EventRestored, full, psa.ConnectionPaused, tc.server))
			timing(t, tc.name+": resume -> restored event", e.at.Sub(resumed))
			if !e.roster.Fresh() || !resource(t, romeo, full).Fresh() {
				t.Error("resumed resource is not fresh")
			}
			v := rec.expect(ctx, t, "verification", verifyEvent(full))
			if v.verify.Outcome != client.VerifyAlive {
				t.Errorf("verification after the resumption: %s (%v), want alive", v.verify.Outcome, v.verify.Err)
			}

			dropped := time.Now()
			must(t, tc.c.Drop())
			rec.expect(ctx, t, "paused again", marked(roster.EventStale, full, psa.ConnectionPaused, tc.server))
			e = rec.expect(ctx, t, "unavailable after the hibernation timeout", rosterEvent(roster.EventUnavailable, full))
			timing(t, tc.name+": drop -> unavailable (timeout "+hibernation.String()+")", e.at.Sub(dropped))
			if _, ok := romeo.Roster().Resource(jid.MustParse(full)); ok {
				t.Error("the timed-out resource is still in the roster")
			}
		})
	}
	if st := romeo.Roster().Stats(); st.Resources != 0 || st.Stale != 0 {
		t.Errorf("stats at the end: %+v, want no resource", st)
	}
}
