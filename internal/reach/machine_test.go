package reach

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// op is one input of a scripted test.
type op uint8

const (
	opGained op = iota
	opLost
	opTick
	opResult // the verdict v of the last check sent to d
	opStale  // a verdict for a check that is no longer in flight (seq given)
	opSuspect
	opHeard
	opDown
	opUp
	opBounced
)

// step feeds one input at time t0+at and checks the actions it returned,
// and then, when state is set, d's status.
type step struct {
	at    time.Duration
	op    op
	d     string
	v     Verdict
	seq   uint64 // opStale
	want  []Action
	state *Status // nil: not checked; &Status{} with gone: not tracked
	gone  bool    // d must not be tracked
}

func st(s State, next time.Duration, failures int) *Status {
	return &Status{State: s, Next: t0.Add(next), Failures: failures}
}

func check(d string, seq uint64) Action { return Action{Kind: ActCheck, Domain: d, Seq: seq} }
func mark(d string) Action              { return Action{Kind: ActMark, Domain: d} }
func clearVerify(d string) []Action {
	return []Action{{Kind: ActClear, Domain: d}, {Kind: ActVerify, Domain: d}}
}

const (
	iv = time.Minute      // Interval in the scripts
	to = 10 * time.Second // Timeout, and MinGap
)

func run(t *testing.T, cfg Config, steps []step) {
	t.Helper()
	m := New(cfg)
	m.StreamUp(t0)
	last := map[string]uint64{} // the Seq of the last check per domain
	for i, s := range steps {
		now := t0.Add(s.at)
		var got []Action
		switch s.op {
		case opGained:
			m.Gained(s.d, now)
		case opLost:
			m.Lost(s.d)
		case opTick:
			got = m.Tick(now)
		case opResult:
			got = m.Result(s.d, last[s.d], s.v, now)
		case opStale:
			got = m.Result(s.d, s.seq, s.v, now)
		case opSuspect:
			m.Suspect(s.d, now)
		case opHeard:
			m.Heard(s.d, now)
		case opDown:
			m.StreamDown()
		case opUp:
			m.StreamUp(now)
		case opBounced:
			got = m.Bounced(s.d, now)
		}
		for _, a := range got {
			if a.Kind == ActCheck {
				last[a.Domain] = a.Seq
			}
		}
		if !slices.Equal(got, s.want) {
			t.Fatalf("step %d (op %d %s at %v): actions %v, want %v", i, s.op, s.d, s.at, got, s.want)
		}
		status, ok := m.Status(s.d)
		switch {
		case s.gone && ok:
			t.Fatalf("step %d: %s tracked (%+v), want forgotten", i, s.d, status)
		case s.state != nil && !ok:
			t.Fatalf("step %d: %s not tracked", i, s.d)
		case s.state != nil && status != *s.state:
			t.Fatalf("step %d: %s is %+v, want %+v", i, s.d, status, *s.state)
		}
	}
}

func cfg() Config { return Config{Interval: iv, Timeout: to} }

func TestTransitions(t *testing.T) {
	tests := map[string][]step{
		"first check is due at once without jitter, and a result keeps it reachable": {
			{op: opGained, d: "a.example", state: st(StateReachable, 0, 0)},
			{op: opTick, want: []Action{check("a.example", 1)}, d: "a.example", state: st(StateChecking, to, 0)},
			{at: time.Second, op: opResult, d: "a.example", v: Reachable, state: st(StateReachable, time.Second+iv, 0)},
			{at: time.Second + iv - 1, op: opTick},
			{at: time.Second + iv, op: opTick, want: []Action{check("a.example", 2)}},
		},
		"unreachable marks once, backs off doubling up to 4 intervals, and reachable clears and verifies": {
			{op: opGained, d: "b.example"},
			{op: opTick, want: []Action{check("b.example", 1)}},
			{at: 1 * time.Second, op: opResult, d: "b.example", v: Unreachable, want: []Action{mark("b.example")}, state: st(StateBackoff, time.Second+iv, 1)},
			{at: time.Second + iv, op: opTick, want: []Action{check("b.example", 2)}, d: "b.example", state: st(StateUnreachable, time.Second+iv+to, 1)},
			{at: 2*time.Second + iv, op: opResult, d: "b.example", v: Unreachable, state: st(StateBackoff, 2*time.Second+3*iv, 2)},
			{at: 2*time.Second + 3*iv, op: opTick, want: []Action{check("b.example", 3)}},
			{at: 2*time.Second + 3*iv, op: opResult, d: "b.example", v: Unreachable, state: st(StateBackoff, 2*time.Second+7*iv, 3)},
			{at: 2*time.Second + 7*iv, op: opTick, want: []Action{check("b.example", 4)}},
			// Capped: 8 intervals would be next, 4 it is.
			{at: 2*time.Second + 7*iv, op: opResult, d: "b.example", v: Unreachable, state: st(StateBackoff, 2*time.Second+11*iv, 4)},
			{at: 2*time.Second + 11*iv, op: opTick, want: []Action{check("b.example", 5)}},
			{at: 3*time.Second + 11*iv, op: opResult, d: "b.example", v: Reachable, want: clearVerify("b.example"), state: st(StateReachable, 3*time.Second+12*iv, 0)},
		},
		"no answer within the timeout is unreachable, and the late answer is ignored": {
			{op: opGained, d: "c.example"},
			{op: opTick, want: []Action{check("c.example", 1)}},
			{at: to - 1, op: opTick, d: "c.example", state: st(StateChecking, to, 0)},
			{at: to, op: opTick, want: []Action{mark("c.example")}, d: "c.example", state: st(StateBackoff, to+iv, 1)},
			{at: to + 1, op: opResult, d: "c.example", v: Reachable, state: st(StateBackoff, to+iv, 1)},
			{at: to + iv, op: opTick, want: []Action{check("c.example", 2)}},
			{at: 2*to + iv, op: opTick, d: "c.example", state: st(StateBackoff, 2*to+3*iv, 2)},
		},
		"undecided changes nothing but the time of the next check": {
			{op: opGained, d: "d.example"},
			{op: opTick, want: []Action{check("d.example", 1)}},
			{op: opResult, d: "d.example", v: Undecided, state: st(StateReachable, iv, 0)},
			{at: iv, op: opTick, want: []Action{check("d.example", 2)}},
			{at: iv, op: opResult, d: "d.example", v: Unreachable, want: []Action{mark("d.example")}},
			{at: 2 * iv, op: opTick, want: []Action{check("d.example", 3)}},
			{at: 2 * iv, op: opResult, d: "d.example", v: Undecided, state: st(StateBackoff, 3*iv, 1)},
		},
		"a suspicion brings the check forward, MinGap after the last one": {
			{op: opGained, d: "e.example"},
			{op: opTick, want: []Action{check("e.example", 1)}},
			// In flight: nothing to bring forward.
			{op: opSuspect, d: "e.example", state: st(StateChecking, to, 0)},
			{at: time.Second, op: opResult, d: "e.example", v: Reachable, state: st(StateReachable, time.Second+iv, 0)},
			{at: 2 * time.Second, op: opSuspect, d: "e.example", state: st(StateReachable, to, 0)},
			{at: to - 1, op: opTick},
			{at: to, op: opTick, want: []Action{check("e.example", 2)}},
			{at: to, op: opResult, d: "e.example", v: Reachable},
			// Long after the last check: at once.
			{at: to + iv/2, op: opSuspect, d: "e.example", state: st(StateReachable, to+iv/2, 0)},
			{at: to + iv/2, op: opTick, want: []Action{check("e.example", 3)}},
		},
		"a suspicion does not hurry a marked domain, a presence from it does": {
			{op: opGained, d: "f.example"},
			{op: opTick, want: []Action{check("f.example", 1)}},
			{op: opResult, d: "f.example", v: Unreachable, want: []Action{mark("f.example")}},
			{at: time.Second, op: opSuspect, d: "f.example", state: st(StateBackoff, iv, 1)},
			{at: 2 * time.Second, op: opHeard, d: "f.example", state: st(StateBackoff, to, 1)},
			{at: to, op: opTick, want: []Action{check("f.example", 2)}},
			{at: to, op: opResult, d: "f.example", v: Reachable, want: clearVerify("f.example")},
			// Reachable: a presence hurries nothing.
			{at: to + 1, op: opHeard, d: "f.example", state: st(StateReachable, to+iv, 0)},
		},
		"a bounce marks at once and brings the check forward; the check decides": {
			{op: opGained, d: "m.example"},
			{op: opTick, want: []Action{check("m.example", 1)}},
			{at: time.Second, op: opResult, d: "m.example", v: Reachable, state: st(StateReachable, time.Second+iv, 0)},
			// The last check went at 0: the next comes MinGap after it.
			{at: 2 * time.Second, op: opBounced, d: "m.example", want: []Action{mark("m.example")}, state: st(StateBackoff, to, 0)},
			// Marked already: a second bounce changes nothing.
			{at: 3 * time.Second, op: opBounced, d: "m.example", state: st(StateBackoff, to, 0)},
			{at: to - 1, op: opTick},
			{at: to, op: opTick, want: []Action{check("m.example", 2)}},
			{at: to, op: opResult, d: "m.example", v: Reachable, want: clearVerify("m.example"), state: st(StateReachable, to+iv, 0)},
			// The check proved the bounce wrong: for BounceDistrust (4
			// intervals) a bounce only brings the check forward, and the
			// check marks.
			{at: to + iv/2, op: opBounced, d: "m.example", state: st(StateReachable, to+iv/2, 0)},
			{at: to + iv/2, op: opTick, want: []Action{check("m.example", 3)}},
			{at: to + iv/2, op: opResult, d: "m.example", v: Unreachable, want: []Action{mark("m.example")}, state: st(StateBackoff, to+iv/2+iv, 1)},
			// A check confirmed the outage; its end starts no distrust.
			{at: to + iv/2 + iv, op: opTick, want: []Action{check("m.example", 4)}},
			{at: to + iv/2 + iv, op: opResult, d: "m.example", v: Reachable, want: clearVerify("m.example")},
			// Past BounceDistrust after the refuted bounce, bounces mark again.
			{at: to + 4*iv, op: opBounced, d: "m.example", want: []Action{mark("m.example")}},
		},
		"a forged bounce marks once; repeated, it only brings checks forward": {
			{op: opGained, d: "p.example"},
			{op: opTick, want: []Action{check("p.example", 1)}},
			{op: opResult, d: "p.example", v: Reachable},
			{at: time.Second, op: opBounced, d: "p.example", want: []Action{mark("p.example")}},
			{at: to, op: opTick, want: []Action{check("p.example", 2)}},
			{at: to, op: opResult, d: "p.example", v: Reachable, want: clearVerify("p.example")},
			{at: to + time.Second, op: opBounced, d: "p.example", state: st(StateReachable, 2*to, 0)},
			{at: 2 * to, op: opTick, want: []Action{check("p.example", 3)}},
			{at: 2 * to, op: opResult, d: "p.example", v: Reachable, state: st(StateReachable, 2*to+iv, 0)},
			{at: 2*to + time.Second, op: opBounced, d: "p.example", state: st(StateReachable, 3*to, 0)},
		},
		"a bounce during a check marks, and the check in flight decides": {
			{op: opGained, d: "n.example"},
			{op: opTick, want: []Action{check("n.example", 1)}},
			{op: opBounced, d: "n.example", want: []Action{mark("n.example")}, state: st(StateUnreachable, to, 0)},
			{at: time.Second, op: opResult, d: "n.example", v: Reachable, want: clearVerify("n.example"), state: st(StateReachable, time.Second+iv, 0)},
			// That check was sent before the bounce: it cannot prove the
			// bounce wrong, so no distrust follows, and a new bounce marks.
			{at: 2 * time.Second, op: opBounced, d: "n.example", want: []Action{mark("n.example")}},
			// An untracked domain: nothing to mark.
			{op: opBounced, d: "nobody.example", gone: true},
		},
		"a lost domain is forgotten, its answer ignored, and found again from scratch": {
			{op: opGained, d: "g.example"},
			{op: opTick, want: []Action{check("g.example", 1)}},
			{op: opLost, d: "g.example", gone: true},
			{op: opStale, d: "g.example", seq: 1, v: Unreachable, gone: true},
			{op: opSuspect, d: "g.example", gone: true},
			{at: iv, op: opTick},
			{at: iv, op: opGained, d: "g.example", state: st(StateReachable, iv, 0)},
			{at: iv, op: opStale, d: "g.example", seq: 1, v: Unreachable, state: st(StateReachable, iv, 0)},
			{at: iv, op: opTick, want: []Action{check("g.example", 2)}},
			{at: iv, op: opStale, d: "g.example", seq: 0, v: Unreachable, state: st(StateChecking, iv+to, 0)},
		},
		"gaining a domain twice changes nothing, losing an unknown one neither": {
			{op: opGained, d: "h.example"},
			{op: opTick, want: []Action{check("h.example", 1)}},
			{at: time.Second, op: opGained, d: "h.example", state: st(StateChecking, to, 0)},
			{op: opLost, d: "nobody.example", gone: true},
			{op: opGained, d: "", gone: true},
		},
		"no check while our stream is down; checks in flight are forgotten, marks kept": {
			{op: opGained, d: "i.example"},
			{op: opGained, d: "j.example"},
			{op: opTick, want: []Action{check("i.example", 1), check("j.example", 2)}},
			{op: opResult, d: "i.example", v: Unreachable, want: []Action{mark("i.example")}},
			{op: opDown, d: "j.example", state: st(StateReachable, to, 0)},
			{at: iv, op: opStale, d: "j.example", seq: 2, v: Unreachable, state: st(StateReachable, to, 0)},
			{at: 10 * iv, op: opTick},
			{at: 10 * iv, op: opSuspect, d: "j.example"},
			{at: 10 * iv, op: opTick},
			{at: 10 * iv, op: opGained, d: "k.example"},
			{at: 10 * iv, op: opTick},
			// Up again: the marked domain at once, the others within Interval.
			{at: 11 * iv, op: opUp, d: "i.example", state: st(StateBackoff, 11*iv, 1)},
			{at: 11 * iv, op: opTick, want: []Action{check("i.example", 3), check("j.example", 4), check("k.example", 5)}},
			{at: 11 * iv, op: opResult, d: "i.example", v: Reachable, want: clearVerify("i.example")},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) { run(t, cfg(), steps) })
	}
}

func TestRateLimit(t *testing.T) {
	c := cfg()
	c.Rate, c.Burst = 2, 3
	m := New(c)
	m.StreamUp(t0)
	for i := range 10 {
		m.Gained(fmt.Sprintf("d%d.example", i), t0)
	}
	if got := m.Tick(t0); len(got) != 3 {
		t.Fatalf("burst of 3: sent %d checks", len(got))
	}
	if got := m.Tick(t0); len(got) != 0 {
		t.Fatalf("no token left: sent %v", got)
	}
	next, ok := m.Next(t0)
	if want := t0.Add(time.Second / 2); !ok || !next.Equal(want) {
		t.Fatalf("Next = %v %v, want the next token at %v", next, ok, want)
	}
	if got := m.Tick(next); len(got) != 1 {
		t.Fatalf("one token after half a second: sent %v", got)
	}
	// Eleven seconds refill at most Burst tokens; the four checks in flight
	// time out in the same tick, which sends no more than the bucket holds.
	got := m.Tick(t0.Add(11 * time.Second))
	var checks, marks int
	for _, a := range got {
		switch a.Kind {
		case ActCheck:
			checks++
		case ActMark:
			marks++
		}
	}
	if checks != 3 || marks != 4 {
		t.Fatalf("after 11 s: %d checks and %d marks, want 3 and 4 (%v)", checks, marks, got)
	}
}

func TestMaxInFlight(t *testing.T) {
	c := cfg()
	c.MaxInFlight, c.Burst = 2, 100
	m := New(c)
	m.StreamUp(t0)
	for i := range 4 {
		m.Gained(fmt.Sprintf("d%d.example", i), t0)
	}
	got := m.Tick(t0)
	if len(got) != 2 {
		t.Fatalf("sent %v, want 2 checks", got)
	}
	if next, ok := m.Next(t0); !ok || !next.Equal(t0.Add(to)) {
		t.Fatalf("Next = %v %v, want the first timeout", next, ok)
	}
	m.Result(got[0].Domain, got[0].Seq, Reachable, t0)
	if got := m.Tick(t0); len(got) != 1 || got[0].Kind != ActCheck {
		t.Fatalf("one check answered: sent %v, want 1 check", got)
	}
}

func TestNext(t *testing.T) {
	m := New(cfg())
	if _, ok := m.Next(t0); ok {
		t.Fatal("Next with our stream down and no domain: ok")
	}
	m.StreamUp(t0)
	if _, ok := m.Next(t0); ok {
		t.Fatal("Next with no domain: ok")
	}
	m.Gained("a.example", t0.Add(time.Second))
	if next, ok := m.Next(t0); !ok || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("Next = %v %v, want the first check", next, ok)
	}
	m.StreamDown()
	if _, ok := m.Next(t0); ok {
		t.Fatal("Next with our stream down: ok")
	}
}

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter func(time.Duration) time.Duration
		first  time.Duration
		period time.Duration
	}{
		{"largest", func(n time.Duration) time.Duration { return n - 1 }, iv - 1, iv + iv/4 - 1},
		{"half", func(n time.Duration) time.Duration { return n / 2 }, iv / 2, iv + iv/8},
		// A bad source cannot schedule outside the window.
		{"negative", func(time.Duration) time.Duration { return -iv }, 0, iv},
		{"too large", func(n time.Duration) time.Duration { return n }, 0, iv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg()
			c.Jitter = tc.jitter
			m := New(c)
			m.StreamUp(t0)
			m.Gained("a.example", t0)
			if s, _ := m.Status("a.example"); !s.Next.Equal(t0.Add(tc.first)) {
				t.Fatalf("first check at %v, want %v", s.Next.Sub(t0), tc.first)
			}
			acts := m.Tick(t0.Add(tc.first))
			m.Result("a.example", acts[0].Seq, Reachable, t0.Add(tc.first))
			if s, _ := m.Status("a.example"); !s.Next.Equal(t0.Add(tc.first + tc.period)) {
				t.Fatalf("next check %v later, want %v", s.Next.Sub(t0.Add(tc.first)), tc.period)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	m := New(Config{Interval: 5 * time.Second})
	if m.cfg.Timeout != DefaultTimeout || m.cfg.MinGap != 5*time.Second || m.cfg.MaxBackoff != 20*time.Second {
		t.Fatalf("config %+v", m.cfg)
	}
	m = New(Config{Interval: time.Minute, MaxBackoff: time.Second})
	if m.cfg.MaxBackoff != time.Minute {
		t.Fatalf("MaxBackoff %v below Interval", m.cfg.MaxBackoff)
	}
}

func TestNames(t *testing.T) {
	for _, s := range []fmt.Stringer{StateBackoff, State(9), Unreachable, Verdict(9), ActVerify, ActionKind(0)} {
		if s.String() == "" {
			t.Fatalf("%#v has no name", s)
		}
	}
	if StateBackoff.String() != "backoff" || ActionKind(0).String() != "ActionKind(?)" {
		t.Fatal("wrong names")
	}
}
