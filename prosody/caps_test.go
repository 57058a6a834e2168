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

// manySessions logs in 300 PSA sessions (identity name: "" gives each its own
// ver) that hold their disco#info answers until all announced their caps,
// and checks that every one gets annotations.
func manySessions(t *testing.T, identity string) {
	const sessions = 300
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.PSAOptions["psa_disco_timeout"] = "60"
		// One user per session, each a contact of benvolio, so that no
		// session gets the presences of all the others.
		mont.Roster["benvolio"] = map[string]string{}
		for i := range sessions {
			user := fmt.Sprintf("guest%d", i)
			mont.Users[user] = pw
			mont.Roster[user] = map[string]string{"benvolio@" + montague: "both"}
			mont.Roster["benvolio"][user+"@"+montague] = "both"
		}
	})
	ctx := testContext(t, 120*time.Second)
	mont := n.Server(montague)

	benvolio := client(ctx, t, mont, "benvolio", "street", rawclient.Config{StreamManagement: true})
	must(t, benvolio.SendPresence(ctx, ""))

	hold := make(chan struct{})
	cfg := rawclient.Config{Features: []string{rawclient.NSPSA}, IdentityName: identity, HoldDisco: hold}
	clients := make([]*rawclient.Client, sessions)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
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
	t.Logf("logged in %d sessions in %v", sessions, time.Since(start))
	close(errs)
	for _, c := range clients {
		if c != nil {
			t.Cleanup(func() { _ = c.Close() })
		}
	}
	for err := range errs {
		t.Fatal(err)
	}
	for _, c := range clients {
		must(t, c.Send("<presence>"+c.CapsElement()+"</presence>"))
	}
	t.Logf("presences sent after %v", time.Since(start))
	// The server saw every presence (and sent its queries) before these
	// answers.
	for _, c := range clients {
		must(t, c.Ping(ctx, ""))
	}
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
