package e2e_test

import (
	"context"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

// chat is the MUC component of capulet.lit in the tests of this file.
const chat = "chat.capulet.lit"

// dialPlain connects a psakit client as dial does, to a server without
// mod_psa: no log line says when annotations are on, so it returns once
// Dial has (the roster fetched, presence sent).
func dialPlain(ctx context.Context, t testing.TB, srv *prosodytest.Server, user, resource string, rec *recorder, extra ...client.Option) *client.Client {
	t.Helper()
	opts := append(clientOptions(srv, resource), rec.options()...)
	opts = append(opts, extra...)
	account := jid.MustParse(user + "@" + srv.Domain)
	c, err := client.Dial(ctx, account, pw, opts...)
	if err != nil {
		t.Fatalf("dialing %s: %v", account, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// inferredRoster matches a roster event of kind for full whose mark is
// psakit's own, inferred for domain.
func inferredRoster(kind roster.EventKind, full, domain string) func(event) bool {
	return func(e event) bool {
		if !rosterEvent(kind, full)(e) {
			return false
		}
		d, ok := e.roster.Mark.InferredDomain()
		return ok && d.String() == domain
	}
}

// inferredRoom matches a room event of kind for room (and occupant, unless
// empty) whose mark is psakit's own, inferred for domain.
func inferredRoom(kind mucwatch.EventKind, room, occupant, domain string) func(event) bool {
	return func(e event) bool {
		if !roomEvent(kind, room, occupant)(e) {
			return false
		}
		d, ok := e.room.Mark.InferredDomain()
		return ok && d.String() == domain
	}
}

// Two vanilla Prosody servers (no mod_psa anywhere): nothing annotates
// presence, and psakit's remote checks (every 5 s) find the outages
// themselves. romeo (montague.lit) has juliet (capulet.lit) online and
// sits with the nurse in a room on chat.capulet.lit. The link is cut
// (connections reset, new ones refused), then healed; then blackholed
// (everything silently held), then healed. Each time juliet, the room and
// the nurse's occupant get psakit's inferred mark, and after the heal lose
// it; juliet is verified, and romeo is in the room again, fresh.
func TestRemoteChecksWithoutPSA(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, capu *prosodytest.Spec) {
		mont.WithoutPSA, capu.WithoutPSA = true, true
		capu.MUC = chat
	})
	ctx := testContext(t, 5*time.Minute)
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + chat
	nurseNick := room + "/Nurse"

	// Without caps: rawclient waits for mod_psa's caps query otherwise.
	juliet := raw(ctx, t, capu, "juliet", "balcony", rawclient.Config{NoCaps: true}, "<status>Ay me!</status>")
	jfull := juliet.JID()
	nurse := raw(ctx, t, capu, "nurse", "garden", rawclient.Config{NoCaps: true}, "")
	must(t, nurse.JoinMUC(ctx, room, "Nurse"))
	rec := newRecorder()
	romeo := dialPlain(ctx, t, mont, "romeo", "lane", rec, client.WithRemoteCheck(5*time.Second))
	rec.expect(ctx, t, "juliet available", rosterEvent(roster.EventAvailable, jfull))
	must(t, romeo.Join(ctx, jid.MustParse(room+"/Romeo")))
	inRoom := func() bool {
		r, ok := romeo.Rooms().Room(jid.MustParse(room))
		_, nurseThere := romeo.Rooms().Occupant(jid.MustParse(nurseNick))
		return ok && r.Joined() && !r.Stale && nurseThere
	}
	rec.until(ctx, t, "romeo and the nurse in the room", inRoom)

	for _, fault := range []struct {
		name string
		cut  func() error
	}{
		{"refused", func() error { return n.Cut(montague, capulet) }},
		{"blackholed", func() error { return n.Blackhole(montague, capulet) }},
	} {
		start, cut := rec.mark(), time.Now()
		must(t, fault.cut())
		e, _ := rec.waitFrom(ctx, t, start, fault.name+": juliet stale", inferredRoster(roster.EventStale, jfull, capulet))
		timing(t, fault.name+": cut -> juliet stale", e.at.Sub(cut))
		if r := resource(t, romeo, jfull); r.Fresh() || r.StatusText() != "Ay me!" {
			t.Errorf("%s: juliet while cut off: fresh=%v status %q", fault.name, r.Fresh(), r.StatusText())
		}
		e, _ = rec.waitFrom(ctx, t, start, fault.name+": room stale", inferredRoom(mucwatch.EventRoomStale, room, "", chat))
		timing(t, fault.name+": cut -> room stale", e.at.Sub(cut))
		rec.waitFrom(ctx, t, start, fault.name+": the nurse's occupant stale", inferredRoom(mucwatch.EventOccupantStale, room, nurseNick, chat))

		start, healed := rec.mark(), time.Now()
		must(t, n.Heal(montague, capulet))
		e, _ = rec.waitFrom(ctx, t, start, fault.name+": juliet restored", inferredRoster(roster.EventRestored, jfull, capulet))
		timing(t, fault.name+": heal -> juliet restored", e.at.Sub(healed))
		v, _ := rec.waitFrom(ctx, t, start, fault.name+": juliet verified", verifyEvent(jfull))
		if v.verify.Outcome != client.VerifyAlive {
			t.Errorf("%s: juliet's verification after the heal: %s (%v)", fault.name, v.verify.Outcome, v.verify.Err)
		}
		if r := resource(t, romeo, jfull); !r.Fresh() {
			t.Errorf("%s: juliet after the heal: %v", fault.name, r.Marks)
		}
		e, _ = rec.waitFrom(ctx, t, start, fault.name+": room restored", roomEvent(mucwatch.EventRoomRestored, room, ""))
		timing(t, fault.name+": heal -> room restored", e.at.Sub(healed))
		// The restore self-pings the room (and rejoins when the service
		// dropped romeo meanwhile): he is in, fresh, with the nurse.
		rec.until(ctx, t, fault.name+": romeo in the room again, fresh", inRoom)
	}
}
