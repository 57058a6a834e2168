package prosody_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// 300 sessions with the same caps announce them at once, and answer
// disco#info slowly: more queries than Prosody tracks per module (256) would
// be in flight. Every session still gets annotations: the server asks once
// per ver.
func TestManySessionsSameCaps(t *testing.T) {
	t.Parallel()
	manySessions(t, "many")
}

// The same with 300 different vers: 300 queries, which the server keeps
// below Prosody's limit instead of having the oldest evicted.
func TestManySessionsDifferentCaps(t *testing.T) {
	t.Parallel()
	manySessions(t, "")
}

// guests adds users guest0..guest<n-1> to montague.lit, each a contact of
// benvolio (subscription both), so that no guest gets the presences of all
// the others.
func guests(mont *prosodytest.Spec, n int) {
	mont.Roster["benvolio"] = map[string]string{}
	for i := range n {
		user := fmt.Sprintf("guest%d", i)
		mont.Users[user] = pw
		mont.Roster[user] = map[string]string{"benvolio@" + montague: "both"}
		mont.Roster["benvolio"][user+"@"+montague] = "both"
	}
}

// loginGuests logs in the n guests of guests() as PSA clients (identity
// name: "" gives each its own ver) that hold their disco#info answers until
// hold is closed.
func loginGuests(ctx context.Context, t *testing.T, mont *prosodytest.Server, n int, identity string, hold <-chan struct{}) []*rawclient.Client {
	t.Helper()
	cfg := rawclient.Config{Features: []string{rawclient.NSPSA}, IdentityName: identity, HoldDisco: hold}
	clients := make([]*rawclient.Client, n)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c := cfg
			c.Addr, c.Domain, c.User, c.Password, c.Resource = mont.C2SAddr, montague, fmt.Sprintf("guest%d", i), pw, "r"
			cl, err := rawclient.Dial(ctx, c)
			if err != nil {
				errs <- err
				return
			}
			clients[i] = cl
		}()
	}
	wg.Wait()
	t.Logf("logged in %d sessions in %v", n, time.Since(start))
	close(errs)
	for _, c := range clients {
		if c != nil {
			t.Cleanup(func() { _ = c.Close() })
		}
	}
	for err := range errs {
		t.Fatal(err)
	}
	return clients
}

// announceCaps has every client send its caps, and returns once the server
// processed them all (and sent its disco#info queries).
func announceCaps(ctx context.Context, t *testing.T, clients []*rawclient.Client) {
	t.Helper()
	for _, c := range clients {
		must(t, c.Send("<presence>"+c.CapsElement()+"</presence>"))
	}
	for _, c := range clients {
		must(t, c.Ping(ctx, ""))
	}
}

// manySessions logs in 300 PSA sessions that hold their disco#info answers
// until all announced their caps, and checks that every one gets
// annotations.
func manySessions(t *testing.T, identity string) {
	const sessions = 300
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.PSAOptions["psa_disco_timeout"] = "60"
		guests(mont, sessions)
	})
	ctx := testContext(t, 120*time.Second)
	mont := n.Server(montague)

	benvolio := client(ctx, t, mont, "benvolio", "street", rawclient.Config{StreamManagement: true})
	must(t, benvolio.SendPresence(ctx, ""))

	hold := make(chan struct{})
	clients := loginGuests(ctx, t, mont, sessions, identity, hold)
	announceCaps(ctx, t, clients)
	close(hold)
	// The held disco#info answers are written before these pings.
	for _, c := range clients {
		must(t, c.Ping(ctx, ""))
	}

	must(t, benvolio.Drop())
	off := 0
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, c := range clients {
		if _, err := c.Expect(short, annotated(benvolio.JID(), montague, "connection-paused")); err != nil {
			off++
		}
	}
	if off > 0 {
		t.Fatalf("%d of %d sessions got no annotations", off, sessions)
	}
}

// A reachability ping that Prosody evicts from its 256 tracked requests
// (here by 300 slow disco#info queries that come after it) never reached
// the domain: it is no outage. capulet.lit is frozen while the ping waits,
// so that the ping is still in flight when the queries come, and thawed
// before its timeout: it answers, and romeo never sees an annotation.
func TestEvictedPingIsNoOutage(t *testing.T) {
	t.Parallel()
	const sessions = 300
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.PSAOptions["psa_disco_timeout"] = "60"
		mont.PSAOptions["psa_ping_timeout"] = "60"
		guests(mont, sessions)
	})
	ctx := testContext(t, 120*time.Second)
	mont, capu := n.Server(montague), n.Server(capulet)
	romeo, _ := connectPair(ctx, t, n)

	hold := make(chan struct{})
	defer close(hold)
	clients := loginGuests(ctx, t, mont, sessions, "", hold)

	must(t, capu.Freeze())
	thawed := false
	defer func() {
		if !thawed {
			_ = capu.Thaw()
		}
	}()
	mark := mont.LogMark()
	_, err := mont.Shell(ctx, `s2s:closeall("`+capulet+`")`)
	must(t, err)
	if _, _, err := mont.WaitLog(ctx, mark, "Checking reachability of capulet.lit"); err != nil {
		t.Fatal(err)
	}
	announceCaps(ctx, t, clients)
	must(t, capu.Thaw())
	thawed = true
	line, _, err := mont.WaitLog(ctx, mark, "Link montague.lit -> capulet.lit is")
	must(t, err)
	t.Logf("verdict: %s", line)
	must(t, romeo.Ping(ctx, ""))
	if got := annotations(romeo.History()); len(got) > 0 {
		t.Fatalf("an evicted ping was taken for an outage:\n%s", dump(got))
	}
}
