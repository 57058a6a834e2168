package roster_test

import (
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// checkStale checks Stats.Stale and the byte counts against the resources
// themselves.
func checkStale(t *testing.T, m *roster.Model) {
	t.Helper()
	n := 0
	for r := range m.Resources() {
		if !r.Fresh() {
			n++
		}
	}
	st := m.Stats()
	if st.Stale != n {
		t.Fatalf("Stats.Stale = %d, %d resources are stale", st.Stale, n)
	}
	if total, strangers := roster.RecountBytes(m); st.Bytes != total || st.StrangerBytes != strangers {
		t.Fatalf("Stats bytes %d/%d, records hold %d/%d", st.Bytes, st.StrangerBytes, total, strangers)
	}
}

func TestMarkUnreachable(t *testing.T) {
	m, clk := newModel(t)
	capulet := jid.MustParse("capulet.lit")
	at := []string{"juliet@capulet.lit/orchard", "juliet@capulet.lit/balcony", "nurse@capulet.lit/kitchen", "capulet.lit"}
	elsewhere := []string{"benvolio@montague.lit/street", "tybalt@evil.capulet.lit/x", "paris@xcapulet.lit/y"}
	for _, j := range append(append([]string{}, at...), elsewhere...) {
		m.ApplyPresence(pres(t, `<presence from="%s"/>`, j))
	}
	// The nurse's server already says her link is down.
	m.ApplyPresence(ann(t, "nurse@capulet.lit/kitchen", "capulet.lit", "connection-paused"))

	clk.t = clk.t.Add(1000)
	evs, omitted := m.MarkUnreachable(capulet, -1)
	if omitted != 0 || len(evs) != len(at) {
		t.Fatalf("MarkUnreachable: %d events, %d omitted, want %d and 0: %v", len(evs), omitted, len(at), evs)
	}
	for i, e := range evs {
		if e.Kind != roster.EventStale || e.JID.String() != at[i] || !e.Mark.Inferred() ||
			e.Mark.Condition != psa.ServerUnavailable || !e.Mark.Since.Equal(clk.t) || e.Fresh() {
			t.Fatalf("event %d: %+v", i, e)
		}
		r, _ := m.Resource(e.JID)
		if _, ok := r.Marks.Get(psa.InferredBy(capulet)); !ok {
			t.Fatalf("%s not marked in the model: %v", e.JID, r.Marks)
		}
	}
	for _, j := range elsewhere {
		if r, _ := m.Resource(jid.MustParse(j)); !r.Fresh() {
			t.Fatalf("%s on another domain marked: %v", j, r.Marks)
		}
	}
	checkStale(t, m)

	// Again: nothing new, Since kept.
	clk.t = clk.t.Add(1000)
	if evs, _ := m.MarkUnreachable(capulet, -1); len(evs) != 0 {
		t.Fatalf("marked twice: %v", evs)
	}
	r, _ := m.Resource(jid.MustParse(at[0]))
	if mk, _ := r.Marks.Get(psa.InferredBy(capulet)); !mk.Since.Equal(clk.t.Add(-1000)) {
		t.Fatalf("Since moved to %v", mk.Since)
	}

	// The domain's empty annotation clears its own mark, never the inferred one.
	evs = m.ApplyPresence(ann(t, "juliet@capulet.lit/orchard", "capulet.lit", ""))
	if r, _ := m.Resource(jid.MustParse(at[0])); r.Fresh() {
		t.Fatalf("an empty annotation cleared the inferred mark: %v", evs)
	}
	// A new presence from the resource clears it: the path works.
	evs = m.ApplyPresence(pres(t, `<presence from="%s"><show>away</show></presence>`, at[1]))
	if r, _ := m.Resource(jid.MustParse(at[1])); !r.Fresh() {
		t.Fatalf("a new presence left %v (%v)", r.Marks, evs)
	}
	checkStale(t, m)

	evs, omitted = m.ClearUnreachable(capulet, -1)
	want := []string{at[0], at[2], at[3]} // the balcony is fresh already
	if omitted != 0 || len(evs) != len(want) {
		t.Fatalf("ClearUnreachable: %d events, %d omitted: %v", len(evs), omitted, evs)
	}
	for i, e := range evs {
		if e.Kind != roster.EventRestored || e.JID.String() != want[i] || !e.Mark.Inferred() || !e.Resent {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	if !evs[0].Fresh() || evs[1].Fresh() || !evs[2].Fresh() {
		t.Fatalf("the nurse's server mark must stay, the others be fresh: %v", evs)
	}
	if mk, _ := evs[1].Resource.Marks.Get(jid.MustParse("capulet.lit")); mk.Condition != psa.ConnectionPaused {
		t.Fatalf("the nurse's marks: %v", evs[1].Resource.Marks)
	}
	checkStale(t, m)
	if evs, _ := m.ClearUnreachable(capulet, -1); len(evs) != 0 {
		t.Fatalf("cleared twice: %v", evs)
	}
}

func TestMarkUnreachableBounded(t *testing.T) {
	m, _ := newModel(t)
	for _, r := range []string{"a", "b", "c", "d"} {
		m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/%s"/>`, r))
	}
	capulet := jid.MustParse("capulet.lit")
	evs, omitted := m.MarkUnreachable(capulet, 0)
	if len(evs) != 0 || omitted != 4 || m.Stats().Stale != 4 {
		t.Fatalf("no room for events: %d events, %d omitted, %d stale", len(evs), omitted, m.Stats().Stale)
	}
	evs, omitted = m.ClearUnreachable(capulet, 1<<20)
	if len(evs) != 4 || omitted != 0 || m.Stats().Stale != 0 {
		t.Fatalf("room for all: %d events, %d omitted, %d stale", len(evs), omitted, m.Stats().Stale)
	}
	checkStale(t, m)
	if evs, omitted := m.MarkUnreachable(jid.JID{}, -1); len(evs) != 0 || omitted != 0 || m.Stats().Stale != 0 {
		t.Fatalf("the zero domain marked %d+%d", len(evs), omitted)
	}
}

// The inferred mark and our own stream's mark are apart: the sweep after a
// reconnect removes what the server did not send again, whatever else
// marks it, and a resource that came back keeps the inferred mark only if
// its presence was a re-send.
func TestUnreachableAndDisconnected(t *testing.T) {
	m, _ := newModel(t)
	m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/orchard"/>`))
	m.ApplyPresence(pres(t, `<presence from="juliet@capulet.lit/balcony"/>`))
	capulet := jid.MustParse("capulet.lit")
	m.MarkUnreachable(capulet, -1)
	m.MarkDisconnected()
	r, _ := m.Resource(juliet)
	if len(r.Marks) != 2 {
		t.Fatalf("marks %v, want inferred and local", r.Marks)
	}
	// Our server re-sends the orchard with its own annotation.
	m.ApplyPresence(ann(t, "juliet@capulet.lit/orchard", "montague.lit", "server-unavailable"))
	r, _ = m.Resource(juliet)
	if len(r.Marks) != 2 || !r.Marks[0].Inferred() || r.Marks[1].By.String() != "montague.lit" {
		t.Fatalf("after the re-send: %v", r.Marks)
	}
	if evs := m.Sweep(); len(evs) != 1 || evs[0].JID.String() != "juliet@capulet.lit/balcony" {
		t.Fatalf("Sweep: %v", evs)
	}
	checkStale(t, m)
}
