package reach

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// CheckFunc sends one check to domain on the current session and returns
// its verdict (ClassifyPing); it returns Undecided when there is no session
// or ctx ends first. The Runner's ctx carries the check's timeout.
type CheckFunc func(ctx context.Context, domain string) Verdict

// ApplyFunc carries out ActMark, ActClear and ActVerify. The Runner calls
// it from one goroutine, in the order the Machine decided.
type ApplyFunc func(Action)

// Runner drives a Machine on its own goroutine with the real clock: it
// sends the checks (each on a goroutine of its own, at most MaxInFlight),
// times them out, and hands the other actions to an ApplyFunc. Its methods
// are safe for concurrent use and never block on the network; Close ends
// every goroutine it started.
type Runner struct {
	cfg   Config
	own   string
	check CheckFunc
	apply ApplyFunc

	mu      sync.Mutex
	m       *Machine
	counts  map[string]int // available entries per domain
	pending []Action       // decided, not yet applied
	cancel  context.CancelFunc
	ctx     context.Context // of the current stream; canceled by StreamDown
	closed  bool

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
	wg   sync.WaitGroup // checks in flight
}

// NewRunner starts a Runner for an account whose own server is the domain
// own (never checked). Its stream counts as down until StreamUp. A nil
// cfg.Jitter takes random jitter.
func NewRunner(cfg Config, own string, check CheckFunc, apply ApplyFunc) *Runner {
	if cfg.Jitter == nil {
		cfg.Jitter = func(n time.Duration) time.Duration { return rand.N(n) }
	}
	r := &Runner{
		own:    own,
		check:  check,
		apply:  apply,
		m:      New(cfg),
		counts: make(map[string]int),
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	r.cfg = r.m.cfg
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.cancel() // down until StreamUp
	go r.run()
	return r
}

// poke wakes the goroutine to look at the Machine again.
func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Add counts delta available entries on domain (negative when they go):
// the first one makes the Machine track the domain, the last one's going
// makes it forget it. The account's own domain and "" are ignored.
func (r *Runner) Add(domain string, delta int) {
	if domain == "" || domain == r.own || delta == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.counts[domain]
	after := max(before+delta, 0)
	if after == 0 {
		delete(r.counts, domain)
	} else {
		r.counts[domain] = after
	}
	switch {
	case before == 0 && after > 0:
		r.m.Gained(domain, time.Now())
	case before > 0 && after == 0:
		r.m.Lost(domain)
	default:
		return
	}
	r.poke()
}

// Suspect passes a suspicion about domain to the Machine (Machine.Suspect).
func (r *Runner) Suspect(domain string) {
	r.mu.Lock()
	r.m.Suspect(domain, time.Now())
	r.mu.Unlock()
	r.poke()
}

// Bounced passes a bounce of a stanza the client sent to domain, from our
// own server, to the Machine (Machine.Bounced): its mark is applied on the
// Runner's goroutine like a check's.
func (r *Runner) Bounced(domain string) {
	r.mu.Lock()
	r.pending = append(r.pending, r.m.Bounced(domain, time.Now())...)
	r.mu.Unlock()
	r.poke()
}

// Heard passes news from domain to the Machine (Machine.Heard).
func (r *Runner) Heard(domain string) {
	r.mu.Lock()
	r.m.Heard(domain, time.Now())
	r.mu.Unlock()
	r.poke()
}

// StreamUp tells the Runner that our own stream is up: checks may go.
func (r *Runner) StreamUp() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.cancel()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.m.StreamUp(time.Now())
	r.mu.Unlock()
	r.poke()
}

// StreamDown tells the Runner that our own stream dropped: the checks in
// flight are canceled and their answers ignored, and none is sent until
// StreamUp.
func (r *Runner) StreamDown() {
	r.mu.Lock()
	r.cancel()
	r.m.StreamDown()
	r.mu.Unlock()
	r.poke()
}

// Status returns what the Machine believes of domain.
func (r *Runner) Status(domain string) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Status(domain)
}

// Close stops the Runner and waits for its goroutines.
func (r *Runner) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return
	}
	r.closed = true
	r.cancel()
	r.mu.Unlock()
	close(r.quit)
	<-r.done
}

func (r *Runner) run() {
	defer close(r.done)
	defer r.wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		now := time.Now()
		var checks []Action
		for _, a := range r.m.Tick(now) {
			if a.Kind == ActCheck {
				checks = append(checks, a)
			} else {
				r.pending = append(r.pending, a)
			}
		}
		todo := r.pending
		r.pending = nil
		ctx := r.ctx
		next, ok := r.m.Next(now)
		r.mu.Unlock()
		// What was decided is applied before any new check goes out, so
		// that a check's answer never overtakes the verdict before it.
		for _, a := range todo {
			r.apply(a)
		}
		for _, a := range checks {
			r.wg.Add(1)
			go r.send(ctx, a)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		var tick <-chan time.Time
		if ok {
			timer.Reset(max(time.Until(next), 0))
			tick = timer.C
		}
		select {
		case <-r.quit:
			return
		case <-r.wake:
		case <-tick:
		}
	}
}

// send runs check a and reports its verdict.
func (r *Runner) send(ctx context.Context, a Action) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	v := r.check(ctx, a.Domain)
	cancel()
	if ctx.Err() != nil && v == Undecided {
		// Nobody answered in time: the Machine's own timeout decides, unless
		// our stream dropped, which made it forget the check.
		r.poke()
		return
	}
	r.mu.Lock()
	r.pending = append(r.pending, r.m.Result(a.Domain, a.Seq, v, time.Now())...)
	r.mu.Unlock()
	r.poke()
}
