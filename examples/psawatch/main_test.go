package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

// Run psawatch -json against an in-process server, as a user would against
// a real one, and read what it prints.
func TestJSON(t *testing.T) {
	leaktest.Check(t)
	srv := psatest.NewServer(psatest.WithUser("romeo", "pw"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	romeo := jid.MustParse("romeo@montague.lit")
	juliet := jid.MustParse("juliet@capulet.lit/balcony")
	srv.SetRoster(romeo, "1", roster.Item{JID: juliet.Bare(), Subscription: roster.SubscriptionBoth})
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'><show>away</show></presence>`); err != nil {
		t.Fatal(err)
	}
	room := srv.Room("orchard")
	room.SetPersistent(true)
	if err := room.AddOccupant(ctx, "Nurse", jid.MustParse("nurse@capulet.lit/kitchen"), "participant", "none"); err != nil {
		t.Fatal(err)
	}

	t.Setenv("PSAKIT_PASSWORD", "pw")
	pr, pw := io.Pipe()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"-jid", "romeo@montague.lit/watch", "-addr", srv.Addr(), "-tls", "none", "-json",
			"-room", "orchard@muc.montague.lit/Romeo"}, os.Stdin, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	next := func(event string) record {
		t.Helper()
		for lines.Scan() {
			var r record
			if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
				t.Fatalf("not JSON: %s: %v", lines.Text(), err)
			}
			if _, err := time.Parse(time.RFC3339, r.Time); err != nil {
				t.Fatalf("time %q: %v", r.Time, err)
			}
			if r.Event == event {
				return r
			}
		}
		t.Fatalf("no %q event", event)
		return record{}
	}

	if r := next("connected"); r.JID != "romeo@montague.lit/watch" {
		t.Fatalf("connected %+v", r)
	}
	if r := next("available"); r.JID != juliet.String() || r.Show != "away" || r.Fresh == nil || !*r.Fresh {
		t.Fatalf("available %+v", r)
	}
	if r := next("occupant-available"); r.Room != "orchard@muc.montague.lit" || r.JID != "orchard@muc.montague.lit/Nurse" {
		t.Fatalf("occupant-available %+v", r)
	}
	next("room-joined")

	c, _ := srv.WaitAvailable(ctx, jid.MustParse("romeo@montague.lit/watch"))
	err := srv.Annotate(ctx, c.JID(), juliet, psa.Annotation{From: jid.MustParse("montague.lit"), Condition: psa.ServerUnavailable,
		Descriptions: []psa.Description{{Text: "capulet.lit is unreachable"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := next("stale")
	if r.JID != juliet.String() || r.Condition != "server-unavailable" || r.By != "montague.lit" || r.Fresh == nil || *r.Fresh ||
		r.Description != "capulet.lit is unreachable" || r.Show != "away" {
		t.Fatalf("stale %+v", r)
	}
	if err := room.Annotate(ctx, "Nurse", psa.Annotation{Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	r = next("occupant-stale")
	if r.Room != "orchard@muc.montague.lit" || r.JID != "orchard@muc.montague.lit/Nurse" || r.By != "muc.montague.lit" || *r.Fresh {
		t.Fatalf("occupant-stale %+v", r)
	}

	stop() // Ctrl-C
	if r := next("closed"); r.Error != "" {
		t.Fatalf("closed %+v", r)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	io.Copy(io.Discard, pr)
}

func TestTable(t *testing.T) {
	m := roster.New(jid.MustParse("romeo@montague.lit"))
	m.SetItems("", []roster.Item{{JID: jid.MustParse("juliet@capulet.lit"), Name: "Juliet"}, {JID: jid.MustParse("nurse@capulet.lit")}})
	p := mustPresence(t, `<presence from='juliet@capulet.lit/balcony'><show>away</show><status>on the balcony</status>
		<state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`)
	m.ApplyPresence(&p)
	var b strings.Builder
	renderRoster(&b, m.View(), time.Now().Add(90*time.Second))
	out := b.String()
	for _, want := range []string{
		"Juliet <juliet@capulet.lit>", "balcony", "away", "on the balcony", "STALE server-unavailable by montague.lit for 1m30s",
		"nurse@capulet.lit", "offline",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
func mustPresence(t *testing.T, s string) presence.Presence {
	t.Helper()
	p, err := presence.Unmarshal([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
