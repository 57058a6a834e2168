package prosody_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// While a session hibernates, Prosody still answers probes for it with its
// stored presence: a contact's new session, a remote contact's server after
// an outage, the user's own new resource. Each answer is the paused presence
// and must say so; a plain one would tell the prober that the session is
// live (and, on a server that had a pause annotation queued for the
// prober, took its place). Those who got such an answer get the empty
// annotation when the session resumes, and a session that did not ask for
// annotations gets the plain presence (it has no other copy of it).
func TestProbeAnswerWhilePaused(t *testing.T) {
	t.Parallel()
	n := hibernating(t)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	lane := romeoLane(ctx, t, mont)
	desk := online(ctx, t, mont, "benvolio", "desk", psaFeatures)
	expect(ctx, t, desk, "romeo's presence", plainPresence(lane.JID(), ""))

	must(t, lane.Drop())
	expect(ctx, t, desk, "connection-paused", annotated(lane.JID(), montague, "connection-paused"))

	// New sessions probe romeo: a local contact with and without
	// annotations, a remote contact (over s2s), romeo's own new resource.
	phone := online(ctx, t, mont, "benvolio", "phone", psaFeatures)
	old := online(ctx, t, mont, "benvolio", "old", rawclient.Config{})
	balcony := online(ctx, t, capu, "juliet", "balcony", psaFeatures)
	study := online(ctx, t, mont, "romeo", "study", psaFeatures)
	paused := annotated(lane.JID(), montague, "connection-paused")
	expect(ctx, t, phone, "the probe answer, annotated", paused)
	expect(ctx, t, balcony, "the probe answer over s2s, annotated", paused)
	expect(ctx, t, study, "the stored presence of the other resource, annotated", paused)
	expect(ctx, t, old, "the plain probe answer (annotations not enabled)", plainPresence(lane.JID(), ""))
	// A session asks for annotations only after its first presence, so
	// what reached it before that is plain (and so is romeo's broadcast
	// from before the pause, which Prosody 13 delivers late over the new
	// s2s link): what counts is that the last copy says paused.
	must(t, phone.RoundTrip(ctx, montague))
	must(t, study.RoundTrip(ctx, montague))
	must(t, balcony.RoundTrip(ctx, montague))
	for _, c := range []*rawclient.Client{phone, balcony, study} {
		var last *rawclient.Element
		for _, e := range c.History() {
			if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == lane.JID() {
				last = e
			}
		}
		if last == nil || !paused(last) {
			t.Errorf("%s: the last copy of romeo's paused presence is not annotated: %v\n%s", c.JID(), last, dump(c.History()))
		}
	}

	must(t, lane.Resume(ctx))
	cleared := annotated(lane.JID(), montague, "")
	for _, c := range []*rawclient.Client{desk, phone, balcony, study} {
		expect(ctx, t, c, "the empty annotation after the resumption", cleared)
	}
}

// A probe answer can reach a contact before the queued pause annotation
// for it leaves (slices go every psa_resend_interval, here 10 s). The
// answer told the contact that the session is paused, so a resumption
// that comes before the queued pause must still send that contact the
// empty annotation: a resumption sends nothing to those the queued pause
// has not reached, and mod_psa took the prober for one of them, leaving
// benvolio's new session with romeo paused for good.
func TestProbeAnswerBeforeQueuedPauseIsCleared(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.HibernationTime = 60 * time.Second
		mont.PSAOptions["psa_resend_interval"] = "10"
	})
	ctx := testContext(t, 90*time.Second)
	mont := n.Server(montague)

	lane := romeoLane(ctx, t, mont)
	full := lane.JID()
	pause(ctx, t, mont, lane)
	// benvolio logs in: his probe is answered at once, annotated (again
	// once his session has annotations on).
	phone := online(ctx, t, mont, "benvolio", "phone", psaFeatures)
	expect(ctx, t, phone, "the probe answer, annotated", annotated(full, montague, "connection-paused"))

	mark := mont.LogMark()
	must(t, lane.Resume(ctx))
	line := clearingSent(ctx, t, mont, mark, full)
	must(t, phone.Ping(ctx, ""))
	if last := lastFrom(phone, full); !annotated(full, montague, "")(last) {
		t.Errorf("benvolio ends with %s from lane, want the empty annotation (%s)\nreceived:\n%s",
			describePresence(last), line, dump(phone.History()))
	}
}

// A session whose caps are already verified has annotations on before its
// initial presence goes out: its probes are answered annotated, and that
// is the one copy of the paused presence it needs. mod_psa also sent it the
// paused presences of its contacts when it was enabled, before it had sent
// any presence: each pause arrived twice.
func TestPausedPresenceOnceForCachedCaps(t *testing.T) {
	t.Parallel()
	n := hibernating(t)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)

	lane := romeoLane(ctx, t, mont)
	cached := rawclient.Config{Features: []string{rawclient.NSPSA}, IdentityName: "cached"}
	desk := online(ctx, t, mont, "benvolio", "desk", cached)
	expect(ctx, t, desk, "romeo's presence", plainPresence(lane.JID(), ""))
	must(t, lane.Drop())
	paused := annotated(lane.JID(), montague, "connection-paused")
	expect(ctx, t, desk, "connection-paused", paused)

	// desk's caps are verified: the next sessions with them are enabled
	// from the cache, at once.
	for _, res := range []string{"phone", "study"} {
		user := "benvolio"
		if res == "study" {
			user = "romeo"
		}
		c := client(ctx, t, mont, user, res, cached)
		must(t, c.SendPresence(ctx, ""))
		expect(ctx, t, c, "the paused presence", paused)
		must(t, c.RoundTrip(ctx, montague))
		var got []*rawclient.Element
		for _, e := range c.History() {
			if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == lane.JID() {
				got = append(got, e)
			}
		}
		if len(got) != 1 {
			t.Errorf("%s got romeo's paused presence %d times, want once:\n%s", c.JID(), len(got), dump(got))
		}
	}
}

// A contact on another VirtualHost of the same server (verona.lit, with
// mod_psa) logs in while romeo's session hibernates: the answer to his
// probe reaches him before his session has annotations on, so plain. Once
// they are on he must get romeo's presence again, annotated, as a contact
// on romeo's own VirtualHost does; he kept romeo's presence unannotated,
// as if romeo were online.
func TestPausedPresenceOnEnableAcrossVirtualHosts(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		withVerona(mont, true)
		mont.HibernationTime = 30 * time.Second
		mont.Roster["romeo"]["mercutio@"+verona] = "both"
	})
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	registerOnVerona(t, mont, "mercutio")
	must(t, os.MkdirAll(filepath.Join(mont.Dir, "data", "verona%2elit", "roster"), 0o755))
	must(t, os.WriteFile(filepath.Join(mont.Dir, "data", "verona%2elit", "roster", "mercutio.dat"),
		[]byte("return {\n\t[false] = { [\"version\"] = 1; [\"pending\"] = { }; };\n"+
			"\t[\"romeo@"+montague+"\"] = { [\"subscription\"] = \"both\"; [\"groups\"] = { }; };\n};\n"), 0o600))

	lane := romeoLane(ctx, t, mont)
	full := lane.JID()
	pause(ctx, t, mont, lane)

	cfg := psaFeatures
	cfg.Addr, cfg.Domain, cfg.User, cfg.Password, cfg.Resource = mont.C2SAddr, verona, "mercutio", pw, "square"
	mercutio, err := rawclient.Dial(ctx, cfg)
	must(t, err)
	t.Cleanup(func() { _ = mercutio.Close() })
	mark := mont.LogMark()
	must(t, mercutio.SendPresence(ctx, ""))
	expect(ctx, t, mercutio, "romeo's presence", plainPresence(full, ""))
	if _, _, err := mont.WaitLog(ctx, mark, "Annotations for "+mercutio.JID()+": on"); err != nil {
		t.Fatal(err)
	}
	expect(ctx, t, mercutio, "romeo's presence again, annotated", annotated(full, montague, "connection-paused"))

	must(t, lane.Resume(ctx))
	expect(ctx, t, mercutio, "the empty annotation after the resumption", annotated(full, montague, ""))
}

// Neither a probe answer nor the copies a session gets when it enables
// annotations reach a contact whom the paused user blocked (XEP-0191):
// romeo's new session, after benvolio blocked him, gets nothing of
// benvolio's paused session, not even its clearing; mercutio's new
// session, not blocked, gets the paused presence and the clearing.
func TestPausedPresenceNotToBlockedProber(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.Modules = []string{"blocklist"}
		mont.HibernationTime = 30 * time.Second
		mont.Roster["benvolio"]["mercutio@"+montague] = "both"
		mont.Roster["mercutio"] = map[string]string{"benvolio@" + montague: "both"}
	})
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)

	benvolio := client(ctx, t, mont, "benvolio", "street", rawclient.Config{StreamManagement: true})
	must(t, benvolio.SendPresence(ctx, "<status>He ran this way</status>"))
	bfull := benvolio.JID()
	res, err := benvolio.IQ(ctx, "set", "", "<block xmlns='urn:xmpp:blocking'><item jid='romeo@"+montague+"'/></block>")
	must(t, err)
	if res.Attr("type") != "result" {
		t.Fatalf("block: %s", res)
	}
	pause(ctx, t, mont, benvolio)

	mark := mont.LogMark()
	romeo := online(ctx, t, mont, "romeo", "phone", psaFeatures)
	mercutio := online(ctx, t, mont, "mercutio", "corner", psaFeatures)
	for _, c := range []*rawclient.Client{romeo, mercutio} {
		if _, _, err := mont.WaitLog(ctx, mark, "Annotations for "+c.JID()+": on"); err != nil {
			t.Fatal(err)
		}
	}
	expect(ctx, t, mercutio, "the paused presence", annotated(bfull, montague, "connection-paused"))
	must(t, benvolio.Resume(ctx))
	expect(ctx, t, mercutio, "the clearing", annotated(bfull, montague, ""))
	must(t, romeo.Ping(ctx, ""))
	for _, e := range romeo.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == bfull {
			t.Errorf("romeo, blocked, got benvolio's presence: %s", e)
		}
	}
}

// A probe from someone without a subscription to romeo's presence, on
// his server (mercutio) or over s2s (tybalt), gets no presence while
// romeo's session hibernates, as at any other time (Prosody answers it
// `unsubscribed`), and nothing on the resumption (the prober is not noted
// for it).
func TestPausedPresenceNotToNonSubscriberProbe(t *testing.T) {
	t.Parallel()
	n := hibernating(t)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	desk := online(ctx, t, mont, "benvolio", "desk", psaFeatures)
	lane := romeoLane(ctx, t, mont)
	full := lane.JID()
	must(t, lane.Drop())
	expect(ctx, t, desk, "connection-paused", annotated(full, montague, "connection-paused"))

	mercutio := online(ctx, t, mont, "mercutio", "square", psaFeatures)
	tybalt := online(ctx, t, capu, "tybalt", "street", psaFeatures)
	for _, c := range []*rawclient.Client{mercutio, tybalt} {
		mark := mont.LogMark()
		must(t, c.Sendf("<presence type='probe' to='romeo@%s'/>", montague))
		if _, _, err := mont.WaitLog(ctx, mark, "inbound presence probe from "+c.Bare()+" for romeo@"+montague); err != nil {
			t.Fatal(err)
		}
	}
	must(t, lane.Resume(ctx))
	expect(ctx, t, desk, "the clearing", annotated(full, montague, ""))
	for _, c := range []*rawclient.Client{mercutio, tybalt} {
		must(t, c.RoundTrip(ctx, montague))
		for _, e := range c.History() {
			if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == full {
				t.Errorf("%s, not subscribed, got romeo's presence: %s", c.JID(), e)
			}
		}
	}
}

// A client that reconnects again and again (a new resource each time)
// while the user's other session hibernates: each new resource gets the
// paused presence and is noted for the resumption. The pause list must
// follow the resources that are still there, not grow with every one
// bound during the pause (the resumption logs its length).
func TestPauseListFollowsLiveResources(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.HibernationTime = 60 * time.Second
	})
	ctx := testContext(t, 90*time.Second)
	mont := n.Server(montague)

	// desk, romeo's resource that stays, sees the others leave.
	desk := online(ctx, t, mont, "romeo", "desk", rawclient.Config{})
	lane := romeoLane(ctx, t, mont)
	full := lane.JID()
	pause(ctx, t, mont, lane)
	const binds = 48
	for i := range binds {
		c := client(ctx, t, mont, "romeo", fmt.Sprintf("r%d", i), rawclient.Config{})
		must(t, c.SendPresence(ctx, ""))
		expect(ctx, t, c, "lane's presence", plainPresence(full, ""))
		must(t, c.Close())
		expect(ctx, t, desk, "the unavailable of "+c.JID(), plainPresence(c.JID(), "unavailable"))
	}
	mark := mont.LogMark()
	must(t, lane.Resume(ctx))
	line, _, err := mont.WaitLog(ctx, mark, full+" resumed: clearing the annotation for")
	must(t, err)
	var cleared, listed int
	if i := strings.Index(line, "clearing the annotation for"); i < 0 {
		t.Fatalf("cannot read %q", line)
	} else if _, err := fmt.Sscanf(line[i:], "clearing the annotation for %d entities (%d in its pause list)", &cleared, &listed); err != nil {
		t.Fatalf("cannot read %q: %v", line, err)
	}
	// romeo's three contacts and desk, and at most the first sweep's 16
	// resources noted since (twice those still there at the last sweep:
	// desk).
	if listed > 3+1+16+1 {
		t.Errorf("pause list of %d entries after %d resources came and went: %s", listed, binds, line)
	}
}

// hibernating starts the Shakespeare network with a hibernation time on
// montague.lit long enough for a test to pause and resume a session.
func hibernating(t *testing.T) *prosodytest.Network {
	t.Helper()
	return shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.HibernationTime = 30 * time.Second
	})
}

// online connects user@srv/resource and sends its presence.
func online(ctx context.Context, t *testing.T, srv *prosodytest.Server, user, resource string, cfg rawclient.Config) *rawclient.Client {
	t.Helper()
	c := client(ctx, t, srv, user, resource, cfg)
	must(t, c.SendPresence(ctx, ""))
	return c
}

// romeoLane connects romeo/lane with stream management, to be paused, and
// sends his presence.
func romeoLane(ctx context.Context, t *testing.T, mont *prosodytest.Server) *rawclient.Client {
	t.Helper()
	lane := client(ctx, t, mont, "romeo", "lane", rawclient.Config{StreamManagement: true})
	must(t, lane.SendPresence(ctx, "<status>lane</status>"))
	return lane
}

// pause drops c's connection and waits until mont's mod_psa has taken the
// session for hibernating.
func pause(ctx context.Context, t *testing.T, mont *prosodytest.Server, c *rawclient.Client) {
	t.Helper()
	mark := mont.LogMark()
	must(t, c.Drop())
	if _, _, err := mont.WaitLog(ctx, mark, c.JID()+" hibernates: annotating its presence"); err != nil {
		t.Fatal(err)
	}
}
