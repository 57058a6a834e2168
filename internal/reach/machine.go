// Package reach decides, without any help from the servers, which remote
// domains a client can no longer reach: a pure state machine fed with what
// the client sees (domains gaining and losing available entries, the
// answers to its XEP-0199 pings, error bounces, its own stream going up and
// down, the time) and returning what to do (send a check, mark a domain's
// entries, clear them, verify them). It does no I/O and reads no clock: the
// caller passes the time to every call, so that its tests run on a fake
// clock.
//
// # The states of a domain
//
// A domain the client has available entries on (contacts' resources, or
// rooms it sits in on a MUC service) is in one of four states:
//
//   - Reachable: not marked; the next periodic check is due at Next.
//   - Checking: not marked; a check is in flight.
//   - Unreachable: marked; a check is in flight to see whether it is back.
//   - Backoff: marked; waiting until Next to check again.
//
// A domain with nothing available is not tracked and never checked.
//
// # Cost and manners
//
//   - At most one check of a domain is in flight. Periodic checks come at
//     least Interval apart (plus up to a quarter of it as jitter, so that
//     the checks of many domains, and of many clients after a server
//     restart, do not come in step). The first check of a newly available
//     domain comes within its first Interval, spread by jitter, so that a
//     login with contacts on hundreds of domains does not send hundreds of
//     pings at once.
//   - A suspicion (a bounce from our own server, a room's undecided
//     self-ping, a presence from a domain that is marked) brings the next
//     check forward, but never closer than MinGap to the previous one. A
//     bounce that answers a stanza the client sent there marks the domain
//     at once as well (Bounced).
//   - A global token bucket (Rate per second, Burst) and MaxInFlight bound
//     the checks of all domains together.
//   - While a domain stays unreachable, the wait between checks doubles
//     from Interval up to MaxBackoff.
//   - No check is sent while the client's own stream is down; checks in
//     flight when it drops are forgotten, their answers ignored.
package reach

import (
	"container/heap"
	"time"
)

// Defaults for Config. They are chosen against what servers do:
//
//   - Timeout: a ping through two servers that share a working link comes
//     back in well under a second, and a new server-to-server link takes a
//     few seconds (DNS, TCP, TLS, dialback). Prosody waits up to 20 s per
//     address and up to s2s_timeout (90 s) for an unanswered connect before
//     it bounces; ejabberd up to 10 s × 2 for DNS, 10 s to connect and 30 s
//     to negotiate. 30 s is well under those, so that a link that was
//     blackholed (an existing s2s connection whose packets vanish, which the
//     servers notice only after minutes) is noticed within Interval + 30 s.
//   - Interval: 5 minutes. One ping per domain every five minutes is a few
//     hundred bytes a minute even for a client with contacts on a hundred
//     domains, and an outage is noticed in about five minutes instead of
//     never (Prosody 0.12 notices a silently broken link after its
//     14-minute read timeout at best).
//   - MaxBackoff: four intervals. ejabberd bounces instantly for 1–300 s
//     after a failed s2s attempt (s2s_max_retry_delay), so checks closer
//     than that learn nothing new; much longer would leave contacts stale
//     long after their server is back.
//   - Rate 4/s, Burst 8, MaxInFlight 16: a check is one IQ of about 150
//     bytes each way, so the bucket keeps the client far below the usual
//     c2s rate limits, and a few in flight cannot hold many resources.
const (
	DefaultInterval    = 5 * time.Minute
	DefaultTimeout     = 30 * time.Second
	DefaultRate        = 4
	DefaultBurst       = 8
	DefaultMaxInFlight = 16
)

// Config configures a Machine. Zero fields take the defaults.
type Config struct {
	// Interval is the least time between two periodic checks of a domain.
	Interval time.Duration
	// Timeout is how long a check may go unanswered before the domain
	// counts as unreachable.
	Timeout time.Duration
	// MinGap is the least time between two checks of a domain when a
	// suspicion brings one forward: the smaller of Interval and Timeout by
	// default.
	MinGap time.Duration
	// MaxBackoff caps the wait between checks of an unreachable domain:
	// 4 × Interval by default, never less than Interval.
	MaxBackoff time.Duration
	// Rate is how many checks per second all domains together may send,
	// Burst how many at once.
	Rate  float64
	Burst int
	// MaxInFlight is how many checks may be unanswered at once.
	MaxInFlight int
	// BounceDistrust is how long, after a check sent after a bounce found
	// the domain it marked reachable, further bounces about that domain only
	// bring its check forward instead of marking it: 4 × Interval by
	// default. A bounce is believed at once because our own server sends
	// it when it cannot reach the domain, but one that comes "from" a
	// remote JID can also be forged by that JID (a contact who answers our
	// message with remote-server-not-found marks her whole domain until the
	// next check); so a domain's bounces are believed again only once they
	// have not been proven wrong for this long.
	BounceDistrust time.Duration
	// Jitter returns a random duration in [0, n); n is always positive.
	// The default returns 0, which tests use; a client passes a random
	// source.
	Jitter func(n time.Duration) time.Duration
}

// State is what the Machine believes of a domain.
type State uint8

// The states.
const (
	// StateReachable: not marked, no check in flight.
	StateReachable State = iota
	// StateChecking: not marked, a check in flight.
	StateChecking
	// StateUnreachable: marked, a check in flight.
	StateUnreachable
	// StateBackoff: marked, waiting for the next check.
	StateBackoff
)

var stateNames = [...]string{"reachable", "checking", "unreachable", "backoff"}

// String returns the lower-case name of the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(?)"
}

// Verdict is what a check found.
type Verdict uint8

// The verdicts (see Classify).
const (
	// Undecided: the answer says nothing about the domain (our own stream
	// dropped, an answer from someone else, an error relayed by a third
	// server).
	Undecided Verdict = iota
	// Reachable: the domain answered, with a result or an error of its own.
	Reachable
	// Unreachable: our own server could not reach the domain, or nobody
	// answered within the timeout.
	Unreachable
)

var verdictNames = [...]string{"undecided", "reachable", "unreachable"}

// String returns the lower-case name of the verdict.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "Verdict(?)"
}

// ActionKind says what the caller has to do.
type ActionKind uint8

// The actions.
const (
	// ActCheck: send a check (a XEP-0199 ping) to Domain and report its
	// answer with Result and the action's Seq.
	ActCheck ActionKind = iota + 1
	// ActMark: Domain is unreachable; mark its entries.
	ActMark
	// ActClear: Domain is reachable again; remove the marks ActMark set.
	ActClear
	// ActVerify: verify Domain's entries with the restore policy, since the
	// presence they show is from before the outage. Always follows ActClear.
	ActVerify
)

var actionNames = [...]string{ActCheck: "check", ActMark: "mark", ActClear: "clear", ActVerify: "verify"}

// String returns the lower-case name of the action.
func (k ActionKind) String() string {
	if k > 0 && int(k) < len(actionNames) {
		return actionNames[k]
	}
	return "ActionKind(?)"
}

// Action is one thing the caller has to do.
type Action struct {
	Kind   ActionKind
	Domain string
	// Seq identifies a check (ActCheck only); Result ignores an answer whose
	// Seq is not the one in flight.
	Seq uint64
}

// Status is a snapshot of one domain.
type Status struct {
	State State
	// Next is when the next check is due (StateReachable, StateBackoff), or
	// when the check in flight times out (StateChecking, StateUnreachable).
	Next time.Time
	// Failures counts the checks that found the domain unreachable in a
	// row.
	Failures int
}

// domain is the Machine's entry for one domain.
type domain struct {
	name     string
	marked   bool
	inFlight uint64    // the Seq of the check in flight, 0 for none
	due      time.Time // next check, or the timeout of the one in flight
	lastSent time.Time // when the last check was sent; zero for never
	failures int
	index    int // in the heap
	// bounceMarked: the mark came from a bounce that no check confirmed
	// yet, made when bounceSeq was the last check sent; distrustUntil: a
	// check sent after it proved such a mark wrong, so bounces only bring
	// checks forward until then.
	bounceMarked  bool
	bounceSeq     uint64
	distrustUntil time.Time
}

// Machine tracks the reachability of remote domains. Its zero value is not
// usable: call New. A Machine is not safe for concurrent use.
type Machine struct {
	cfg      Config
	domains  map[string]*domain
	waiting  queue // domains without a check in flight, by due time
	flying   queue // domains with a check in flight, by timeout
	up       bool  // our own stream is up
	seq      uint64
	inFlight int // len(flying)
	tokens   float64
	refilled time.Time
}

// New returns a Machine whose own stream is down: call StreamUp once it is
// up.
func New(cfg Config) *Machine {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MinGap <= 0 {
		cfg.MinGap = min(cfg.Interval, cfg.Timeout)
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 4 * cfg.Interval
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.Interval)
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.BounceDistrust <= 0 {
		cfg.BounceDistrust = 4 * cfg.Interval
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(time.Duration) time.Duration { return 0 }
	}
	return &Machine{cfg: cfg, domains: make(map[string]*domain), tokens: float64(cfg.Burst)}
}

// jitter returns a duration in [0, n), bounded whatever Config.Jitter
// returns.
func (m *Machine) jitter(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	j := m.cfg.Jitter(n)
	if j < 0 || j >= n {
		return 0
	}
	return j
}

// Status returns what the Machine believes of domain d; ok is false when d
// is not tracked.
func (m *Machine) Status(d string) (s Status, ok bool) {
	dm := m.domains[d]
	if dm == nil {
		return Status{}, false
	}
	return Status{State: dm.state(), Next: dm.due, Failures: dm.failures}, true
}

// Len returns how many domains are tracked.
func (m *Machine) Len() int { return len(m.domains) }

func (dm *domain) state() State {
	switch {
	case dm.marked && dm.inFlight != 0:
		return StateUnreachable
	case dm.marked:
		return StateBackoff
	case dm.inFlight != 0:
		return StateChecking
	}
	return StateReachable
}

// Gained tells the Machine that domain d has available entries now (the
// first of them came, or a room on it was joined). A domain it already
// tracks is left as it is. The first check is due within Interval.
func (m *Machine) Gained(d string, now time.Time) {
	if d == "" || m.domains[d] != nil {
		return
	}
	dm := &domain{name: d, due: now.Add(m.jitter(m.cfg.Interval))}
	m.domains[d] = dm
	heap.Push(&m.waiting, dm)
}

// Lost tells the Machine that domain d has no available entries left. It is
// forgotten: a check in flight is ignored when it answers, and its marks
// went with its entries.
func (m *Machine) Lost(d string) {
	dm := m.domains[d]
	if dm == nil {
		return
	}
	if dm.inFlight != 0 {
		m.inFlight--
		heap.Remove(&m.flying, dm.index)
	} else {
		heap.Remove(&m.waiting, dm.index)
	}
	delete(m.domains, d)
}

// Suspect tells the Machine that something points at domain d being
// unreachable: a bounce from our own server, a room's undecided self-ping.
// Unless d is already marked or being checked, its next check is brought
// forward to now, or to MinGap after the previous one.
func (m *Machine) Suspect(d string, now time.Time) {
	dm := m.domains[d]
	if dm == nil || dm.marked || dm.inFlight != 0 {
		return
	}
	m.bringForward(dm, now)
}

// Bounced tells the Machine that our own server bounced a stanza the client
// sent to domain d with an error saying that it cannot reach d, in answer
// to that very stanza (its id, from the JID it went to: see
// ClassifyBounce). That is what a check answered the same way would say:
// d is marked at once (ActMark), unless it already is, and its next check
// is brought forward as for Suspect, so that a bounce about a link that has
// come back since clears the mark soon. A check in flight goes on and
// decides; the count of failures is left as it was, so a check that fails
// next waits one Interval. Within BounceDistrust of a check, sent after a
// bounce, that proved the bounce's mark wrong, a bounce only brings the
// check forward.
func (m *Machine) Bounced(d string, now time.Time) []Action {
	dm := m.domains[d]
	if dm == nil || dm.marked {
		return nil
	}
	if now.Before(dm.distrustUntil) {
		if dm.inFlight == 0 {
			m.bringForward(dm, now)
		}
		return nil
	}
	dm.marked, dm.bounceMarked, dm.bounceSeq = true, true, m.seq
	if dm.inFlight == 0 {
		m.bringForward(dm, now)
	}
	return []Action{{Kind: ActMark, Domain: d}}
}

// Heard tells the Machine that a stanza from domain d arrived: a new
// presence from one of its users or occupants. When d is marked, that
// suggests its link is back, and its next check is brought forward as for
// Suspect.
func (m *Machine) Heard(d string, now time.Time) {
	dm := m.domains[d]
	if dm == nil || !dm.marked || dm.inFlight != 0 {
		return
	}
	m.bringForward(dm, now)
}

func (m *Machine) bringForward(dm *domain, now time.Time) {
	at := now
	if !dm.lastSent.IsZero() {
		at = later(at, dm.lastSent.Add(m.cfg.MinGap))
	}
	if at.Before(dm.due) {
		dm.due = at
		heap.Fix(&m.waiting, dm.index)
	}
}

// Result reports the verdict of check seq of domain d. An answer to a check
// that is no longer in flight (it timed out, the domain was lost, our stream
// dropped) is ignored.
func (m *Machine) Result(d string, seq uint64, v Verdict, now time.Time) []Action {
	dm := m.domains[d]
	if dm == nil || seq == 0 || dm.inFlight != seq {
		return nil
	}
	return m.settle(nil, dm, v, now)
}

// settle ends the check in flight of dm with verdict v.
func (m *Machine) settle(acts []Action, dm *domain, v Verdict, now time.Time) []Action {
	// Only a check sent after the bounce can prove it wrong: one in flight
	// before it may have crossed the link just before it broke.
	wasBounce := dm.bounceMarked && dm.inFlight > dm.bounceSeq
	m.land(dm)
	if v != Undecided {
		dm.bounceMarked = false
	}
	switch v {
	case Reachable:
		dm.failures = 0
		if wasBounce {
			dm.distrustUntil = now.Add(m.cfg.BounceDistrust)
		}
		if dm.marked {
			dm.marked = false
			acts = append(acts, Action{Kind: ActClear, Domain: dm.name}, Action{Kind: ActVerify, Domain: dm.name})
		}
		dm.due = now.Add(m.period())
	case Unreachable:
		dm.failures++
		if !dm.marked {
			dm.marked = true
			acts = append(acts, Action{Kind: ActMark, Domain: dm.name})
		}
		dm.due = now.Add(m.backoff(dm.failures))
	default:
		if dm.marked {
			dm.due = now.Add(m.backoff(dm.failures))
		} else {
			dm.due = now.Add(m.period())
		}
	}
	heap.Fix(&m.waiting, dm.index)
	return acts
}

// land moves dm, whose check is in flight, back to the waiting queue.
func (m *Machine) land(dm *domain) {
	heap.Remove(&m.flying, dm.index)
	dm.inFlight = 0
	m.inFlight--
	heap.Push(&m.waiting, dm)
}

// period is the wait before a periodic check: Interval plus up to a
// quarter of it.
func (m *Machine) period() time.Duration {
	return m.cfg.Interval + m.jitter(m.cfg.Interval/4)
}

// backoff is the wait after the n-th failure in a row: Interval doubled
// n-1 times, at most MaxBackoff, plus jitter.
func (m *Machine) backoff(n int) time.Duration {
	b := m.cfg.Interval
	for i := 1; i < n && b < m.cfg.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, m.cfg.MaxBackoff)
	return b + m.jitter(b/4)
}

// StreamDown tells the Machine that our own stream dropped: no check is
// sent until StreamUp, and the checks in flight are forgotten (they count
// as neither success nor failure). Marks stay: the domains are no more
// reachable for it.
func (m *Machine) StreamDown() {
	m.up = false
	for len(m.flying) > 0 {
		m.land(m.flying[0])
	}
}

// StreamUp tells the Machine that our own stream is up at now. Every
// domain's next check is due within Interval (spread by jitter), and at
// once for marked domains, whose entries the reconnect may have refreshed.
func (m *Machine) StreamUp(now time.Time) {
	if m.up {
		return
	}
	m.up = true
	m.refilled = now
	for _, dm := range m.domains {
		if dm.marked {
			dm.due = now.Add(m.jitter(m.cfg.MinGap))
		} else {
			dm.due = now.Add(m.jitter(m.cfg.Interval))
		}
		dm.lastSent = time.Time{}
	}
	heap.Init(&m.waiting)
}

// Tick advances the Machine to now: checks that timed out count as
// unreachable, and due checks are sent as far as the rate limit allows.
func (m *Machine) Tick(now time.Time) []Action {
	if !m.up {
		return nil
	}
	m.refill(now)
	var acts []Action
	for len(m.flying) > 0 && !m.flying[0].due.After(now) {
		acts = m.settle(acts, m.flying[0], Unreachable, now)
	}
	for len(m.waiting) > 0 && !m.waiting[0].due.After(now) {
		if m.tokens < 1 || m.inFlight >= m.cfg.MaxInFlight {
			break
		}
		dm := heap.Pop(&m.waiting).(*domain)
		m.tokens--
		m.seq++
		m.inFlight++
		dm.inFlight = m.seq
		dm.lastSent = now
		dm.due = now.Add(m.cfg.Timeout)
		heap.Push(&m.flying, dm)
		acts = append(acts, Action{Kind: ActCheck, Domain: dm.name, Seq: m.seq})
	}
	return acts
}

// refill adds the tokens earned since the last refill.
func (m *Machine) refill(now time.Time) {
	if el := now.Sub(m.refilled); el > 0 {
		m.tokens = min(float64(m.cfg.Burst), m.tokens+el.Seconds()*m.cfg.Rate)
		m.refilled = now
	}
}

// Next returns when Tick next has something to do; ok is false when
// nothing is ever due (no domain, or our stream is down). When a check is
// due but the rate limit or MaxInFlight holds it back, Next is when a token
// comes, or when the first check in flight times out.
func (m *Machine) Next(now time.Time) (t time.Time, ok bool) {
	if !m.up {
		return time.Time{}, false
	}
	var timeout, due time.Time
	if len(m.flying) > 0 {
		timeout = m.flying[0].due
	}
	if len(m.waiting) > 0 && m.inFlight < m.cfg.MaxInFlight {
		due = m.waiting[0].due
		if m.refill(now); m.tokens < 1 {
			wait := time.Duration((1 - m.tokens) / m.cfg.Rate * float64(time.Second))
			due = later(due, now.Add(max(wait, time.Millisecond)))
		}
	}
	switch {
	case timeout.IsZero() && due.IsZero():
		return time.Time{}, false
	case timeout.IsZero():
		return due, true
	case due.IsZero() || timeout.Before(due):
		return timeout, true
	}
	return due, true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// queue is a min-heap of domains by due time.
type queue []*domain

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	// Equal times go by name, so that the order of checks is reproducible.
	if c := q[i].due.Compare(q[j].due); c != 0 {
		return c < 0
	}
	return q[i].name < q[j].name
}
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) {
	dm := x.(*domain)
	dm.index = len(*q)
	*q = append(*q, dm)
}
func (q *queue) Pop() any {
	old := *q
	dm := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return dm
}
