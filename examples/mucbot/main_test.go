package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/psa/psatest"
)

// mucbot joins its rooms, comes back after a technical removal, and leaves
// on Ctrl-C, logging each step.
func TestMucbot(t *testing.T) {
	leaktest.Check(t)
	srv := psatest.NewServer(psatest.WithUser("bot", "pw"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, name := range []string{"orchard", "garden"} {
		r := srv.Room(name)
		r.SetPersistent(true)
	}
	t.Setenv("PSAKIT_PASSWORD", "pw")
	pr, pw := io.Pipe()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"-jid", "bot@montague.lit", "-addr", srv.Addr(), "-tls", "none",
			"-room", "orchard@muc.montague.lit/bot", "-room", "garden@muc.montague.lit/bot", "-rejoin-delay", "10ms"}, os.Stdin, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	// expect reads log lines until one contains every word.
	expect := func(words ...string) {
		t.Helper()
		for lines.Scan() {
			ok := true
			for _, w := range words {
				ok = ok && strings.Contains(lines.Text(), w)
			}
			if ok {
				return
			}
		}
		t.Fatalf("no log line with %q", words)
	}
	expect("msg=connected")
	expect("msg=room-joined", "orchard@muc.montague.lit")
	expect("msg=room-joined", "garden@muc.montague.lit")

	if err := srv.Room("orchard").Kick(ctx, "bot", 332); err != nil {
		t.Fatal(err)
	}
	expect("msg=room-dropped", "orchard@muc.montague.lit", "codes=")
	expect("msg=rejoin", "orchard@muc.montague.lit", "reason=removed")
	expect("msg=room-joined", "orchard@muc.montague.lit")

	stop() // Ctrl-C
	expect("msg=room-left")
	expect("msg=room-left")
	expect("msg=closed")
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	io.Copy(io.Discard, pr)
	for _, name := range []string{"orchard", "garden"} {
		for _, o := range srv.Room(name).Occupants() {
			if o.JID.Equal(jid.MustParse("bot@montague.lit")) || o.Nick == "bot" {
				t.Errorf("still in %s", name)
			}
		}
	}
}
