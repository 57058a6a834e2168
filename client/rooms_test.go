package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

const mucDomain = "muc.montague.lit"

var (
	orchard  = jid.MustParse("orchard@" + mucDomain)
	romeoOcc = jid.MustParse("orchard@" + mucDomain + "/Romeo")
)

// fastPolicy is a room policy with short waits, for tests.
func fastPolicy() client.RoomPolicy {
	p := client.DefaultRoomPolicy()
	p.RejoinDelay = 10 * time.Millisecond
	p.PingTimeout = 2 * time.Second
	p.MaxAttempts = 3
	return p
}

// joined connects romeo and joins the orchard, where juliet (from
// capulet.lit) is already.
func joined(t *testing.T, policy client.RoomPolicy, opts ...client.Option) (*psatest.Server, *psatest.Room, *client.Client, *recorder, context.Context) {
	t.Helper()
	srv, ctx := setup(t, psatest.WithMUC(mucDomain))
	room := srv.Room("orchard")
	room.SetPersistent(true)
	if err := room.AddOccupant(ctx, "Juliet", juliet, "participant", "member"); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, append([]client.Option{client.WithRoomPolicy(policy)}, opts...)...)
	if err := c.Join(ctx, romeoOcc); err != nil {
		t.Fatalf("Join: %v", err)
	}
	return srv, room, c, rec, ctx
}

func TestJoin(t *testing.T) {
	_, room, c, rec, ctx := joined(t, fastPolicy())
	j, err := room.NextJoin(ctx, func(psatest.Join) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	// The join presence carries caps and asks for no history.
	if !j.HasMUC || j.History == nil || j.History.MaxStanzas != "0" || j.Stanza.Presence == nil || j.Stanza.Presence.Caps.Ver == "" {
		t.Fatalf("join presence %s", j.Stanza.Raw)
	}
	e := rec.nextRoom(ctx, t, mucwatch.EventOccupantAvailable)
	if e.Occupant.Nick != "Juliet" || !e.Occupant.RealJID.Equal(juliet) {
		t.Fatalf("occupant %+v", e.Occupant)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	r, ok := c.Rooms().Room(orchard)
	if !ok || !r.Joined() || r.Nick != "Romeo" || r.Occupants != 2 { // Juliet and us
		t.Fatalf("room %+v", r)
	}
}

func TestJoinErrors(t *testing.T) {
	srv, ctx := setup(t, psatest.WithMUC(mucDomain))
	c := dial(ctx, t, srv, nil)
	for cond, want := range map[stanza.Condition]error{
		stanza.Conflict:             mucwatch.ErrNickInUse,
		stanza.NotAuthorized:        mucwatch.ErrPasswordRequired,
		stanza.RegistrationRequired: mucwatch.ErrMembersOnly,
		stanza.Forbidden:            mucwatch.ErrBanned,
		stanza.ServiceUnavailable:   mucwatch.ErrRoomFull,
	} {
		room := srv.Room("r-" + string(cond))
		room.RefuseJoins(cond)
		err := c.Join(ctx, jid.MustParse(room.JID().String()+"/Romeo"))
		var je *mucwatch.JoinError
		if !errors.Is(err, want) || !errors.As(err, &je) || je.Condition != cond {
			t.Errorf("%s: Join = %v, want %v", cond, err, want)
		}
		if _, ok := c.Rooms().Room(room.JID()); ok {
			t.Errorf("%s: the refused room is still tracked", cond)
		}
	}
}

func TestJoinAssignedNickAndPassword(t *testing.T) {
	srv, ctx := setup(t, psatest.WithMUC(mucDomain))
	room := srv.Room("orchard")
	room.RewriteNicks(func(string) string { return "Romeo2" })
	c := dial(ctx, t, srv, nil)
	if err := c.Join(ctx, romeoOcc, client.JoinPassword("secret"), client.JoinHistory(20)); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Rooms().Room(orchard); r.Nick != "Romeo2" {
		t.Fatalf("nick %q, want the one the service assigned", r.Nick)
	}
	j, _ := room.NextJoin(ctx, func(psatest.Join) bool { return true })
	if j.Password != "secret" || j.History == nil || j.History.MaxStanzas != "20" {
		t.Fatalf("join %+v", j)
	}
}

// noRoomFlip reads room events until one of kind want for occupant (""
// for any), failing on a room-stale or room-restored event before it.
func noRoomFlip(ctx context.Context, t *testing.T, rec *recorder, want mucwatch.EventKind, occupant string) mucwatch.Event {
	t.Helper()
	for {
		select {
		case e := <-rec.room:
			switch {
			case e.Kind == want && (occupant == "" || e.JID.String() == occupant):
				return e
			case e.Kind == mucwatch.EventRoomStale || e.Kind == mucwatch.EventRoomRestored:
				t.Fatalf("%s while waiting for %s of %s: %+v", e.Kind, want, occupant, e)
			}
		case <-ctx.Done():
			t.Fatalf("no %s room event for %s", want, occupant)
		}
	}
}

// Marks on another occupant stay on that occupant, whoever set them: the
// room is not stale, and their toggling makes no self-ping. A mark from
// our own server on our own occupant makes the room stale, and when it
// clears the client self-pings.
func TestRoomStaleAndSelfPing(t *testing.T) {
	_, room, c, rec, ctx := joined(t, fastPolicy())
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	julietOcc := orchard.String() + "/Juliet"

	muc := jid.MustParse(mucDomain)
	for range 3 {
		for _, by := range []jid.JID{muc, montague} {
			if err := room.Annotate(ctx, "Juliet", psa.Annotation{From: by, Condition: psa.ServerUnavailable}); err != nil {
				t.Fatal(err)
			}
			e := noRoomFlip(ctx, t, rec, mucwatch.EventOccupantStale, julietOcc)
			if e.Mark.Condition != psa.ServerUnavailable || !e.Mark.By.Equal(by) {
				t.Fatalf("occupant stale %+v", e)
			}
			if r, _ := c.Rooms().Room(orchard); r.Stale {
				t.Fatalf("a mark by %s on another occupant made the room stale", by)
			}
		}
		for _, by := range []jid.JID{montague, muc} {
			if err := room.Annotate(ctx, "Juliet", psa.Annotation{From: by}); err != nil {
				t.Fatal(err)
			}
			noRoomFlip(ctx, t, rec, mucwatch.EventOccupantRestored, julietOcc)
		}
	}

	// Our own server loses its link to the MUC service: it marks our own
	// occupant too.
	if err := room.Annotate(ctx, "Romeo", psa.Annotation{From: montague, Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	if e := noRoomFlip(ctx, t, rec, mucwatch.EventOccupantStale, romeoOcc.String()); !e.Occupant.Self {
		t.Fatalf("occupant stale %+v", e)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomStale)
	if err := room.Annotate(ctx, "Romeo", psa.Annotation{From: montague}); err != nil {
		t.Fatal(err)
	}
	if e := rec.nextRoom(ctx, t, mucwatch.EventRoomRestored); !e.Resent {
		t.Fatalf("restored %+v", e)
	}
	// The first self-ping since the join is this one: none for Juliet's marks.
	a := rec.nextAction(ctx, t, client.ActionSelfPing)
	if a.Verdict != mucwatch.VerdictJoined || a.Reason != "restored" || !a.Room.Equal(orchard) || !a.Occupant.Equal(romeoOcc) {
		t.Fatalf("self-ping %+v", a)
	}
}

// anyRoom returns the next room event, whatever its kind.
func anyRoom(ctx context.Context, t *testing.T, rec *recorder) mucwatch.Event {
	t.Helper()
	select {
	case e := <-rec.room:
		return e
	case <-ctx.Done():
		t.Fatal("no room event")
	}
	return mucwatch.Event{}
}

// While we are Romeo, the nurse joins as ROMEO (a service may hold both),
// then leaves: our nick, our own occupant and the target of our self-pings
// stay ours.
func TestCaseVariantNickKeepsOurOccupant(t *testing.T) {
	_, room, c, rec, ctx := joined(t, fastPolicy())
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	// The room answers our own self-pings, and only those, with an error
	// that still means joined: a ping to another occupant gets a result.
	room.SetSelfPing(psatest.SelfPingReply{Condition: stanza.FeatureNotImplemented})
	hers := jid.MustParse(orchard.String() + "/ROMEO")

	ours := func(when string) {
		t.Helper()
		r, _ := c.Rooms().Room(orchard)
		me, ok := c.Rooms().Self(orchard)
		if r.Nick != "Romeo" || !r.Joined() || !ok || !me.JID.Equal(romeoOcc) {
			t.Fatalf("%s: room %+v, our own occupant %+v (%v)", when, r, me, ok)
		}
	}
	if err := room.AddOccupant(ctx, "ROMEO", nurse, "participant", "none"); err != nil {
		t.Fatal(err)
	}
	if e := anyRoom(ctx, t, rec); e.Kind != mucwatch.EventOccupantAvailable || !e.JID.Equal(hers) || e.Occupant.Self {
		t.Fatalf("her arrival: %+v", e)
	}
	ours("she is in")
	if o, ok := c.Rooms().Occupant(hers); !ok || o.Self {
		t.Fatalf("her occupant %+v (%v)", o, ok)
	}
	if err := room.RemoveOccupant(ctx, "ROMEO"); err != nil {
		t.Fatal(err)
	}
	if e := anyRoom(ctx, t, rec); e.Kind != mucwatch.EventOccupantUnavailable || !e.JID.Equal(hers) {
		t.Fatalf("her leaving: %+v", e)
	}
	ours("she left")

	// A mark on our own occupant comes and goes: the client self-pings us,
	// and the room answers for us.
	if err := room.Annotate(ctx, "Romeo", psa.Annotation{From: montague, Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomStale)
	if err := room.Annotate(ctx, "Romeo", psa.Annotation{From: montague}); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomRestored)
	a := rec.nextAction(ctx, t, client.ActionSelfPing)
	var se stanza.Error
	if !errors.As(a.Err, &se) || se.Condition != stanza.FeatureNotImplemented || !a.Occupant.Equal(romeoOcc) || a.Verdict != mucwatch.VerdictJoined {
		t.Fatalf("self-ping %+v, want one to %s answered by the room for us", a, romeoOcc)
	}
	ours("after the self-ping")
}

// The room dropped us while the link was down: the self-ping says so and
// the client rejoins.
func TestSelfPingNotJoinedRejoins(t *testing.T) {
	srv, room, c, rec, ctx := joined(t, fastPolicy())
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	room.NextJoin(ctx, func(psatest.Join) bool { return true })
	if err := room.Annotate(ctx, "Romeo", psa.Annotation{From: montague, Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomStale)
	// Meanwhile the room dropped us without a word reaching us.
	if err := room.Forget("Romeo"); err != nil {
		t.Fatal(err)
	}
	// The link is back: our server re-sends the presence it remembers from
	// our occupant, with an empty annotation, as mod_psa does.
	if err := srv.Annotate(ctx, c.JID(), romeoOcc, psa.Annotation{From: montague}); err != nil {
		t.Fatal(err)
	}
	if e := rec.nextRoom(ctx, t, mucwatch.EventRoomRestored); !e.Resent {
		t.Fatalf("restored %+v", e)
	}
	a := rec.nextAction(ctx, t, client.ActionSelfPing)
	if a.Verdict != mucwatch.VerdictNotJoined {
		t.Fatalf("self-ping %+v", a)
	}
	if a := rec.nextAction(ctx, t, client.ActionRejoin); a.Reason != "not-joined" {
		t.Fatalf("rejoin %+v", a)
	}
	j, err := room.NextJoin(ctx, func(psatest.Join) bool { return true })
	if err != nil || j.History == nil || j.History.MaxStanzas != "0" {
		t.Fatalf("rejoin presence %+v, %v", j, err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
}

func TestSelfPingUndecidedRetries(t *testing.T) {
	p := fastPolicy()
	p.Silence = 50 * time.Millisecond
	_, room, _, rec, ctx := joined(t, p)
	room.SetSelfPing(psatest.SelfPingReply{Condition: stanza.RemoteServerTimeout})
	for i := range 2 {
		a := rec.nextAction(ctx, t, client.ActionSelfPing)
		if a.Verdict != mucwatch.VerdictUndecided {
			t.Fatalf("self-ping %d: %+v", i, a)
		}
	}
	room.SetSelfPing(psatest.SelfPingReply{})
	for {
		a := rec.nextAction(ctx, t, client.ActionSelfPing)
		if a.Verdict == mucwatch.VerdictJoined {
			break
		}
	}
}

func TestKicks(t *testing.T) {
	t.Run("307 kicked stays out", func(t *testing.T) {
		_, room, c, rec, ctx := joined(t, fastPolicy())
		rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
		if err := room.Kick(ctx, "Romeo", 307); err != nil {
			t.Fatal(err)
		}
		e := rec.nextRoom(ctx, t, mucwatch.EventRoomKicked)
		if !e.Removal.Has(307) {
			t.Fatalf("kicked %+v", e)
		}
		if r, _ := c.Rooms().Room(orchard); r.State != mucwatch.StateKicked {
			t.Fatalf("room %+v", r)
		}
	})
	t.Run("333 technical removal rejoins", func(t *testing.T) {
		_, room, _, rec, ctx := joined(t, fastPolicy())
		rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
		if err := room.Kick(ctx, "Romeo", 333); err != nil {
			t.Fatal(err)
		}
		rec.nextRoom(ctx, t, mucwatch.EventRoomDropped)
		if a := rec.nextAction(ctx, t, client.ActionRejoin); a.Reason != "removed" {
			t.Fatalf("rejoin %+v", a)
		}
		rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	})
	t.Run("gave up", func(t *testing.T) {
		_, room, c, rec, ctx := joined(t, fastPolicy())
		rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
		room.RefuseJoins(stanza.Forbidden)
		if err := room.Kick(ctx, "Romeo", 332); err != nil {
			t.Fatal(err)
		}
		a := rec.nextAction(ctx, t, client.ActionGaveUp)
		if a.Attempt != 3 || !errors.Is(a.Err, mucwatch.ErrBanned) {
			t.Fatalf("gave up %+v", a)
		}
		if _, ok := c.Rooms().Room(orchard); ok {
			t.Fatal("the room is still tracked")
		}
	})
	t.Run("destroyed", func(t *testing.T) {
		_, room, _, rec, ctx := joined(t, fastPolicy())
		rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
		venue := jid.MustParse("garden@" + mucDomain)
		if err := room.Destroy(ctx, venue, "moved"); err != nil {
			t.Fatal(err)
		}
		e := rec.nextRoom(ctx, t, mucwatch.EventRoomDestroyed)
		if !e.Removal.Venue.Equal(venue) || e.Removal.Reason != "moved" {
			t.Fatalf("destroyed %+v", e)
		}
	})
}

// After our own reconnect every room is rejoined once, without history,
// and occupants that left meanwhile are removed.
func TestRejoinAfterReconnect(t *testing.T) {
	srv, room, c, rec, ctx := joined(t, fastPolicy())
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	if err := room.AddOccupant(ctx, "Nurse", nurse, "participant", "none"); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventOccupantAvailable)
	room.NextJoin(ctx, func(psatest.Join) bool { return true })

	sess, _ := srv.WaitAvailable(ctx, c.JID())
	if err := room.RemoveOccupant(ctx, "Nurse"); err != nil { // while...
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventOccupantUnavailable)
	if err := room.AddOccupant(ctx, "Nurse", nurse, "participant", "none"); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventOccupantAvailable)
	sess.Drop()
	e := rec.nextRoom(ctx, t, mucwatch.EventRoomStale)
	if e.Mark.Condition != psa.LocalDisconnected {
		t.Fatalf("room stale %+v", e)
	}
	// ...we are away, the nurse leaves for good.
	if err := room.RemoveOccupant(ctx, "Nurse"); err != nil {
		t.Fatal(err)
	}
	if a := rec.nextAction(ctx, t, client.ActionRejoin); a.Reason != "reconnect" {
		t.Fatalf("rejoin %+v", a)
	}
	j, err := room.NextJoin(ctx, func(psatest.Join) bool { return true })
	if err != nil || j.History == nil || j.History.MaxStanzas != "0" {
		t.Fatalf("rejoin %+v, %v", j, err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	if r, _ := c.Rooms().Room(orchard); r.Stale || r.Occupants != 2 { // Juliet and us
		t.Fatalf("room after the rejoin %+v", r)
	}
	if _, ok := c.Rooms().Occupant(jid.MustParse(orchard.String() + "/Nurse")); ok {
		t.Fatal("the nurse was not swept")
	}
	// Exactly one rejoin.
	if _, err := room.NextJoin(ctxShort(t), func(psatest.Join) bool { return true }); err == nil {
		t.Fatal("joined twice")
	}
}

// ctxShort is for waits that must not succeed: how long it waits only
// bounds the test, nothing depends on it.
func ctxShort(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestLeave(t *testing.T) {
	_, room, c, rec, ctx := joined(t, fastPolicy())
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	if err := c.Leave(ctx, orchard, "bye"); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomLeft)
	if _, ok := c.Rooms().Room(orchard); ok {
		t.Fatal("the room is still tracked")
	}
	for _, o := range room.Occupants() {
		if o.Nick == "Romeo" {
			t.Fatal("still in the room on the server")
		}
	}
}

func TestCreateInstantRoom(t *testing.T) {
	srv, ctx := setup(t, psatest.WithMUC(mucDomain))
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithRoomPolicy(fastPolicy()))
	if err := c.Join(ctx, jid.MustParse("new@"+mucDomain+"/Romeo")); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomCreated)
	if a := rec.nextAction(ctx, t, client.ActionConfigured); a.Err != nil {
		t.Fatalf("configured %+v", a)
	}
}

// A room of 10,000 occupants, all marked stale by the service at once.
func TestLargeRoom(t *testing.T) {
	srv, ctx := setup(t, psatest.WithMUC(mucDomain))
	room := srv.Room("big")
	room.SetPersistent(true)
	const n = 10_000
	for i := range n {
		if err := room.AddOccupant(ctx, fmt.Sprintf("o%d", i), jid.MustParse(fmt.Sprintf("u%d@capulet.lit/r", i)), "participant", "none"); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	c := dial(ctx, t, srv, rec)
	if err := c.Join(ctx, jid.MustParse(room.JID().String()+"/Romeo")); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Rooms().Room(room.JID()); r.Occupants != n+1 { // and us
		t.Fatalf("%d occupants", r.Occupants)
	}
	muc := jid.MustParse(mucDomain)
	for i := range n {
		if err := room.Annotate(ctx, fmt.Sprintf("o%d", i), psa.Annotation{From: muc, Condition: psa.ServerUnavailable}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		rec.nextRoom(ctx, t, mucwatch.EventOccupantStale)
	}
	if s := c.Rooms().Stats(); s.StaleOccupants != n || s.StaleRooms != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestCloseIsNotAnOutage checks what a deliberate Close reports: the rooms
// are left (EventRoomLeft, never a kick: our own unavailable with 110 after
// we said goodbye is the service confirming the leave), and no entry goes
// stale, since a shutdown is not an outage. The models keep their last
// state, every resource marked local-disconnected, without events.
func TestCloseIsNotAnOutage(t *testing.T) {
	srv, _, c, rec, ctx := joined(t, fastPolicy())
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
		t.Fatal(err)
	}
	rec.nextRoster(ctx, t, "juliet available", kindJID(roster.EventAvailable, juliet))
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close returned: the callbacks have received everything.
	left := false
	for len(rec.room) > 0 {
		e := <-rec.room
		switch e.Kind {
		case mucwatch.EventRoomLeft:
			left = true
		case mucwatch.EventRoomKicked, mucwatch.EventRoomStale, mucwatch.EventOccupantStale:
			t.Errorf("Close reported %v %v", e.Kind, e.JID)
		}
	}
	if !left {
		t.Error("Close did not report the room left")
	}
	for len(rec.roster) > 0 {
		if e := <-rec.roster; e.Kind == roster.EventStale {
			t.Errorf("Close reported %v stale (%v)", e.JID, e.Mark.Condition)
		}
	}
	if _, ok := c.Rooms().Room(orchard); ok {
		t.Error("the room is still tracked after Close")
	}
	if r, ok := c.Roster().Resource(juliet); !ok || !localDisconnected(r.Marks) {
		t.Errorf("after Close juliet is %+v (tracked %v), want kept and marked local-disconnected", r, ok)
	}
}

// localDisconnected reports whether ms hold psakit's own mark.
func localDisconnected(ms psa.Marks) bool {
	for _, m := range ms {
		if m.Condition == psa.LocalDisconnected {
			return true
		}
	}
	return false
}

// Joining a JID that does not answer (no room: a user, a server without
// MUC) fails when ctx ends with an error that names the room, and still
// matches ctx's error.
func TestJoinNoAnswerNamesTheRoom(t *testing.T) {
	srv, ctx := setup(t, psatest.WithMUC(mucDomain))
	c := dial(ctx, t, srv, nil)
	jctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err := c.Join(jctx, jid.MustParse("juliet@capulet.lit/Romeo"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "juliet@capulet.lit") {
		t.Fatalf("Join: %v, want the room named and a deadline error", err)
	}
	if _, ok := c.Rooms().Room(jid.MustParse("juliet@capulet.lit")); ok {
		t.Error("the room is still tracked")
	}
}
