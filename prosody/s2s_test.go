package prosody_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// A PSA client gets <server-unavailable/> from its own server for a remote
// contact when the s2s link is cut, an empty annotation when it heals, then
// the contact's presence again (the answer to the server's probe).
func TestS2SCutAndHeal(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)

	romeo := client(ctx, t, mont, "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	juliet := client(ctx, t, capu, "juliet", "balcony", rawclient.Config{})
	must(t, juliet.SendPresence(ctx, "<status>Wherefore art thou</status>"))
	jfull := juliet.JID()
	expect(ctx, t, romeo, "juliet's presence", plainPresence(jfull, ""))
	// Both s2s directions are up once juliet has romeo's presence too.
	expect(ctx, t, juliet, "romeo's presence", plainPresence(romeo.JID(), ""))

	cut := time.Now()
	must(t, n.Cut(montague, capulet))
	p := expect(ctx, t, romeo, "server-unavailable", annotated(jfull, montague, "server-unavailable"))
	t.Logf("cut -> annotation: %v", time.Since(cut))
	if got := p.Child(rawclient.NSClient, "status"); got == nil || got.Text() != "Wherefore art thou" {
		t.Errorf("annotated presence lost its content: %s", p)
	}
	if d := annotationOf(p).Child(rawclient.NSPSA, "description"); d == nil || d.Text() == "" || d.Attr("lang") != "en" {
		t.Errorf("annotation without an English description: %s", p)
	}

	heal := time.Now()
	healed := len(romeo.History())
	mark := capu.LogMark()
	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation", annotated(jfull, montague, ""))
	t.Logf("heal -> empty annotation: %v", time.Since(heal))
	// capulet.lit answers montague.lit's probe; the answer comes plain, or
	// with the empty annotation when it takes the place of a re-send still
	// queued. Once capulet.lit has answered romeo's ping, sent after the
	// probe answer over the same link, the answer is in.
	if _, _, err := capu.WaitLog(ctx, mark, "broadcasted presence of 1 resources from juliet@"+capulet+" to romeo@"+montague); err != nil {
		t.Fatal(err)
	}
	must(t, romeo.RoundTrip(ctx, capulet))
	var last *rawclient.Element
	answers := 0
	for _, e := range romeo.History()[healed:] {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == jfull {
			last = e
			answers++
		}
	}
	if last == nil || !(plainPresence(jfull, "")(last) || annotated(jfull, montague, "")(last)) {
		t.Fatalf("after the heal juliet's last presence is %v; want it plain or with the empty annotation\n%s", last, dump(romeo.History()[healed:]))
	}
	if answers > 2 {
		t.Errorf("%d presences of juliet after the heal, want the re-send and at most the probe answer:\n%s", answers, dump(romeo.History()[healed:]))
	}
}

// When montague.lit cannot reach capulet.lit but capulet.lit can still reach
// montague.lit, presence from juliet keeps arriving. It must not look like a
// fresh delivery while montague.lit holds capulet.lit in outage: it goes out
// annotated, with its new content, until the link is back.
func TestS2SOneWayOutage(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()

	must(t, n.CutOneWay(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable", annotated(jfull, montague, "server-unavailable"))

	must(t, juliet.SendPresence(ctx, "<show>away</show><status>gone to the garden</status>"))
	p := expect(ctx, t, romeo, "juliet's new presence, annotated", func(e *rawclient.Element) bool {
		s := e.Child(rawclient.NSClient, "status")
		return annotated(jfull, montague, "server-unavailable")(e) && s != nil && s.Text() == "gone to the garden"
	})
	if show := p.Child(rawclient.NSClient, "show"); show == nil || show.Text() != "away" {
		t.Errorf("annotated presence lost its content: %s", p)
	}
	for _, e := range romeo.History() {
		if s := e.Child(rawclient.NSClient, "status"); plainPresence(jfull, "")(e) && s != nil && s.Text() == "gone to the garden" {
			t.Fatalf("juliet's presence went out unannotated during the outage: %s", e)
		}
	}

	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation", annotated(jfull, montague, ""))
}

// connectPair connects a PSA romeo and juliet, and waits until each has the
// other's presence (both s2s directions are then established).
func connectPair(ctx context.Context, t *testing.T, n *prosodytest.Network) (romeo, juliet *rawclient.Client) {
	t.Helper()
	romeo = client(ctx, t, n.Server(montague), "romeo", "lane", psaFeatures)
	must(t, romeo.SendPresence(ctx, ""))
	juliet = client(ctx, t, n.Server(capulet), "juliet", "balcony", rawclient.Config{})
	must(t, juliet.SendPresence(ctx, "<status>Wherefore art thou</status>"))
	expect(ctx, t, romeo, "juliet's presence", plainPresence(juliet.JID(), ""))
	expect(ctx, t, juliet, "romeo's presence", plainPresence(romeo.JID(), ""))
	return romeo, juliet
}

// SIGKILL of the remote server is an outage; after its restart the link is
// restored and the probe tells that juliet is gone.
func TestS2SKillAndRestart(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()

	killed := time.Now()
	must(t, n.Server(capulet).Kill())
	expect(ctx, t, romeo, "server-unavailable", annotated(jfull, montague, "server-unavailable"))
	t.Logf("kill -9 -> annotation: %v", time.Since(killed))

	restarted := time.Now()
	must(t, n.Server(capulet).Restart(ctx))
	t.Logf("restart took %v", time.Since(restarted))
	expect(ctx, t, romeo, "empty annotation", annotated(jfull, montague, ""))
	t.Logf("restart -> empty annotation: %v", time.Since(restarted))
	// Juliet's session died with her server: the probe answers unavailable.
	expect(ctx, t, romeo, "probe answer", plainPresence("juliet@capulet.lit", "unavailable"))
	// Prosody routes a probe sent by a client too, and the contact's server
	// answers it like its own probes.
	must(t, romeo.Send("<presence type='probe' to='juliet@capulet.lit'/>"))
	expect(ctx, t, romeo, "answer to the client's probe", plainPresence("juliet@capulet.lit", "unavailable"))
}

// A cleanly closed s2s link (as an idle timeout or an operator closes it) is
// not an outage: mod_psa reconnects first and finds the domain reachable.
func TestS2SCleanCloseIsNotAnOutage(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	mont := n.Server(montague)

	for _, side := range []struct{ server, peer string }{
		{montague, capulet}, // montague closes its own streams
		{capulet, montague}, // the remote server closes them
	} {
		mark := mont.LogMark()
		out, err := n.Server(side.server).Shell(ctx, `s2s:closeall("`+side.peer+`")`)
		must(t, err)
		t.Logf("%s: %s", side.server, strings.TrimSpace(out))
		line, _, err := mont.WaitLog(ctx, mark, "Link montague.lit -> capulet.lit is up")
		must(t, err)
		t.Logf("verdict: %s", line)
		if _, _, ok := findLog(mont, mark, "is down"); ok {
			t.Errorf("clean close from %s was taken for an outage", side.server)
		}
	}
	must(t, romeo.Ping(ctx, ""))
	if got := annotations(romeo.History()); len(got) > 0 {
		t.Fatalf("annotations after clean closes:\n%s", dump(got))
	}
	// The link works: juliet's next presence reaches romeo.
	must(t, juliet.SendPresence(ctx, "<show>away</show>"))
	expect(ctx, t, romeo, "juliet's away presence", withShow(juliet.JID(), "away"))
}

// withShow matches an unannotated available presence from `from` with <show/>.
func withShow(from, show string) func(*rawclient.Element) bool {
	return func(e *rawclient.Element) bool {
		return plainPresence(from, "")(e) && e.Child(rawclient.NSClient, "show").Text() == show
	}
}

// findLog reports whether a line after mark contains substr, without waiting.
func findLog(s *prosodytest.Server, mark int, substr string) (string, int, bool) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	line, next, err := s.WaitLog(ctx, mark, substr)
	return line, next, err == nil
}

// Sessions that do not advertise urn:xmpp:psa with a verified ver never see
// an annotation; a second PSA session with the same caps is enabled from the
// cache.
func TestNoAnnotationsWithoutPSA(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()

	others := map[string]*rawclient.Client{
		"caps without psa": client(ctx, t, mont, "romeo", "plain", rawclient.Config{Features: []string{"urn:xmpp:other"}}),
		"wrong ver":        client(ctx, t, mont, "romeo", "wrongver", rawclient.Config{Features: []string{rawclient.NSPSA}, Ver: "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}),
		"no caps":          client(ctx, t, mont, "romeo", "nocaps", rawclient.Config{Features: []string{rawclient.NSPSA}, NoCaps: true}),
	}
	for name, c := range others {
		must(t, c.SendPresence(ctx, ""))
		// Juliet's presence reaches every available resource (probe answers).
		expect(ctx, t, c, name+": juliet's presence", plainPresence(jfull, ""))
	}

	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable", annotated(jfull, montague, "server-unavailable"))
	must(t, n.Heal(montague, capulet))
	expect(ctx, t, romeo, "empty annotation", annotated(jfull, montague, ""))

	for name, c := range others {
		must(t, c.Ping(ctx, ""))
		if got := annotations(c.History()); len(got) > 0 {
			t.Errorf("%s: got annotations:\n%s", name, dump(got))
		}
	}
}

// A link that flaps 20 times in 10 s ends restored: the annotations the
// client got alternate between server-unavailable and empty, and the last
// one is empty.
func TestS2SFlapping(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 90*time.Second)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()
	mont := n.Server(montague)

	const flaps = 20
	tick := time.NewTicker(250 * time.Millisecond) // cut and heal twice a second: 20 flaps in 10 s
	defer tick.Stop()
	var mark int
	for i := range flaps {
		<-tick.C
		must(t, n.Cut(montague, capulet))
		<-tick.C
		if i == flaps-1 {
			mark = mont.LogMark()
		}
		must(t, n.Heal(montague, capulet))
	}
	_, up, err := mont.WaitLog(ctx, mark, "Link montague.lit -> capulet.lit is up")
	if err != nil {
		t.Fatal(err)
	}
	// The restore's re-sends leave over the next turns of the event loop.
	if _, _, err := mont.WaitLog(ctx, up, "Re-sends done"); err != nil {
		t.Fatal(err)
	}
	must(t, romeo.Ping(ctx, ""))

	var seq []string
	for _, e := range annotations(romeo.History()) {
		a := annotationOf(e)
		if e.Attr("from") != jfull || a.Attr("from") != montague {
			t.Fatalf("unexpected annotation: %s", e)
		}
		cond := "empty"
		if len(a.Children) > 0 {
			cond = a.Children[0].Name.Local
		}
		seq = append(seq, cond)
	}
	t.Logf("%d annotations over %d flaps: %v", len(seq), flaps, seq)
	if len(seq) == 0 || len(seq)%2 != 0 {
		t.Fatalf("expected pairs of annotations, got %v", seq)
	}
	for i, cond := range seq {
		want := "server-unavailable"
		if i%2 == 1 {
			want = "empty"
		}
		if cond != want {
			t.Fatalf("annotation %d is %s, want %s: %v", i, cond, want, seq)
		}
	}
	// And the link carries presence again.
	must(t, juliet.SendPresence(ctx, "<show>dnd</show>"))
	expect(ctx, t, romeo, "juliet's presence after the flapping", withShow(jfull, "dnd"))
}

// A verified ver is cached: a second session with the same caps is enabled
// without a disco#info query.
func TestCapsCache(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	cfg := rawclient.Config{Features: []string{rawclient.NSPSA}, IdentityName: "same caps"}

	first := client(ctx, t, mont, "romeo", "first", cfg)
	must(t, first.Send("<presence>"+first.CapsElement()+"</presence>"))
	must(t, first.AwaitCapsQuery(ctx, montague))
	second := client(ctx, t, mont, "romeo", "second", cfg)
	must(t, second.SendPresence(ctx, ""))
	juliet := client(ctx, t, n.Server(capulet), "juliet", "balcony", rawclient.Config{})
	must(t, juliet.SendPresence(ctx, ""))
	for _, c := range []*rawclient.Client{first, second} {
		expect(ctx, t, c, "juliet's presence", plainPresence(juliet.JID(), ""))
	}
	expect(ctx, t, juliet, "romeo's presence", plainPresence(second.JID(), ""))

	must(t, n.Cut(montague, capulet))
	for _, c := range []*rawclient.Client{first, second} {
		expect(ctx, t, c, "server-unavailable", annotated(juliet.JID(), montague, "server-unavailable"))
	}
	for _, e := range second.History() {
		if e.Child(rawclient.NSDiscoInfo, "query") != nil {
			t.Fatalf("second session was asked for its caps: %s", e)
		}
	}
}

// A domain in outage that no session has presences from any more (its
// contacts' users logged out) is forgotten: no entry, no more re-checks.
func TestDeadDomainForgotten(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	romeo, juliet := connectPair(ctx, t, n)

	must(t, n.Cut(montague, capulet))
	expect(ctx, t, romeo, "server-unavailable", annotated(juliet.JID(), montague, "server-unavailable"))
	mark := mont.LogMark()
	must(t, romeo.Close())
	if _, _, err := mont.WaitLog(ctx, mark, "Forgetting capulet.lit"); err != nil {
		t.Fatal(err)
	}
}
