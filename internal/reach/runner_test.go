package reach

import (
	"context"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/leaktest"
)

// fakeServer answers the Runner's checks as the test says: each check
// arrives on calls, and the test sends the verdict on answer, or nothing.
type fakeServer struct {
	calls  chan string
	answer chan Verdict
}

func (f *fakeServer) check(ctx context.Context, domain string) Verdict {
	select {
	case f.calls <- domain:
	case <-ctx.Done():
		return Undecided
	}
	select {
	case v := <-f.answer:
		return v
	case <-ctx.Done():
		return Undecided
	}
}

func newRunner(t *testing.T, cfg Config) (*Runner, *fakeServer, chan Action) {
	t.Helper()
	f := &fakeServer{calls: make(chan string), answer: make(chan Verdict)}
	acts := make(chan Action, 16)
	r := NewRunner(cfg, "capulet.lit", f.check, func(a Action) { acts <- a })
	t.Cleanup(r.Close)
	return r, f, acts
}

func wait[T any](t *testing.T, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("no %s", what)
	}
	panic("unreachable")
}

func TestRunner(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Zero jitter: the first check is due at once.
	r, f, acts := newRunner(t, Config{Interval: time.Hour, Timeout: time.Hour, Jitter: func(time.Duration) time.Duration { return 0 }})
	r.Add("capulet.lit", 1) // our own domain: never checked
	r.Add("montague.lit", 2)
	r.StreamUp()
	if d := wait(t, ctx, f.calls, "check"); d != "montague.lit" {
		t.Fatalf("checked %s", d)
	}
	f.answer <- Unreachable
	if a := wait(t, ctx, acts, "mark"); a != (Action{Kind: ActMark, Domain: "montague.lit"}) {
		t.Fatalf("action %v", a)
	}
	// The next check would be an hour later; a stream that comes up again
	// checks a marked domain at once.
	r.StreamDown()
	r.StreamUp()
	if d := wait(t, ctx, f.calls, "check after the reconnect"); d != "montague.lit" {
		t.Fatalf("checked %s", d)
	}
	f.answer <- Reachable
	if a := wait(t, ctx, acts, "clear"); a.Kind != ActClear {
		t.Fatalf("action %v", a)
	}
	if a := wait(t, ctx, acts, "verify"); a.Kind != ActVerify {
		t.Fatalf("action %v", a)
	}
	if s, ok := r.Status("montague.lit"); !ok || s.State != StateReachable {
		t.Fatalf("status %+v %v", s, ok)
	}
	r.Add("montague.lit", -2)
	if _, ok := r.Status("montague.lit"); ok {
		t.Fatal("a domain without entries still tracked")
	}
	if _, ok := r.Status("capulet.lit"); ok {
		t.Fatal("our own domain tracked")
	}
}

// A check nobody answers times out into a mark; Close ends the goroutines
// of checks still waiting.
func TestRunnerTimeout(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, f, acts := newRunner(t, Config{Interval: time.Hour, Timeout: 50 * time.Millisecond, Jitter: func(time.Duration) time.Duration { return 0 }})
	r.Add("montague.lit", 1)
	r.StreamUp()
	wait(t, ctx, f.calls, "check")
	if a := wait(t, ctx, acts, "mark"); a != (Action{Kind: ActMark, Domain: "montague.lit"}) {
		t.Fatalf("action %v", a)
	}
	r.Add("verona.lit", 1)
	wait(t, ctx, f.calls, "second check")
	r.Close()
	r.Close()
}

// While our stream is down nothing is checked, and a check in flight is
// canceled without a verdict.
func TestRunnerStreamDown(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, f, acts := newRunner(t, Config{Interval: time.Hour, Timeout: time.Hour, Jitter: func(time.Duration) time.Duration { return 0 }})
	r.Add("montague.lit", 1)
	r.StreamUp()
	wait(t, ctx, f.calls, "check")
	r.StreamDown()
	r.Suspect("montague.lit")
	r.Heard("montague.lit")
	// The check was canceled: its goroutine is gone once Close returns, and
	// nothing was decided.
	r.Close()
	select {
	case a := <-acts:
		t.Fatalf("action %v while our stream was down", a)
	default:
	}
	if s, _ := r.Status("montague.lit"); s.State != StateReachable {
		t.Fatalf("state %v", s.State)
	}
	r.StreamUp() // after Close: nothing starts
}
