package client

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
)

var (
	planT0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	planRoom  = jid.MustParse("orchard@muc.montague.lit")
	planOcc   = jid.MustParse("orchard@muc.montague.lit/Romeo")
	errRefuse = errors.New("refused")
)

type planOp uint8

const (
	opWant    planOp = iota + 1 // the application joins planOcc, asking for history 20
	opUp                        // our stream comes up
	opDown                      // our stream goes down
	opEvent                     // a room event of kind ev (resent, err)
	opPinged                    // a self-ping's verdict v
	opBounced                   // the room bounced a message of ours
	opDue                       // the runner asks what is due; heard (if set) is when we last heard from the room
	opForget                    // the application leaves
	opResumed                   // our stream is resumed (XEP-0198); the model holds the room in state (StateNone: not at all)
)

// planStep is one call to the planner at t0+at, the tasks it must return,
// and what it must then have planned for the room.
type planStep struct {
	at     time.Duration
	op     planOp
	ev     mucwatch.EventKind
	resent bool
	err    error
	v      mucwatch.Verdict
	state  mucwatch.RoomState
	heard  *time.Duration
	want   []roomTask
	plan   *plannedState // nil: not checked
	gone   bool          // the room must be forgotten
	until  *time.Duration
}

// plannedState is what a test checks of a plannedRoom.
type plannedState struct {
	next     roomStep
	reason   RoomReason
	due      time.Duration // from t0; -1: nothing planned
	busy     bool
	attempts int
}

func planned(next roomStep, reason RoomReason, due time.Duration, attempts int) *plannedState {
	return &plannedState{next: next, reason: reason, due: due, attempts: attempts}
}

func dur(d time.Duration) *time.Duration { return &d }

func pingTask(reason RoomReason) roomTask {
	return roomTask{step: stepPing, room: planRoom, occupant: planOcc, reason: reason}
}

func rejoinTask(reason RoomReason, attempt int) roomTask {
	return roomTask{step: stepRejoin, room: planRoom, occupant: planOcc, reason: reason, attempt: attempt}
}

// runPlan plays steps on a planner whose jitter is the identity and whose
// stream is up.
func runPlan(t *testing.T, p RoomPolicy, steps []planStep) {
	t.Helper()
	pl := newRoomPlanner(p)
	pl.jitter = func(d time.Duration) time.Duration { return d }
	pl.streamUp(planT0)
	for i, s := range steps {
		now := planT0.Add(s.at)
		var got []roomTask
		switch s.op {
		case opWant:
			pl.want(planOcc, joinParams{history: 20})
		case opUp:
			pl.streamUp(now)
		case opDown:
			pl.streamDown()
		case opEvent:
			got = pl.event(&mucwatch.Event{Kind: s.ev, Room: planRoom, Resent: s.resent, Err: s.err}, now)
		case opPinged:
			pl.pinged(planRoom.String(), s.v, now)
		case opBounced:
			pl.bounced(planRoom.String(), now)
		case opDue:
			got = pl.due(now, func(string) (time.Time, bool) {
				if s.heard == nil {
					return time.Time{}, false
				}
				return planT0.Add(*s.heard), true
			})
		case opForget:
			pl.forget(planRoom.String())
		case opResumed:
			pl.streamResumed(now, func(j jid.JID) (mucwatch.Room, bool) {
				if !j.Equal(planRoom) || s.state == mucwatch.StateNone {
					return mucwatch.Room{}, false
				}
				return mucwatch.Room{JID: planRoom, State: s.state}, true
			})
		}
		if !slices.EqualFunc(got, s.want, func(a, b roomTask) bool {
			return a.step == b.step && a.room.Equal(b.room) && a.occupant.Equal(b.occupant) &&
				a.reason == b.reason && a.attempt == b.attempt && a.params == b.params && errors.Is(a.err, b.err)
		}) {
			t.Fatalf("step %d (op %d): tasks %+v, want %+v", i, s.op, got, s.want)
		}
		r := pl.rooms[planRoom.String()]
		switch {
		case s.gone && r != nil:
			t.Fatalf("step %d: the room is still planned for: %+v", i, *r)
		case s.plan != nil && r == nil:
			t.Fatalf("step %d: the room is forgotten", i)
		case s.plan != nil:
			due := time.Duration(-1)
			if !r.due.IsZero() {
				due = r.due.Sub(planT0)
			}
			got := plannedState{next: r.next, reason: r.reason, due: due, busy: r.busy, attempts: r.attempts}
			if s.plan.due == -1 {
				got.next, got.reason = s.plan.next, s.plan.reason // not planned: the last step does not matter
			}
			if got != *s.plan {
				t.Fatalf("step %d: planned %+v, want %+v", i, got, *s.plan)
			}
		}
		if s.until != nil {
			if u := pl.until(now); u != *s.until {
				t.Fatalf("step %d: next step in %v, want %v", i, u, *s.until)
			}
		}
	}
}

func TestRoomPlanner(t *testing.T) {
	const (
		silence = 15 * time.Minute
		delay   = 30 * time.Second
	)
	p := DefaultRoomPolicy()
	noPing, noRejoin, noCreate := p, p, p
	noPing.SelfPing, noRejoin.Rejoin, noCreate.CreateInstant = false, false, false
	nothing := planned(stepNone, "", -1, 0)
	joined := []planStep{
		{op: opWant, plan: nothing},
		{op: opEvent, ev: mucwatch.EventRoomJoined, plan: planned(stepPing, ReasonSilence, silence, 0), until: dur(silence)},
	}
	for name, tc := range map[string]struct {
		policy RoomPolicy
		steps  []planStep
	}{
		"a joined room is self-pinged after Silence, and a joined verdict plans the next": {p, append(joined,
			planStep{at: silence - time.Second, op: opDue, until: dur(time.Second)},
			planStep{at: silence, op: opDue, want: []roomTask{pingTask(ReasonSilence)}, plan: &plannedState{next: stepPing, reason: ReasonSilence, due: -1, busy: true}, until: dur(time.Hour)},
			planStep{at: silence + time.Second, op: opPinged, v: mucwatch.VerdictJoined, plan: planned(stepPing, ReasonSilence, 2*silence+time.Second, 0)},
		)},
		"traffic since the plan postpones the silence self-ping": {p, append(joined,
			planStep{at: silence, op: opDue, heard: dur(10 * time.Minute), plan: planned(stepPing, ReasonSilence, 10*time.Minute+silence, 0)},
			planStep{at: 10*time.Minute + silence, op: opDue, heard: dur(10 * time.Minute), want: []roomTask{pingTask(ReasonSilence)}},
		)},
		"traffic from before the last fifth of Silence does not postpone it": {p, append(joined,
			planStep{at: silence, op: opDue, heard: dur(silence / 5), want: []roomTask{pingTask(ReasonSilence)}},
		)},
		"a self-ping saying we are out plans an immediate rejoin, without history": {p, append(joined,
			planStep{at: silence, op: opDue, want: []roomTask{pingTask(ReasonSilence)}},
			planStep{at: silence, op: opPinged, v: mucwatch.VerdictNotJoined, plan: planned(stepRejoin, ReasonNotJoined, silence, 0)},
			planStep{at: silence, op: opDue, want: []roomTask{rejoinTask(ReasonNotJoined, 1)}, plan: &plannedState{next: stepRejoin, reason: ReasonNotJoined, due: -1}},
			planStep{at: silence + time.Second, op: opEvent, ev: mucwatch.EventRoomJoined, plan: planned(stepPing, ReasonSilence, 2*silence+time.Second, 0)},
		)},
		"undecided self-pings back off from RejoinDelay, doubling up to Silence": {p, append(joined,
			planStep{at: silence, op: opDue, want: []roomTask{pingTask(ReasonSilence)}},
			planStep{at: silence, op: opPinged, v: mucwatch.VerdictUndecided, plan: planned(stepPing, ReasonRetry, silence+delay, 1)},
			planStep{at: silence + delay, op: opDue, want: []roomTask{pingTask(ReasonRetry)}},
			planStep{at: silence + delay, op: opPinged, v: mucwatch.VerdictUndecided, plan: planned(stepPing, ReasonRetry, silence+3*delay, 2)},
			planStep{at: silence + 3*delay, op: opDue, want: []roomTask{pingTask(ReasonRetry)}},
			planStep{at: silence + 3*delay, op: opPinged, v: mucwatch.VerdictJoined, plan: planned(stepPing, ReasonSilence, 2*silence+3*delay, 0)},
		)},
		"a self-ping in flight is not started again": {p, append(joined,
			planStep{at: silence, op: opDue, want: []roomTask{pingTask(ReasonSilence)}},
			planStep{at: 2 * silence, op: opDue},
			planStep{at: 2 * silence, op: opBounced, plan: &plannedState{next: stepPing, reason: ReasonSilence, due: -1, busy: true}},
		)},
		"a resumed stream rejoins nothing: a joined room keeps its silence self-ping": {p, append(joined,
			planStep{at: time.Minute, op: opDown, plan: planned(stepPing, ReasonSilence, -1, 0)},
			planStep{at: 2 * time.Minute, op: opResumed, state: mucwatch.StateJoined, plan: planned(stepPing, ReasonSilence, 2*time.Minute+silence, 0)},
			planStep{at: 2 * time.Minute, op: opDue},
		)},
		"a resumed stream leaves a stale room to its self-ping": {p, append(joined,
			planStep{at: time.Minute, op: opDown},
			planStep{at: 2 * time.Minute, op: opResumed, state: mucwatch.StateStale, plan: planned(stepPing, ReasonSilence, 2*time.Minute+silence, 0)},
		)},
		"a resumed stream waits for the answer to a join in flight": {p, []planStep{
			{op: opWant, plan: nothing},
			{op: opDown},
			{at: time.Minute, op: opResumed, state: mucwatch.StateJoining, plan: nothing},
			{at: time.Minute, op: opDue},
		}},
		"a resumed stream rejoins a room the model no longer holds, after RejoinDelay": {p, append(joined,
			planStep{at: time.Minute, op: opDown},
			planStep{at: 2 * time.Minute, op: opResumed, plan: planned(stepRejoin, ReasonRemoved, 2*time.Minute+delay, 0)},
			planStep{at: 2*time.Minute + delay, op: opDue, want: []roomTask{rejoinTask(ReasonRemoved, 1)}},
		)},
		"a bounce plans a self-ping at once": {p, append(joined,
			planStep{at: time.Minute, op: opBounced, plan: planned(stepPing, ReasonBounce, time.Minute, 0), until: dur(0)},
			planStep{at: time.Minute, op: opDue, want: []roomTask{pingTask(ReasonBounce)}},
		)},
		"a bounce does not displace a planned rejoin": {p, append(joined,
			planStep{op: opEvent, ev: mucwatch.EventRoomDropped, plan: planned(stepRejoin, ReasonRemoved, delay, 0)},
			planStep{op: opBounced, plan: planned(stepRejoin, ReasonRemoved, delay, 0)},
		)},
		"a restore by the annotator alone plans a self-ping; a fresh presence does not": {p, append(joined,
			planStep{at: time.Minute, op: opEvent, ev: mucwatch.EventRoomRestored, plan: planned(stepPing, ReasonSilence, silence, 0)},
			planStep{at: time.Minute, op: opEvent, ev: mucwatch.EventRoomRestored, resent: true, plan: planned(stepPing, ReasonRestored, time.Minute, 0)},
		)},
		"a technical removal plans a rejoin after RejoinDelay": {p, append(joined,
			planStep{op: opEvent, ev: mucwatch.EventRoomDropped, plan: planned(stepRejoin, ReasonRemoved, delay, 0), until: dur(delay)},
			planStep{at: delay, op: opDue, want: []roomTask{rejoinTask(ReasonRemoved, 1)}},
		)},
		"failed rejoins back off, and MaxAttempts failures give up": {func() RoomPolicy { q := p; q.MaxAttempts = 3; return q }(), append(joined,
			planStep{op: opEvent, ev: mucwatch.EventRoomDropped},
			planStep{at: delay, op: opDue, want: []roomTask{rejoinTask(ReasonRemoved, 1)}},
			planStep{at: delay, op: opEvent, ev: mucwatch.EventRoomJoinFailed, err: errRefuse, plan: planned(stepRejoin, ReasonRetry, 2*delay, 1)},
			planStep{at: 2 * delay, op: opDue, want: []roomTask{rejoinTask(ReasonRetry, 2)}},
			planStep{at: 2 * delay, op: opEvent, ev: mucwatch.EventRoomJoinFailed, err: errRefuse, plan: planned(stepRejoin, ReasonRetry, 4*delay, 2)},
			planStep{at: 4 * delay, op: opDue, want: []roomTask{rejoinTask(ReasonRetry, 3)}},
			planStep{at: 4 * delay, op: opEvent, ev: mucwatch.EventRoomJoinFailed, err: errRefuse,
				want: []roomTask{{step: stepGiveUp, room: planRoom, attempt: 3, err: errRefuse}}, gone: true},
		)},
		"the application's own failed join is its business": {p, []planStep{
			{op: opWant},
			{op: opEvent, ev: mucwatch.EventRoomJoinFailed, err: errRefuse, plan: nothing},
		}},
		"a kick, a destruction or a leave forgets the room": {p, append(joined,
			planStep{op: opEvent, ev: mucwatch.EventRoomKicked, gone: true},
			planStep{op: opWant},
			planStep{op: opEvent, ev: mucwatch.EventRoomDestroyed, gone: true},
			planStep{op: opWant},
			planStep{op: opEvent, ev: mucwatch.EventRoomLeft, gone: true},
			planStep{op: opEvent, ev: mucwatch.EventRoomJoined, gone: true},
		)},
		"a room we created is configured at once": {p, []planStep{
			{op: opWant},
			{op: opEvent, ev: mucwatch.EventRoomCreated, want: []roomTask{{step: stepConfigure, room: planRoom}}},
		}},
		"CreateInstant off: a room we created is left as the service made it": {noCreate, []planStep{
			{op: opWant},
			{op: opEvent, ev: mucwatch.EventRoomCreated},
		}},
		"nothing starts while our stream is down; it coming back rejoins every room once": {p, append(joined,
			planStep{at: time.Minute, op: opDown, plan: &plannedState{next: stepPing, reason: ReasonSilence, due: -1}, until: dur(time.Hour)},
			planStep{at: silence, op: opDue},
			planStep{at: 20 * time.Minute, op: opUp, plan: planned(stepRejoin, ReasonReconnect, 20*time.Minute, 0), until: dur(0)},
			planStep{at: 20 * time.Minute, op: opDue, want: []roomTask{rejoinTask(ReasonReconnect, 1)}},
		)},
		"a ping in flight when the stream drops is forgotten": {p, append(joined,
			planStep{at: silence, op: opDue, want: []roomTask{pingTask(ReasonSilence)}},
			planStep{at: silence, op: opDown, plan: &plannedState{next: stepPing, reason: ReasonSilence, due: -1}},
		)},
		"a created room is not configured while the stream is down": {p, []planStep{
			{op: opWant},
			{op: opDown},
			{op: opEvent, ev: mucwatch.EventRoomCreated},
		}},
		"SelfPing off: no self-ping is ever planned": {noPing, append([]planStep{{op: opWant, plan: nothing}},
			planStep{op: opEvent, ev: mucwatch.EventRoomJoined, plan: nothing, until: dur(time.Hour)},
			planStep{op: opBounced, plan: nothing},
			planStep{op: opEvent, ev: mucwatch.EventRoomRestored, resent: true, plan: nothing},
		)},
		"Rejoin off: neither a removal nor a reconnect rejoins": {noRejoin, append([]planStep{{op: opWant, plan: nothing}},
			planStep{op: opEvent, ev: mucwatch.EventRoomDropped, plan: nothing},
			planStep{op: opDown},
			planStep{op: opUp, plan: nothing},
		)},
		"a forgotten room's verdict and bounce change nothing": {p, []planStep{
			{op: opForget, gone: true},
			{op: opPinged, v: mucwatch.VerdictNotJoined, gone: true},
			{op: opBounced, gone: true},
			{op: opEvent, ev: mucwatch.EventRoomJoined, gone: true},
		}},
	} {
		t.Run(name, func(t *testing.T) { runPlan(t, tc.policy, tc.steps) })
	}
}

// TestRoomPlannerHistory checks that a rejoin never asks for the history
// that the first join asked for.
func TestRoomPlannerHistory(t *testing.T) {
	pl := newRoomPlanner(DefaultRoomPolicy())
	pl.streamUp(planT0)
	pl.want(planOcc, joinParams{password: "secret", history: 20})
	pl.event(&mucwatch.Event{Kind: mucwatch.EventRoomDropped, Room: planRoom}, planT0)
	tasks := pl.due(planT0.Add(time.Hour), func(string) (time.Time, bool) { return time.Time{}, false })
	if len(tasks) != 1 || tasks[0].params != (joinParams{password: "secret"}) {
		t.Fatalf("tasks %+v, want one rejoin with the password and no history", tasks)
	}
	if r := pl.rooms[planRoom.String()]; r.params.history != 20 {
		t.Errorf("the planned room's history is now %d, want the 20 the application asked for kept", r.params.history)
	}
}

func TestRoomPlannerBackoff(t *testing.T) {
	p := DefaultRoomPolicy()
	p.RejoinDelay, p.Silence = 100*time.Millisecond, 10*time.Second
	pl := newRoomPlanner(p)
	pl.jitter = func(d time.Duration) time.Duration { return d }
	var got []string
	for n := 1; n <= 6; n++ {
		got = append(got, pl.backoff(n).String())
	}
	// A second at least, doubling, at most Silence.
	if want := "[1s 2s 4s 8s 10s 10s]"; fmt.Sprint(got) != want {
		t.Errorf("backoff %v, want %s", got, want)
	}
}

func TestJitterBounds(t *testing.T) {
	if jitter(0) != 0 || jitter(-time.Second) != 0 {
		t.Error("jitter of a non-positive duration is not 0")
	}
	for range 1000 {
		if d := jitter(10 * time.Second); d < 8*time.Second || d > 12*time.Second {
			t.Fatalf("jitter(10s) = %v, outside [8s, 12s]", d)
		}
	}
}
