package prosody_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// pausingRomeo is montague.lit with romeo holding many roster contacts
// (offline, but each gets his presence and so a pause annotation), a
// psa_resend_interval of interval, and three observers with annotations:
// romeo's own other resource desk (listed after every roster contact, so
// its annotation leaves in the second slice), his contact benvolio, and
// mercutio, who has only a directed presence of lane's. lane, romeo's
// stream-management session, is online with status "before".
type pausingRomeo struct {
	mont                     *prosodytest.Server
	lane                     *rawclient.Client
	desk, benvolio, mercutio *rawclient.Client
}

func newPausingRomeo(t *testing.T, interval string) *pausingRomeo {
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.HibernationTime = 60 * time.Second
		mont.PSAOptions["psa_resend_interval"] = interval
		for i := range 300 {
			mont.Roster["romeo"][fmt.Sprintf("friend%d@%s", i, montague)] = "both"
		}
	})
	ctx := testContext(t, 120*time.Second)
	p := &pausingRomeo{mont: n.Server(montague)}
	p.desk = client(ctx, t, p.mont, "romeo", "desk", psaFeatures)
	must(t, p.desk.SendPresence(ctx, ""))
	p.benvolio = client(ctx, t, p.mont, "benvolio", "street", psaFeatures)
	must(t, p.benvolio.SendPresence(ctx, ""))
	p.mercutio = client(ctx, t, p.mont, "mercutio", "square", psaFeatures)
	must(t, p.mercutio.SendPresence(ctx, ""))
	p.lane = client(ctx, t, p.mont, "romeo", "lane", rawclient.Config{StreamManagement: true})
	must(t, p.lane.SendPresence(ctx, "<status>before</status>"))
	must(t, p.lane.Sendf("<presence to='%s'><status>Directed</status></presence>", p.mercutio.JID()))
	expect(ctx, t, p.desk, "lane's presence", plainPresence(p.lane.JID(), ""))
	expect(ctx, t, p.benvolio, "lane's presence", plainPresence(p.lane.JID(), ""))
	expect(ctx, t, p.mercutio, "lane's directed presence", plainPresence(p.lane.JID(), ""))
	return p
}

// lastFrom returns the last presence from `from` that c received.
func lastFrom(c *rawclient.Client, from string) *rawclient.Element {
	var last *rawclient.Element
	for _, e := range c.History() {
		if e.Is(rawclient.NSClient, "presence") && e.Attr("from") == from {
			last = e
		}
	}
	return last
}

// describePresence is a presence's status and annotation, for messages.
func describePresence(e *rawclient.Element) string {
	if e == nil {
		return "none"
	}
	s := "status " + e.Child(rawclient.NSClient, "status").Text()
	if a := annotationOf(e); a == nil {
		s += ", no annotation"
	} else if len(a.Children) == 0 {
		s += ", empty annotation"
	} else {
		s += ", annotated " + a.Children[0].Name.Local
	}
	return s
}

// The clearing annotations after a resumption leave after Prosody
// answered it, in slices. A presence that the user sends at once after
// resuming reaches his contacts and own resources before the queued
// clearing of the older one would, and that clearing never follows it:
// they end with the new presence, unannotated. The directed recipient,
// whom the broadcast does not reach, gets the clearing of the directed
// presence.
func TestResumeThenNewPresenceKeepsOrder(t *testing.T) {
	t.Parallel()
	p := newPausingRomeo(t, "1")
	ctx := testContext(t, 120*time.Second)
	full := p.lane.JID()

	must(t, p.lane.Drop())
	for _, o := range []*rawclient.Client{p.desk, p.benvolio, p.mercutio} {
		expect(ctx, t, o, "connection-paused", annotated(full, montague, "connection-paused"))
	}
	must(t, p.lane.Resume(ctx))
	must(t, p.lane.SendPresence(ctx, "<status>after</status>"))
	// mercutio, the directed recipient, is the last the clearing goes to.
	expect(ctx, t, p.mercutio, "the clearing", annotatedWithStatus(full, "", "Directed"))
	for _, o := range []*rawclient.Client{p.desk, p.benvolio} {
		expect(ctx, t, o, "the new presence", func(e *rawclient.Element) bool {
			return plainPresence(full, "")(e) && e.Child(rawclient.NSClient, "status").Text() == "after"
		})
		must(t, o.Ping(ctx, ""))
	}
	for _, o := range []*rawclient.Client{p.desk, p.benvolio} {
		if last := lastFrom(o, full); last == nil || annotationOf(last) != nil || last.Child(rawclient.NSClient, "status").Text() != "after" {
			t.Errorf("%s ends with %s from lane, want the new presence without annotation\nreceived:\n%s",
				o.JID(), describePresence(last), dump(o.History()))
		}
	}
	if last := lastFrom(p.mercutio, full); !annotatedWithStatus(full, "", "Directed")(last) {
		t.Errorf("mercutio ends with %s from lane, want the directed presence with the empty annotation\nreceived:\n%s",
			describePresence(last), dump(p.mercutio.History()))
	}
}

// A resumption that comes while the pause annotations are still leaving
// cancels the rest of them: those the pause has not reached get neither
// it nor a clearing, those it reached get the clearing. desk, romeo's own
// resource, comes after his 300 roster contacts, 256 local recipients per
// slice and a slice every 5 s: the resumption comes long before its turn.
// (mod_psa used to send every pause annotation in the hibernation handler:
// desk got a pause and a clearing, both before the resumption was
// answered.)
func TestResumeCancelsQueuedPause(t *testing.T) {
	t.Parallel()
	p := newPausingRomeo(t, "5")
	ctx := testContext(t, 120*time.Second)
	full := p.lane.JID()

	pause(ctx, t, p.mont, p.lane)
	mark := p.mont.LogMark()
	must(t, p.lane.Resume(ctx))
	line, _, err := p.mont.WaitLog(ctx, mark, full+" resumed: clearing the annotation for")
	must(t, err)
	must(t, p.desk.Ping(ctx, ""))
	if got := annotations(p.desk.History()); len(got) != 0 {
		t.Fatalf("desk, whose pause had not left when lane resumed, got annotations:\n%s", dump(got))
	}
	if !strings.Contains(line, "for 0 entities") {
		if _, _, err := p.mont.WaitLog(ctx, mark, full+": clearing annotations sent"); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []*rawclient.Client{p.desk, p.benvolio, p.mercutio} {
		must(t, o.Ping(ctx, ""))
		var got []*rawclient.Element
		for _, e := range annotations(o.History()) {
			if e.Attr("from") == full {
				got = append(got, e)
			}
		}
		if o == p.desk && len(got) != 0 {
			t.Errorf("desk, whose pause had not left, got annotations:\n%s", dump(got))
		}
		// Each pause that left is followed by its clearing.
		if len(got)%2 != 0 || (len(got) == 2 && !annotated(full, montague, "")(got[1])) {
			t.Errorf("%s: a pause without its clearing:\n%s", o.JID(), dump(got))
		}
	}
}

// Pause annotations still queued at a module:reload leave after it: the
// queue lives in the module's shared state and the new code drains it.
func TestPauseQueueSurvivesReload(t *testing.T) {
	t.Parallel()
	p := newPausingRomeo(t, "2")
	ctx := testContext(t, 120*time.Second)
	full := p.lane.JID()

	pause(ctx, t, p.mont, p.lane)
	out, err := p.mont.Shell(ctx, `module:reload("psa", "`+montague+`")`)
	must(t, err)
	if !strings.Contains(out, "Module reloaded") {
		t.Fatalf("reload: %s", out)
	}
	for _, o := range []*rawclient.Client{p.desk, p.benvolio, p.mercutio} {
		expect(ctx, t, o, "connection-paused", annotated(full, montague, "connection-paused"))
	}
}

// A directed presence that the user sends at once after resuming to his
// own other resource supersedes the queued clearing for it, as one to a
// contact does: desk ends with the directed presence, not with the older
// broadcast one re-sent with the empty annotation after it.
func TestResumeThenDirectedToOwnResourceKeepsOrder(t *testing.T) {
	t.Parallel()
	p := newPausingRomeo(t, "1")
	ctx := testContext(t, 120*time.Second)
	full := p.lane.JID()

	must(t, p.lane.Drop())
	expect(ctx, t, p.desk, "connection-paused", annotated(full, montague, "connection-paused"))
	mark := p.mont.LogMark()
	must(t, p.lane.Resume(ctx))
	must(t, p.lane.Sendf("<presence to='%s'><status>Just for desk</status></presence>", p.desk.JID()))
	clearingSent(ctx, t, p.mont, mark, full)
	must(t, p.desk.Ping(ctx, ""))
	if last := lastFrom(p.desk, full); last == nil || annotationOf(last) != nil || last.Child(rawclient.NSClient, "status").Text() != "Just for desk" {
		t.Errorf("desk ends with %s from lane, want the directed presence without annotation\nreceived:\n%s",
			describePresence(last), dump(p.desk.History()))
	}
}

// clearingSent waits until mont's mod_psa, after the resumption of full
// that came after mark, has sent every clearing annotation it queued (if
// any), and returns its log line about the resumption.
func clearingSent(ctx context.Context, t *testing.T, mont *prosodytest.Server, mark int, full string) string {
	t.Helper()
	line, _, err := mont.WaitLog(ctx, mark, full+" resumed: clearing the annotation for")
	must(t, err)
	if !strings.Contains(line, "for 0 entities") {
		if _, _, err := mont.WaitLog(ctx, mark, full+": clearing annotations sent"); err != nil {
			t.Fatal(err)
		}
	}
	return line
}
