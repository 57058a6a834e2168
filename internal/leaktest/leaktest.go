// Package leaktest checks that a test leaves no goroutine behind.
//
//	func TestSomething(t *testing.T) {
//		leaktest.Check(t)
//		...
//	}
//
// Check records the goroutines running when it is called; when the test
// ends it waits, up to a deadline, for every goroutine started since to
// exit, and fails the test with their stacks if some do not. Waiting is a
// poll of the goroutine list, not a guess: it returns as soon as the list is
// back to what it was.
package leaktest

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Timeout is how long Check waits for goroutines to exit.
const Timeout = 10 * time.Second

// Check fails t, when it ends, if goroutines started after Check are still
// running after Timeout. Register it before anything that starts
// goroutines, so that its cleanup runs after theirs.
func Check(t testing.TB) {
	t.Helper()
	b := Take()
	t.Cleanup(func() { b.Wait(t) })
}

// Baseline is the set of goroutines that ran at some moment.
type Baseline struct{ ids []string }

// Take records the goroutines running now.
func Take() Baseline { return Baseline{ids: ids(stacks())} }

// Wait waits until no goroutine started after b was taken is running, and
// fails t with their stacks if some still are after Timeout. It polls the
// goroutine list and returns as soon as it is back to b.
func (b Baseline) Wait(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	delay := time.Millisecond
	for {
		leaked := leaked(b.ids)
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("leaktest: %d goroutine(s) still running:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// leaked returns the stacks of the goroutines not in before, leaving out
// the runtime's and the testing package's own.
func leaked(before []string) []string {
	var out []string
	for _, g := range stacks() {
		id := goroutineID(g)
		if slices.Contains(before, id) || ignored(g) {
			continue
		}
		out = append(out, g)
	}
	return out
}

func ignored(stack string) bool {
	for _, s := range []string{
		"testing.(*T).Run", "testing.tRunner", "testing.runTests", "testing.(*M).",
		"runtime.goexit", "os/signal.signal_recv", "runtime.ensureSigM",
		"testing.(*F).", "internal/fuzz.",
	} {
		if strings.Contains(firstFrame(stack), s) {
			return true
		}
	}
	// The goroutine running the check itself.
	return strings.Contains(stack, "leaktest.Baseline.Wait")
}

func firstFrame(stack string) string {
	lines := strings.SplitN(stack, "\n", 3)
	if len(lines) < 2 {
		return stack
	}
	return lines[1]
}

func stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(strings.TrimSpace(string(buf[:n])), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func ids(stacks []string) []string {
	out := make([]string, 0, len(stacks))
	for _, s := range stacks {
		out = append(out, goroutineID(s))
	}
	return out
}

// goroutineID returns the "goroutine N" prefix of a stack.
func goroutineID(stack string) string {
	if i := strings.Index(stack, " ["); i > 0 {
		return stack[:i]
	}
	return stack
}
