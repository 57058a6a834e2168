package prosody_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// annotatedWithStatus matches a presence from `from` annotated by montague.lit with
// cond ("" for the empty annotation) whose status is text.
func annotatedWithStatus(from, cond, text string) func(*rawclient.Element) bool {
	annot := annotated(from, montague, cond)
	return func(e *rawclient.Element) bool {
		return annot(e) && e.Child(rawclient.NSClient, "status").Text() == text
	}
}

// An outage's re-sends leave a few at a time over turns of the event loop
// (here one every 2 s). A presence that juliet sends while her re-send is
// still queued reaches romeo annotated, and the older re-send does not
// follow it; after the restore the probe answers carry the empty
// annotation of the re-sends they overtake.
func TestResendQueueKeepsOrder(t *testing.T) {
	t.Parallel()
	n := slowResends(t)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	romeo, juliet := connectPair(ctx, t, n)
	jfull := juliet.JID()
	nurse := nurseFor(ctx, t, n, romeo)

	// montague.lit cannot reach capulet.lit; juliet's presences still come.
	mark := mont.LogMark()
	must(t, n.CutOneWay(montague, capulet))
	if _, _, err := mont.WaitLog(ctx, mark, "Re-sending 2 presences annotated server-unavailable for "+capulet); err != nil {
		t.Fatal(err)
	}
	queued := time.Now()
	must(t, juliet.SendPresence(ctx, "<status>new</status>"))
	expect(ctx, t, romeo, "juliet's new presence, annotated", annotatedWithStatus(jfull, "server-unavailable", "new"))
	if d := time.Since(queued); d > 2*time.Second {
		t.Logf("juliet's new presence came %v after the re-sends were queued: the first may have left before it", d)
	}
	expect(ctx, t, romeo, "the nurse's re-send", annotatedWithStatus(nurse.JID(), "server-unavailable", "Anon, anon"))

	mark = mont.LogMark()
	must(t, n.Heal(montague, capulet))
	expectEach(ctx, t, romeo, "the empty annotations",
		annotatedWithStatus(jfull, "", "new"),
		annotatedWithStatus(nurse.JID(), "", "Anon, anon"))
	_, up, err := mont.WaitLog(ctx, mark, "Link montague.lit -> capulet.lit is up")
	must(t, err)
	if _, _, err := mont.WaitLog(ctx, up, "Re-sends done"); err != nil {
		t.Fatal(err)
	}
	must(t, romeo.Ping(ctx, ""))

	// Nothing of juliet's older presence after her new one.
	seen := false
	for _, e := range romeo.History() {
		if !e.Is(rawclient.NSClient, "presence") || e.Attr("from") != jfull {
			continue
		}
		status := e.Child(rawclient.NSClient, "status").Text()
		if status == "new" {
			seen = true
		} else if seen {
			t.Fatalf("juliet's older presence after her new one: %s\nreceived:\n%s", e, dump(romeo.History()))
		}
	}
}

// Re-sends still queued at a module:reload leave after it: the queue lives
// in the module's shared state and the new code drains it.
func TestResendQueueSurvivesReload(t *testing.T) {
	t.Parallel()
	n := slowResends(t)
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)
	romeo, juliet := connectPair(ctx, t, n)
	nurse := nurseFor(ctx, t, n, romeo)

	mark := mont.LogMark()
	must(t, n.Cut(montague, capulet))
	if _, _, err := mont.WaitLog(ctx, mark, "Re-sending 2 presences annotated server-unavailable for "+capulet); err != nil {
		t.Fatal(err)
	}
	out, err := mont.Shell(ctx, `module:reload("psa", "`+montague+`")`)
	must(t, err)
	if !strings.Contains(out, "Module reloaded") {
		t.Fatalf("reload: %s", out)
	}
	expectEach(ctx, t, romeo, "the queued re-sends",
		annotatedWithStatus(juliet.JID(), "server-unavailable", "Wherefore art thou"),
		annotatedWithStatus(nurse.JID(), "server-unavailable", "Anon, anon"))
}

// On a MUC component the announcements leave in slices too; an occupant
// that leaves the room while its announcement is queued is not announced
// after its departure (it would reappear in the room). Prosody's own
// publicise builds nothing for a departed occupant's copy either: this
// guards the behaviour end to end, whichever of the two keeps it.
func TestMUCAnnouncementQueueSkipsLeftOccupant(t *testing.T) {
	t.Parallel()
	n := slowResends(t)
	ctx := testContext(t, 60*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference
	romeo := occupant(ctx, t, mont, "romeo", "lane", psaFeatures, room, "Romeo")
	nurse := occupant(ctx, t, capu, "nurse", "garden", rawclient.Config{}, room, "Nurse")
	expect(ctx, t, romeo, "the nurse in the room", plainPresence(room+"/Nurse", ""))

	// The MUC service cannot reach capulet.lit; the nurse's stanzas still
	// reach it.
	mark := mont.LogMark()
	must(t, n.CutOneWay(montague, capulet))
	if _, _, err := mont.WaitLog(ctx, mark, "occupants annotated server-unavailable for "+capulet); err != nil {
		t.Fatal(err)
	}
	must(t, nurse.Sendf("<presence type='unavailable' to='%s/Nurse'/>", room))
	expect(ctx, t, romeo, "the nurse leaving", plainPresence(room+"/Nurse", "unavailable"))
	announcementsSent(ctx, t, mont, mark, "annotated server-unavailable for "+capulet)
	must(t, romeo.RoundTrip(ctx, conference))

	left := false
	for _, e := range romeo.History() {
		if !e.Is(rawclient.NSClient, "presence") || e.Attr("from") != room+"/Nurse" {
			continue
		}
		if left {
			t.Fatalf("the nurse announced after she left: %s\nreceived:\n%s", e, dump(romeo.History()))
		}
		left = e.Attr("type") == "unavailable"
	}
}

// slowResends starts the Shakespeare network with montague.lit's re-sends
// leaving one at a time, every 2 s, so that a test can act while they are
// queued.
func slowResends(t *testing.T) *prosodytest.Network {
	t.Helper()
	return shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.PSAOptions["psa_resend_batch"] = "1"
		mont.PSAOptions["psa_resend_interval"] = "2"
	})
}

// nurseFor brings the nurse online on capulet.lit, without annotations,
// and waits until romeo has her presence.
func nurseFor(ctx context.Context, t *testing.T, n *prosodytest.Network, romeo *rawclient.Client) *rawclient.Client {
	t.Helper()
	nurse := client(ctx, t, n.Server(capulet), "nurse", "kitchen", rawclient.Config{})
	must(t, nurse.SendPresence(ctx, "<status>Anon, anon</status>"))
	expect(ctx, t, romeo, "the nurse's presence", plainPresence(nurse.JID(), ""))
	return nurse
}
