package main

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

// fakeModels stands for the client whose models the table renders.
type fakeModels struct {
	roster *roster.Model
	rooms  *mucwatch.Model
}

func (f fakeModels) Roster() *roster.Model  { return f.roster }
func (f fakeModels) Rooms() *mucwatch.Model { return f.rooms }

func staleRoster(t *testing.T, since time.Time) *roster.Model {
	t.Helper()
	m := roster.New(jid.MustParse("romeo@montague.lit"), roster.WithClock(func() time.Time { return since }))
	m.SetItems("", []roster.Item{{JID: jid.MustParse("juliet@capulet.lit"), Name: "Juliet"}})
	p := mustPresence(t, `<presence from='juliet@capulet.lit/balcony'>
		<state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`)
	m.ApplyPresence(&p)
	return m
}

// While a presence is stale, the table on a terminal is drawn again every
// second, so that "for 0s" advances; once everything is fresh it is drawn
// only when something changes. Ticks are given by hand.
func TestTableRefreshWhileStale(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	var b strings.Builder
	o := newTable(&b, true)
	m := staleRoster(t, t0)
	o.attach(fakeModels{roster: m, rooms: mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))})
	o.dirty = true // what the loop does on wake

	o.tick(t0)
	if !strings.Contains(b.String(), "STALE server-unavailable by montague.lit for 0s") {
		t.Fatalf("first draw:\n%s", b.String())
	}
	b.Reset()
	o.tick(t0.Add(500 * time.Millisecond))
	if b.Len() != 0 {
		t.Fatalf("drawn again within the second:\n%s", b.String())
	}
	o.tick(t0.Add(time.Second))
	if !strings.Contains(b.String(), "for 1s") {
		t.Fatalf("not drawn again after a second while stale:\n%s", b.String())
	}

	// The link is back: drawn once more (a change), then no more.
	p := mustPresence(t, `<presence from='juliet@capulet.lit/balcony'/>`)
	m.ApplyPresence(&p)
	o.dirty = true
	b.Reset()
	o.tick(t0.Add(2 * time.Second))
	if !strings.Contains(b.String(), "fresh") {
		t.Fatalf("not redrawn after the change:\n%s", b.String())
	}
	b.Reset()
	o.tick(t0.Add(10 * time.Second))
	if b.Len() != 0 {
		t.Fatalf("redrawn with nothing stale and nothing changed:\n%s", b.String())
	}
}

// Clear-screen codes go to terminals only: a file or pipe gets plain
// tables, and no redraw every second while stale.
func TestTableNotTerminal(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	var b strings.Builder
	o := newTable(&b, false)
	o.attach(fakeModels{roster: staleRoster(t, t0), rooms: mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))})
	o.dirty = true
	o.tick(t0)
	if strings.Contains(b.String(), "\x1b") || !strings.Contains(b.String(), "juliet@capulet.lit") {
		t.Fatalf("table for a file:\n%q", b.String())
	}
	b.Reset()
	o.tick(t0.Add(time.Minute))
	if b.Len() != 0 {
		t.Fatalf("redrawn into a file with nothing changed:\n%s", b.String())
	}

	var term strings.Builder
	o = newTable(&term, true)
	o.dirty = true
	o.tick(t0)
	if !strings.HasPrefix(term.String(), "\x1b[H\x1b[2J") {
		t.Fatalf("a terminal's table does not start by clearing the screen: %q", term.String())
	}

	// A pipe is not a terminal.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is taken for a terminal")
	}
}

// The table's goroutine and its ticker end with close.
func TestTableClose(t *testing.T) {
	leaktest.Check(t)
	var b safeBuilder
	o := newTableOutput(&b, true)
	o.attach(fakeModels{roster: staleRoster(t, time.Now()), rooms: mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))})
	o.close()
}

// safeBuilder is a strings.Builder for the table's goroutine to write to.
type safeBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
