package e2e_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

// storms is how many times TestReconnectStorm kills our own server: a few,
// for CI. `go run ./internal/faultrun -only storm -n 200` is the full run.
const storms = 5

// Our own server is killed with SIGKILL (no stream close, no unavailable
// presence, the MUC rooms gone) and restarted, again and again. Between two
// kills juliet, on the other domain, changes her status while our server is
// down. After every restart both psakit clients on our server (romeo and
// benvolio) reconnect by themselves and rejoin the room, and romeo's models
// end holding the servers' truth: juliet with the status she last sent,
// benvolio, the room with both occupants, nothing stale, nothing more. The
// goroutines do not grow with the storms, and Close ends them all.
//
// Not parallel: leaktest and the goroutine count would see other tests'
// goroutines.
func TestReconnectStorm(t *testing.T) {
	leaktest.Check(t) // first: its check runs after every other cleanup
	n := shakespeare(t, nil)
	ctx := testContext(t, time.Duration(storms)*45*time.Second)
	mont := n.Server(montague)
	room := "storm@" + conference

	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "<status>storm 0</status>")
	jfull := juliet.JID()
	benvolio := dial(ctx, t, mont, "benvolio", "square", newRecorder())
	bfull := benvolio.JID().String()
	must(t, romeo.Join(ctx, jid.MustParse(room+"/Romeo")))
	must(t, benvolio.Join(ctx, jid.MustParse(room+"/Benvolio")))

	// truth is what the servers hold once everything is back: juliet's
	// last status, benvolio online, both of them in the room. It returns
	// why romeo's models differ, or "".
	truth := func(status string) string {
		if romeo.Session() == nil {
			return "romeo is not connected"
		}
		j, ok := romeo.Roster().Resource(jid.MustParse(jfull))
		if !ok || !j.Fresh() || j.StatusText() != status {
			return fmt.Sprintf("juliet: present=%v %+v, want fresh with status %q", ok, j, status)
		}
		if b, ok := romeo.Roster().Resource(jid.MustParse(bfull)); !ok || !b.Fresh() {
			return fmt.Sprintf("benvolio: present=%v %+v", ok, b)
		}
		st := romeo.Roster().Stats()
		st.Bytes = 0 // what the two resources' records take
		if st != (roster.Stats{Items: 3, Contacts: 3, Resources: 2}) {
			return fmt.Sprintf("roster stats %+v", st)
		}
		for _, nick := range []string{"Romeo", "Benvolio"} {
			if o, ok := romeo.Rooms().Occupant(jid.MustParse(room + "/" + nick)); !ok || o.Marks.Stale() {
				return fmt.Sprintf("occupant %s: present=%v %+v", nick, ok, o)
			}
		}
		if r, ok := romeo.Rooms().Room(jid.MustParse(room)); !ok || r.State != mucwatch.StateJoined || r.Stale {
			return fmt.Sprintf("room: present=%v %+v", ok, r)
		}
		if st := romeo.Rooms().Stats(); st != (mucwatch.Stats{Rooms: 1, Joined: 1, Occupants: 2}) {
			return fmt.Sprintf("rooms stats %+v", st)
		}
		return ""
	}
	settle := func(what, status string) {
		t.Helper()
		var last string
		defer func() {
			if t.Failed() {
				t.Logf("%s: romeo's models still differ from the truth: %s", what, last)
			}
		}()
		rec.until(ctx, t, what, func() bool { last = truth(status); return last == "" })
		// The models hold the truth; a round trip on the new session makes
		// sure nothing the server sent before is still on its way.
		roundTrip(ctx, t, romeo)
		if why := truth(status); why != "" {
			t.Fatalf("%s, after a round trip: %s", what, why)
		}
	}
	settle("before the storms", "storm 0")

	var goroutines int
	for i := 1; i <= storms; i++ {
		mark := rec.mark()
		must(t, mont.Kill())
		rec.waitFrom(ctx, t, mark, "disconnected", connEvent(client.ConnDisconnected))
		status := fmt.Sprintf("storm %d", i)
		// Sent while our server is down: only the probe after the restart
		// can bring it to romeo.
		must(t, juliet.Send("<presence><status>"+status+"</status></presence>"))
		must(t, mont.Restart(ctx))
		back := time.Now()
		rec.waitFrom(ctx, t, mark, "connected again", connEvent(client.ConnConnected))
		settle(fmt.Sprintf("after storm %d", i), status)
		timing(t, fmt.Sprintf("storm %d: restart -> models fresh", i), time.Since(back))
		if i == 1 {
			goroutines = runtime.NumGoroutine()
		}
	}
	if t.Failed() {
		return
	}
	// A goroutine left behind by each reconnect would add storms-1 to the
	// count taken after the first storm; transient ones (timers firing, a
	// self-ping) end: wait for them, bounded by ctx.
	if err := fewerGoroutines(ctx, goroutines+storms/2); err != nil {
		t.Errorf("after %d storms: %v (%d after the first)", storms, err, goroutines)
	}
	t.Logf("%d storms survived; goroutines after the first %d, after the last %d", storms, goroutines, runtime.NumGoroutine())

	// Close ends every goroutine of both clients (leaktest checks at the end).
	must(t, romeo.Close())
	must(t, benvolio.Close())
}

// fewerGoroutines waits until at most n goroutines run, or ctx ends.
func fewerGoroutines(ctx context.Context, n int) error {
	delay := time.Millisecond
	for {
		g := runtime.NumGoroutine()
		if g <= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d goroutines, want at most %d: %w", g, n, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}
