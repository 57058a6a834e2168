// Package mucwatch is a staleness-aware model of the multi-user chat rooms
// (XEP-0045) an account is in: whether we are still in each room, who else
// is there, and which of that may be stale (XEP-0310), why, and by whose
// word.
//
// The Model is a functional core: it does no I/O and starts no goroutines.
// The client tells it what it is about to send (Joining, Rejoining, Leaving),
// feeds it every presence from a room it tracks (ApplyPresence; Tracks says
// which presences those are) and what its XEP-0410 self-pings found
// (RecordSelfPing); the model returns events. Applying a presence costs O(1)
// whatever the size of the room. Reads (lookups and iter.Seq snapshots) are
// safe from any goroutine while another applies updates.
//
//	m := mucwatch.New(account)
//	dispatch(m.Joining(jid.MustParse("orchard@chats.shakespeare.lit/Romeo")))
//	// ... send the join presence; then, for every presence received,
//	// decoded once with package presence:
//	evs, ok := m.ApplyPresence(&p)
//	if !ok {
//		evs = rosterModel.ApplyPresence(&p) // not from a room we track
//	}
//	dispatch(evs)
//
// A room's life:
//
//	Joining ────────▶ joining ──110──▶ joined ◀──────▶ stale
//	Rejoining ──────▶ rejoining ─110─▶ joined          (derived, see below)
//	Leaving ────────▶ left ──110 unavailable──▶ gone (room-left)
//	110 unavailable: 301 307 321 322 ▶ kicked (room-kicked)
//	                 332 333 ────────▶ kicked (room-dropped: rejoin later)
//	                 <destroy/> ─────▶ destroyed
//	error while joining/rejoining ───▶ gone (room-join-failed, *JoinError)
//
// Our own presence is recognized by status code 110 only, never by nick, and
// our current nick is the one of the last 110 presence (status 210: the
// service chose it). Nick changes (303) rename an occupant in place.
// Occupants are keyed by their exact occupant JID, as the service keys them:
// a service may hold "Romeo" and "ROMEO" as two occupants, and while we are
// Romeo, ROMEO is someone else. A presence without status 110 never changes
// our own occupant: one from our own occupant JID is refused (EventRejected,
// ErrNotSelf), and so is another occupant's nick change into our nick.
//
// Occupants carry staleness marks under the same rules as roster resources
// (written out in the roster package documentation, section Staleness): the
// MUC service marks an occupant whose server it cannot reach, the account's
// own server marks occupants when its link to the MUC service is down.
// Only what concerns our own place makes a room stale:
//   - our own occupant carries any mark (when our server's link to the
//     service is down, it marks ours with the others), or
//   - our own stream dropped (MarkDisconnected: psa.LocalDisconnected on the
//     room), until the rejoin completes, or
//   - a self-ping said we are no longer in the room (RecordSelfPing NotJoined).
//
// A mark on another occupant makes that occupant stale, never the room,
// whoever set it: the client cannot tell a server's mark from one an
// occupant put in her own presence. EventRoomStale and EventRoomRestored
// report when the room's staleness flips (a joined room is then in
// StateStale); an EventRoomRestored after a re-send is when a client
// self-pings (XEP-0410).
//
// After a reconnect the client rejoins every room. The service sends the
// occupant list before our own presence (XEP-0045 §7.2.3), so when the 110
// presence completes the rejoin, occupants that were not refreshed since
// Rejoining are removed with EventOccupantUnavailable events.
//
// Rejections and limits are reported as EventRejected events, never as
// panics or silently corrupted state. A room holds at most
// WithMaxOccupants occupants besides our own (100,000) and
// WithMaxRoomBytes of their data (32 MiB, Room.Bytes); presence past either
// is rejected with ErrLimit.
//
// # Where each behaviour lives
//
// mucwatch.go: the Model, its rooms and occupants, and the reads. apply.go:
// room presence (joins, nick changes, removals, errors). intents.go: what
// the client is about to do (Joining, Rejoining, Leaving, Forget), self-ping
// verdicts (RecordSelfPing), MarkDisconnected and Sweep; selfping.go: how a
// self-ping's answer is classified (SelfPingVerdict). remote.go: the marks
// of unreachable services. counts.go: the counts kept in step with each
// change; budget.go: the byte budget of a room. events.go and errors.go:
// the events and errors; view.go: the read-only View package client hands
// out.
package mucwatch

import (
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/stale"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// Default limits. Each can be changed with an Option.
const (
	// DefaultMaxRooms is the number of rooms tracked at once.
	DefaultMaxRooms = 1024
	// DefaultMaxOccupants is the number of occupants tracked per room, our
	// own not counted.
	DefaultMaxOccupants = 100_000
)

// RoomState is where we stand in a room.
type RoomState uint8

// The states of a room. The zero value, StateNone, means not tracked.
const (
	StateNone RoomState = iota
	// StateJoining: Joining was called; we wait for our own presence (110).
	StateJoining
	// StateJoined: we are in the room and nothing says it may be stale.
	StateJoined
	// StateStale: we were in the room, but it is stale (see Room.Stale): the
	// occupant list, or our very presence in the room, may be out of date.
	StateStale
	// StateRejoining: Rejoining was called; we wait for our own presence.
	StateRejoining
	// StateLeft: Leaving was called; the room is forgotten when the service
	// confirms (or Forget is called).
	StateLeft
	// StateKicked: the service removed us (Room.Removal says why).
	StateKicked
	// StateDestroyed: the room was destroyed (Room.Removal.Venue is where to
	// go instead, if anywhere).
	StateDestroyed
)

var stateNames = [...]string{
	StateNone:      "none",
	StateJoining:   "joining",
	StateJoined:    "joined",
	StateStale:     "stale",
	StateRejoining: "rejoining",
	StateLeft:      "left",
	StateKicked:    "kicked",
	StateDestroyed: "destroyed",
}

// String returns the lower-case name of the state, and "unknown" for a
// value that is no state.
func (s RoomState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// in reports whether we are in the room or trying to be: the states in which
// the room follows presence.
func (s RoomState) in() bool {
	return s == StateJoining || s == StateJoined || s == StateStale || s == StateRejoining
}

// Verdict is the outcome of a XEP-0410 self-ping, as the client classified
// it.
type Verdict uint8

// The verdicts. The zero value, VerdictNone, means no verdict was recorded
// since the last join.
const (
	VerdictNone Verdict = iota
	// VerdictJoined: the room answered; we are still in it.
	VerdictJoined
	// VerdictNotJoined: the room says we are not in it: rejoin.
	VerdictNotJoined
	// VerdictUndecided: no answer that tells (a timeout, a remote server
	// error): retry later. It changes nothing.
	VerdictUndecided
)

var verdictNames = [...]string{"none", "joined", "not-joined", "undecided"}

// String returns the lower-case name of the verdict, and "unknown" for a
// value that is no verdict.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// Removal is what the service said when it took an occupant, or us, out of a
// room.
type Removal struct {
	Codes  []int   // the status codes, e.g. 307 kicked, 301 banned, 332 shutdown
	Actor  string  // the nick of the moderator who did it, when given
	Reason string  // the reason given, or the reason of the destruction
	Venue  jid.JID // the alternate room of a destroyed room, zero when none
}

// Has reports whether the status codes include code.
func (r Removal) Has(code int) bool {
	for _, c := range r.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// Technical reports a removal for technical reasons, a system shutdown (332)
// or a technical problem (333): the room was not refused, rejoin after a
// delay.
func (r Removal) Technical() bool { return r.Has(332) || r.Has(333) }

// Occupant is one occupant of a room.
type Occupant struct {
	JID         jid.JID // the occupant JID, room@service/nick
	Nick        string  // its nick, as the service last sent it
	RealJID     jid.JID // the occupant's real JID, when the room shows it
	Role        string  // moderator, participant, visitor; "" when unknown
	Affiliation string  // owner, admin, member, outcast, none; "" when unknown
	OccupantID  string  // the XEP-0421 stable occupant id, "" when none
	presence.State
	// Marks say why the occupant's presence may be stale; none means fresh.
	Marks psa.Marks
	// Self reports our own occupant (the last presence with status 110).
	Self bool
	// Updated is when the last presence for this occupant was applied.
	Updated time.Time
}

// Fresh reports whether the occupant carries no mark.
func (o Occupant) Fresh() bool { return !o.Marks.Stale() }

// Room is a room the model tracks.
type Room struct {
	JID   jid.JID // the room's bare JID
	State RoomState
	// Nick is our nick: the one we asked for until the service confirms one
	// with our own presence, then the one it confirmed.
	Nick string
	// Stale reports that the room may be stale (see the package
	// documentation). It is never set for a room we are not in.
	Stale bool
	// Marks are the room's own marks: psa.LocalDisconnected from
	// MarkDisconnected until the rejoin completes.
	Marks psa.Marks
	// Verdict is the last self-ping verdict recorded since the last join.
	Verdict Verdict
	// Created reports that the last join created the room (status 201).
	Created bool
	// Removal says why we are out of the room, in StateKicked and
	// StateDestroyed.
	Removal Removal
	// Occupants and StaleOccupants count the occupants, our own included,
	// and those that carry a mark.
	Occupants      int
	StaleOccupants int
	// Bytes estimates the memory the occupants' data takes
	// (WithMaxRoomBytes).
	Bytes int
	// Updated is when the last presence from the room was applied: a client
	// self-pings after a long silence.
	Updated time.Time
}

// Joined reports whether we are in the room, stale or not.
func (r Room) Joined() bool { return r.State == StateJoined || r.State == StateStale }

// Stats counts what the model holds.
type Stats struct {
	Rooms          int // rooms tracked, in any state
	Joined         int // rooms in StateJoined or StateStale
	StaleRooms     int // rooms whose Stale flag is set
	Occupants      int // occupants in all rooms
	StaleOccupants int // occupants that carry at least one mark
}

// Option configures a Model. Only this package's With functions make
// one, so that an option cannot reach the model it configures.
type Option struct{ apply func(*Model) }

// WithMaxRooms sets how many rooms are tracked at once (DefaultMaxRooms).
// Joining for one more is rejected with ErrLimit.
func WithMaxRooms(n int) Option { return Option{func(m *Model) { m.maxRooms = max(n, 1) }} }

// WithMaxOccupants sets how many occupants are tracked per room
// (DefaultMaxOccupants). Presence from a new occupant past the limit is
// rejected with ErrLimit and the occupant is not tracked; known occupants
// still update. Our own presence (status 110) is always accepted, so a room
// holds at most n occupants plus our own.
func WithMaxOccupants(n int) Option { return Option{func(m *Model) { m.maxOccupants = max(n, 0) }} }

// WithClock sets the clock used for Since and Updated (time.Now).
func WithClock(now func() time.Time) Option { return Option{func(m *Model) { m.now = now }} }

// Model is a staleness-aware model of an account's rooms. Its zero value is
// not usable: call New.
type Model struct {
	// Immutable after New.
	maxRooms     int
	maxOccupants int
	maxRoomBytes int
	now          func() time.Time
	account      jid.JID
	bare         jid.JID // the annotator of psa.LocalDisconnected marks

	mu    sync.RWMutex
	rooms map[string]*room // by bare JID
	last  *room            // the room of the last presence: bursts come from one room
	stats Stats
	// tracked is len(rooms), readable without the lock: most presence is
	// not from a room, and with no room at all it is turned away at once.
	tracked atomic.Int32
	res     stale.Result // scratch space for presence, reused under mu
}

// room is a Model's entry for one room. Its fields change only under the
// Model's write lock; snapshots copy them.
type room struct {
	jid     jid.JID
	state   RoomState
	nick    string
	marks   psa.Marks
	verdict Verdict
	created bool
	removal Removal
	updated time.Time
	stale   bool

	// occupants are keyed by nick exactly as the occupant JID spells it:
	// the service keys them by occupant JID, and may hold "Romeo" and
	// "ROMEO" as two occupants.
	occupants map[string]*occ
	self      *occ // our own occupant, nil when unknown
	staleOcc  int  // occupants with a mark
	bytes     int  // the occupants' estimated memory (budget.go)
	// epoch counts Joining and Rejoining calls; an occupant refreshed since the
	// last one carries it.
	epoch uint64
	// leavePending: we sent unavailable and the service has not confirmed.
	leavePending bool
}

// occ is a room's entry for one occupant.
type occ struct {
	Occupant // keyed by its Nick
	epoch    uint64
	bytes    int // the estimate of its memory (budget.go)
}

func (r *room) snapshot() Room {
	return Room{
		JID:            r.jid,
		State:          r.state,
		Nick:           r.nick,
		Stale:          r.stale,
		Marks:          r.marks,
		Verdict:        r.verdict,
		Created:        r.created,
		Removal:        r.removal,
		Occupants:      len(r.occupants),
		StaleOccupants: r.staleOcc,
		Bytes:          r.bytes,
		Updated:        r.updated,
	}
}

// New returns an empty model for account, the user's JID, bare or full.
func New(account jid.JID, opts ...Option) *Model {
	m := &Model{
		maxRooms:     DefaultMaxRooms,
		maxOccupants: DefaultMaxOccupants,
		maxRoomBytes: DefaultMaxRoomBytes,
		now:          time.Now,
		account:      account,
		bare:         account.Bare(),
		rooms:        make(map[string]*room),
	}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(m)
		}
	}
	return m
}

// Account returns the account JID the model was made for.
func (m *Model) Account() jid.JID { return m.account }

// Stats returns counts of what the model holds.
func (m *Model) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.stats
}

// Tracks reports whether a presence from from belongs to a room the model
// tracks, in any state: the client gives those to ApplyPresence, and the
// others to the roster.
func (m *Model) Tracks(from jid.JID) bool {
	if from.Localpart() == "" {
		return false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.rooms[from.Bare().String()]
	return ok
}

// Room returns a snapshot of the room with j's bare JID.
func (m *Model) Room(j jid.JID) (Room, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.rooms[j.Bare().String()]
	if r == nil {
		return Room{}, false
	}
	return r.snapshot(), true
}

// Rooms returns a snapshot of every room, in no particular order. The
// snapshot is taken when iteration starts; the model may change while the
// loop runs.
func (m *Model) Rooms() iter.Seq[Room] {
	return func(yield func(Room) bool) {
		m.mu.RLock()
		all := make([]Room, 0, len(m.rooms))
		for _, r := range m.rooms {
			all = append(all, r.snapshot())
		}
		m.mu.RUnlock()
		for _, r := range all {
			if !yield(r) {
				return
			}
		}
	}
}

// Occupant returns a snapshot of the occupant with occupant JID j
// (room@service/nick). Nicks are compared exactly, as the service compares
// occupant JIDs: "ROMEO" is not "Romeo".
func (m *Model) Occupant(j jid.JID) (Occupant, bool) {
	nick := j.Resourcepart()
	if nick == "" {
		return Occupant{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.rooms[j.Bare().String()]
	if r == nil {
		return Occupant{}, false
	}
	if o := r.occupants[nick]; o != nil {
		return o.Occupant, true
	}
	return Occupant{}, false
}

// Self returns a snapshot of our own occupant in the room with j's bare
// JID, when the model knows it.
func (m *Model) Self(j jid.JID) (Occupant, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.rooms[j.Bare().String()]
	if r == nil || r.self == nil {
		return Occupant{}, false
	}
	return r.self.Occupant, true
}

// Occupants returns a snapshot of the occupants of the room with j's bare
// JID, ours included, in no particular order; nothing when the room is not
// tracked. The snapshot is taken when iteration starts.
func (m *Model) Occupants(j jid.JID) iter.Seq[Occupant] {
	return func(yield func(Occupant) bool) {
		m.mu.RLock()
		r := m.rooms[j.Bare().String()]
		if r == nil {
			m.mu.RUnlock()
			return
		}
		all := make([]Occupant, 0, len(r.occupants))
		for _, o := range r.occupants {
			all = append(all, o.Occupant)
		}
		m.mu.RUnlock()
		for _, o := range all {
			if !yield(o) {
				return
			}
		}
	}
}
