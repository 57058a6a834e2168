package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// localnet's core, without stdin: a psakit client connected the way the
// printed psawatch command connects sees juliet, then every outage the
// commands play; close removes everything.
func TestLocalnet(t *testing.T) {
	prosodytest.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out syncBuffer
	l, err := start(ctx, &out)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			l.close()
		}
	}()
	dir := l.net.Dir()
	mont := l.net.Server(montague)

	instructions := l.instructions()
	for _, want := range []string{
		"PSAKIT_PASSWORD=wherefore go run ./examples/psawatch -jid romeo@montague.lit -addr " + mont.C2SAddr + " -tls none",
		"go run ./examples/mucbot -jid mercutio@montague.lit -addr " + mont.C2SAddr + " -tls none -room orchard@conference.montague.lit/Mercutio",
	} {
		if !strings.Contains(instructions, want) {
			t.Errorf("the instructions do not say %q:\n%s", want, instructions)
		}
	}
	for _, srv := range l.net.Servers() {
		if !strings.HasPrefix(srv.C2SAddr, "127.0.0.1:") || strings.HasSuffix(srv.C2SAddr, ":5222") {
			t.Errorf("%s listens on %s", srv.Domain, srv.C2SAddr)
		}
	}

	events := make(chan roster.Event, 1000)
	mark := mont.LogMark()
	romeo, err := client.Dial(ctx, jid.MustParse("romeo@montague.lit"), Password,
		client.WithAddress(mont.C2SAddr), client.WithTLS(client.PlainText), client.WithResource("watch"),
		client.WithRemoteCheck(0), // this test is about mod_psa's annotations
		client.OnRoster(func(e roster.Event) { events <- e }))
	if err != nil {
		t.Fatal(err)
	}
	defer romeo.Close()
	if _, _, err := mont.WaitLog(ctx, mark, "Annotations for romeo@montague.lit/watch: on"); err != nil {
		t.Fatal(err)
	}
	const jfull = "juliet@capulet.lit/balcony"
	next := func(what string, match func(roster.Event) bool) {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e.JID.String() == jfull && match(e) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no event: %s\n%s\n%s", what, out.String(), serverLogs(l))
			}
		}
	}
	is := func(kind roster.EventKind, cond psa.Condition) func(roster.Event) bool {
		return func(e roster.Event) bool { return e.Kind == kind && e.Mark.Condition == cond }
	}
	do := func(line string) {
		t.Helper()
		if quit, err := l.do(ctx, line); err != nil || quit {
			t.Fatalf("%s: quit %v, %v\n%s", line, quit, err, out.String())
		}
	}

	next("juliet online", func(e roster.Event) bool { return e.Kind == roster.EventAvailable })
	do("cut")
	next("juliet stale", is(roster.EventStale, psa.ServerUnavailable))
	do("heal")
	next("juliet restored", is(roster.EventRestored, psa.ServerUnavailable))
	do("pause juliet")
	next("juliet paused", is(roster.EventStale, psa.ConnectionPaused))
	do("resume juliet")
	next("juliet resumed", is(roster.EventRestored, psa.ConnectionPaused))
	do("kill capulet.lit")
	next("juliet stale", is(roster.EventStale, psa.ServerUnavailable))
	do("restart capulet.lit")
	// localnet connects juliet again at once: depending on what montague.lit
	// hears first, her old presence is restored and updated, or removed
	// (the probe after the restore) and added again. Either way she ends
	// online and fresh.
	next("juliet back", func(e roster.Event) bool {
		r, ok := romeo.Roster().Resource(jid.MustParse(jfull))
		return e.Kind != roster.EventStale && ok && r.Fresh()
	})
	do("status")
	do("logs capulet.lit 5")
	for _, bad := range []string{"kill", "kill verona.lit", "pause romeo", "resume juliet", "logs capulet.lit x", "dance"} {
		if _, err := l.do(ctx, bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if quit, err := l.do(ctx, "quit"); !quit || err != nil {
		t.Errorf("quit: %v, %v", quit, err)
	}
	if !regexp.MustCompile(`capulet\.lit +running`).MatchString(out.String()) {
		t.Errorf("status does not show capulet.lit running:\n%s", out.String())
	}

	_ = romeo.Close()
	l.close()
	closed = true
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still there after close (%v)", dir, err)
	}
	for _, srv := range l.net.Servers() {
		if srv.Running() {
			t.Errorf("%s still runs after close", srv.Domain)
		}
	}
}

// run prints the instructions and stops at the end of its input.
func TestRun(t *testing.T) {
	prosodytest.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out syncBuffer
	if err := run(ctx, nil, strings.NewReader("help\nstatus\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`go run \./examples/psawatch`, `Commands:`, `juliet@capulet\.lit/balcony +online`, `nurse@capulet\.lit/garden +online, in orchard`, `removing their files`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}
}

// serverLogs is the end of each server's log, for a failure's report.
func serverLogs(l *localnet) string {
	var b strings.Builder
	for _, srv := range l.net.Servers() {
		b.WriteString("== " + srv.Domain + "\n" + srv.LogTail(80) + "\n")
	}
	return b.String()
}
