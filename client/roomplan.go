package client

import (
	"math/rand/v2"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
)

// This file is the room policy's decisions: what to do for a room after
// each event, result and change of our stream, and when. It sends nothing
// and reads no clock (every call takes the time), so that its table tests
// run on a fake clock; rooms.go carries its decisions out.

// RoomPolicy says what the client does by itself to stay in its rooms. Get
// the defaults with DefaultRoomPolicy, change what you need, and pass it to
// WithRoomPolicy. Whatever it does is reported through OnRoomAction, and
// whatever it finds through OnRoom, so an application that turns an action
// off can alert its user instead.
type RoomPolicy struct {
	// SelfPing enables XEP-0410 self-pings: when a mark that concerns the
	// room or our own occupant is cleared by its annotator, when the room
	// answers a message of ours with an error (it may have dropped us
	// without a word; ReasonBounce), before a groupchat message is sent to
	// it while it is stale (ReasonSend; see Client.SendMessage), and after
	// Silence without presence or messages from the room. Never while our
	// own stream is down.
	SelfPing bool
	// Silence is how long a joined room may stay silent before a self-ping,
	// jittered by up to a fifth either way so that rooms do not ping at once.
	Silence time.Duration
	// PingTimeout bounds each self-ping; no answer in time is undecided.
	PingTimeout time.Duration
	// Rejoin enables rejoining a room: after our own reconnect (once per
	// room), when a self-ping says we are no longer in it, and after a
	// technical removal (status 332 or 333).
	Rejoin bool
	// RejoinDelay is the wait before rejoining after a technical removal
	// (jittered), and the first step of the exponential backoff between
	// failed rejoins and between undecided self-pings.
	RejoinDelay time.Duration
	// MaxAttempts is how many rejoins of a room may fail in a row before the
	// client gives up on it (ActionGaveUp).
	MaxAttempts int
	// CreateInstant accepts the default configuration of a room that our join
	// created (status 201), which unlocks it for others (XEP-0045 §10.1.2).
	CreateInstant bool
}

// Defaults of the room policy.
const (
	DefaultSilence     = 15 * time.Minute
	DefaultPingTimeout = 30 * time.Second
	DefaultRejoinDelay = 30 * time.Second
	DefaultMaxAttempts = 5
)

// DefaultRoomPolicy returns the policy a client has unless told otherwise:
// everything on, with the default durations.
func DefaultRoomPolicy() RoomPolicy {
	return RoomPolicy{
		SelfPing:      true,
		Silence:       DefaultSilence,
		PingTimeout:   DefaultPingTimeout,
		Rejoin:        true,
		RejoinDelay:   DefaultRejoinDelay,
		MaxAttempts:   DefaultMaxAttempts,
		CreateInstant: true,
	}
}

//go:generate go run golang.org/x/tools/cmd/stringer@v0.51.0 -type=RoomActionKind -linecomment

// RoomActionKind says what the room policy did.
type RoomActionKind uint8

// The room policy's actions.
const (
	// ActionSelfPing: a XEP-0410 self-ping was answered (or not): Verdict.
	ActionSelfPing RoomActionKind = iota + 1 // self-ping
	// ActionRejoin: the join presence was sent again (attempt Attempt).
	ActionRejoin // rejoin
	// ActionGaveUp: MaxAttempts rejoins failed in a row; Err is the last
	// failure. The room is no longer tracked.
	ActionGaveUp // gave-up
	// ActionConfigured: the default configuration of a room we created was
	// accepted (Err says if that failed).
	ActionConfigured // configured
)

// RoomReason says why the room policy acted. Its value is the word logs
// and tests print.
type RoomReason string

// The reasons of a self-ping or a rejoin.
const (
	// ReasonReconnect: our own stream came back; every room is rejoined
	// once.
	ReasonReconnect RoomReason = "reconnect"
	// ReasonRestored: the annotator of a mark on the room or on our own
	// occupant said its link is back; the service may have dropped us
	// meanwhile.
	ReasonRestored RoomReason = "restored"
	// ReasonSilence: nothing was heard from the room for Silence.
	ReasonSilence RoomReason = "silence"
	// ReasonBounce: the room answered a message of ours with an error.
	ReasonBounce RoomReason = "bounce"
	// ReasonSend: a groupchat message was about to go to a room held stale.
	ReasonSend RoomReason = "send"
	// ReasonNotJoined: a self-ping said we are not in the room.
	ReasonNotJoined RoomReason = "not-joined"
	// ReasonRemoved: the service removed us for a technical reason (status
	// 332 or 333).
	ReasonRemoved RoomReason = "removed"
	// ReasonRetry: the previous rejoin failed, or the previous self-ping
	// did not tell; this is the next attempt, after a backoff.
	ReasonRetry RoomReason = "retry"
)

// RoomAction is something the room policy did.
type RoomAction struct {
	Kind    RoomActionKind
	Room    jid.JID
	Reason  RoomReason       // ActionSelfPing and ActionRejoin: why
	Verdict mucwatch.Verdict // ActionSelfPing
	Attempt int              // ActionRejoin, from 1
	// Occupant is our own occupant JID that a self-ping was sent to, or that
	// a rejoin asked for: room@service/nick with the nick the service last
	// confirmed with status 110.
	Occupant jid.JID
	Err      error // the error answer or failure, if any
}

// roomStep is what the planner has the runner do for a room.
type roomStep uint8

const (
	stepNone      roomStep = iota
	stepPing               // send a self-ping
	stepRejoin             // send the join presence again
	stepConfigure          // accept the default configuration of a room we created
	stepGiveUp             // report ActionGaveUp; the room was forgotten
)

// roomTask is a step the runner is to carry out now.
type roomTask struct {
	step     roomStep
	room     jid.JID
	occupant jid.JID // as the application asked for; the runner prefers the nick the service confirmed
	params   joinParams
	reason   RoomReason
	attempt  int   // stepRejoin: from 1; stepGiveUp: the failures in a row
	err      error // stepGiveUp: the last failure
}

// plannedRoom is what the planner knows of a room we want to be in.
type plannedRoom struct {
	room     jid.JID
	occupant jid.JID // as asked for
	params   joinParams
	due      time.Time // when the next step runs; zero: none planned
	next     roomStep  // that step: stepPing or stepRejoin
	reason   RoomReason
	busy     bool // a self-ping is in flight
	rejoined bool // the join in flight is ours, not the application's
	attempts int  // failed rejoins, or undecided pings, in a row
}

// roomPlanner decides the room policy's steps. It is not safe for
// concurrent use: the runner serialises the calls.
type roomPlanner struct {
	policy RoomPolicy
	// jitter moves a duration by up to a fifth either way; tests fix it.
	jitter func(time.Duration) time.Duration
	rooms  map[string]*plannedRoom // by bare JID: the rooms we want to be in
	up     bool                    // our stream is up: steps may start
}

func newRoomPlanner(p RoomPolicy) *roomPlanner {
	return &roomPlanner{policy: p, jitter: jitter, rooms: make(map[string]*plannedRoom)}
}

// jitter returns d moved by up to a fifth either way.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/5 + rand.N(2*d/5+1)
}

// want records a room the application joins, forgetting what was planned
// for it.
func (pl *roomPlanner) want(occupant jid.JID, p joinParams) {
	room := occupant.Bare()
	pl.rooms[room.String()] = &plannedRoom{room: room, occupant: occupant, params: p}
}

// forget stops caring about a room.
func (pl *roomPlanner) forget(room string) { delete(pl.rooms, room) }

// has reports whether the planner cares about room.
func (pl *roomPlanner) has(room string) bool { return pl.rooms[room] != nil }

// streamUp plans a rejoin of every room, at once: they were all left when
// the previous stream ended.
func (pl *roomPlanner) streamUp(now time.Time) {
	pl.up = true
	for _, r := range pl.rooms {
		r.attempts = 0
		pl.schedule(r, stepRejoin, ReasonReconnect, now, 0)
	}
}

// streamResumed plans after a resumed stream (XEP-0198): the services
// never saw us leave, so no room is rejoined. A room we are in goes back
// to its silence self-ping; one whose join or rejoin was in flight waits
// for the answer the server re-sends; one that dropped us while we were
// away is rejoined as after a removal. state tells what the model holds
// of a room once the server's replay is applied.
func (pl *roomPlanner) streamResumed(now time.Time, state func(jid.JID) (mucwatch.Room, bool)) {
	pl.up = true
	for _, r := range pl.rooms {
		room, ok := state(r.room)
		switch {
		case ok && room.Joined():
			pl.schedule(r, stepPing, ReasonSilence, now, pl.jitter(pl.policy.Silence))
		case ok && (room.State == mucwatch.StateJoining || room.State == mucwatch.StateRejoining):
		default:
			pl.schedule(r, stepRejoin, ReasonRemoved, now, pl.jitter(pl.policy.RejoinDelay))
		}
	}
}

// streamDown drops every plan: nothing is sent while disconnected, and
// the answers of the self-pings in flight will not come.
func (pl *roomPlanner) streamDown() {
	pl.up = false
	for _, r := range pl.rooms {
		r.due, r.busy = time.Time{}, false
	}
}

// schedule plans step for r at now+d, unless the policy has that step off.
func (pl *roomPlanner) schedule(r *plannedRoom, step roomStep, reason RoomReason, now time.Time, d time.Duration) {
	if step == stepPing && !pl.policy.SelfPing || step == stepRejoin && !pl.policy.Rejoin {
		return
	}
	r.next, r.reason, r.due = step, reason, now.Add(d)
}

// backoff returns the wait before retry number n (from 1): RejoinDelay (at
// least a second) doubled n-1 times, at most Silence, jittered.
func (pl *roomPlanner) backoff(n int) time.Duration {
	d := max(pl.policy.RejoinDelay, time.Second)
	for i := 1; i < n && d < pl.policy.Silence; i++ {
		d *= 2
	}
	if pl.policy.Silence > 0 {
		d = min(d, pl.policy.Silence)
	}
	return pl.jitter(d)
}

// bounced plans a self-ping of a room that answered a message of ours with
// an error: perhaps it dropped us without a word. A planned rejoin, or a
// self-ping in flight, goes first.
func (pl *roomPlanner) bounced(room string, now time.Time) {
	if r := pl.rooms[room]; r != nil && !r.busy && (r.due.IsZero() || r.next == stepPing) {
		pl.schedule(r, stepPing, ReasonBounce, now, 0)
	}
}

// event updates the plan after a room event of the model and returns the
// steps to take at once: stepConfigure after our join created the room,
// stepGiveUp after the last failed rejoin.
func (pl *roomPlanner) event(e *mucwatch.Event, now time.Time) []roomTask {
	r := pl.rooms[e.Room.String()]
	if r == nil {
		return nil
	}
	switch e.Kind {
	case mucwatch.EventRoomJoined:
		r.attempts, r.rejoined = 0, false
		pl.schedule(r, stepPing, ReasonSilence, now, pl.jitter(pl.policy.Silence))
	case mucwatch.EventRoomCreated:
		if pl.policy.CreateInstant && pl.up {
			return []roomTask{{step: stepConfigure, room: r.room}}
		}
	case mucwatch.EventRoomRestored:
		// A mark on the room or on our own occupant cleared (a mark on
		// another occupant never flips the room). If its annotator only says
		// its link is back, the service may have dropped us meanwhile: ask.
		if e.Resent {
			pl.schedule(r, stepPing, ReasonRestored, now, 0)
		}
	case mucwatch.EventRoomDropped:
		pl.schedule(r, stepRejoin, ReasonRemoved, now, pl.jitter(pl.policy.RejoinDelay))
	case mucwatch.EventRoomKicked, mucwatch.EventRoomDestroyed, mucwatch.EventRoomLeft:
		pl.forget(r.room.String())
	case mucwatch.EventRoomJoinFailed:
		if !r.rejoined {
			return nil // the application's own Join: it gets the error
		}
		r.attempts++
		if r.attempts >= pl.policy.MaxAttempts {
			pl.forget(r.room.String())
			return []roomTask{{step: stepGiveUp, room: r.room, attempt: r.attempts, err: e.Err}}
		}
		pl.schedule(r, stepRejoin, ReasonRetry, now, pl.backoff(r.attempts))
	}
	return nil
}

// pinged updates the plan after the verdict of a self-ping of room.
func (pl *roomPlanner) pinged(room string, v mucwatch.Verdict, now time.Time) {
	r := pl.rooms[room]
	if r == nil {
		return
	}
	r.busy = false
	switch v {
	case mucwatch.VerdictJoined:
		r.attempts = 0
		pl.schedule(r, stepPing, ReasonSilence, now, pl.jitter(pl.policy.Silence))
	case mucwatch.VerdictNotJoined:
		pl.schedule(r, stepRejoin, ReasonNotJoined, now, 0)
	case mucwatch.VerdictUndecided:
		r.attempts++
		pl.schedule(r, stepPing, ReasonRetry, now, pl.backoff(r.attempts))
	}
}

// until returns how long from now until the next planned step: at most an
// hour, and an hour while the stream is down.
func (pl *roomPlanner) until(now time.Time) time.Duration {
	next := time.Hour
	if !pl.up {
		return next // nothing runs while disconnected
	}
	for _, r := range pl.rooms {
		if !r.due.IsZero() && !r.busy {
			next = min(next, max(r.due.Sub(now), 0))
		}
	}
	return next
}

// due returns the steps whose time has come, and marks them started.
// heard tells when we last heard from a room (ok false: unknown): traffic
// since a silence self-ping was planned postpones it.
func (pl *roomPlanner) due(now time.Time, heard func(room string) (time.Time, bool)) []roomTask {
	if !pl.up {
		return nil
	}
	var tasks []roomTask
	for key, r := range pl.rooms {
		if r.due.IsZero() || r.busy || r.due.After(now) {
			continue
		}
		if r.next == stepPing && r.reason == ReasonSilence {
			if at, ok := heard(key); ok {
				if quiet := now.Sub(at); quiet < pl.policy.Silence-pl.policy.Silence/5 {
					r.due = at.Add(pl.jitter(pl.policy.Silence))
					continue
				}
			}
		}
		r.due = time.Time{}
		tasks = append(tasks, pl.begin(r))
	}
	return tasks
}

// begin returns r's planned step as a task and records it as started.
func (pl *roomPlanner) begin(r *plannedRoom) roomTask {
	t := roomTask{step: r.next, room: r.room, occupant: r.occupant, reason: r.reason}
	switch r.next {
	case stepPing:
		r.busy = true
	case stepRejoin:
		r.rejoined = true
		t.attempt = r.attempts + 1
		t.params = r.params
		t.params.history = 0 // never history twice
	}
	return t
}
