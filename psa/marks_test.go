package psa_test

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

func TestMarks(t *testing.T) {
	own := jid.MustParse("montague.lit")
	muc := jid.MustParse("chats.shakespeare.lit")
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)

	var ms psa.Marks
	if ms.Stale() {
		t.Fatal("empty set is stale")
	}
	ms, change, m := ms.Apply(psa.Annotation{From: own, Condition: psa.ServerUnavailable}, t0)
	if change != psa.MarkAdded || !ms.Stale() || len(ms) != 1 || m.Since != t0 || !m.By.Equal(own) {
		t.Fatalf("first mark: %v %+v %+v", change, ms, m)
	}
	ms, change, _ = ms.Apply(psa.Annotation{From: muc, Condition: psa.ServerUnavailable}, t1)
	if change != psa.MarkAdded || len(ms) != 2 {
		t.Fatalf("second annotator: %v %+v", change, ms)
	}

	// The same condition again keeps Since; a new description is kept.
	before := ms
	ms, change, m = ms.Apply(psa.Annotation{From: own, Condition: psa.ServerUnavailable, Descriptions: []psa.Description{{Text: "still"}}}, t1)
	if change != psa.MarkUnchanged || m.Since != t0 || len(m.Descriptions) != 1 {
		t.Fatalf("repeat: %v %+v", change, m)
	}
	if len(before[0].Descriptions) != 0 {
		t.Fatal("Apply modified the set it was called on")
	}
	// Another condition replaces the mark and restarts Since.
	ms, change, m = ms.Apply(psa.Annotation{From: own, Condition: psa.ConnectionPaused}, t1)
	if change != psa.MarkReplaced || m.Since != t1 || len(ms) != 2 {
		t.Fatalf("replace: %v %+v", change, m)
	}
	if got, ok := ms.Get(own); !ok || got.Condition != psa.ConnectionPaused {
		t.Fatalf("Get(own) = %+v, %v", got, ok)
	}

	// An empty annotation clears its own annotator's mark only.
	before = ms
	ms, change, m = ms.Apply(psa.Annotation{From: muc}, t1)
	if change != psa.MarkRemoved || !m.By.Equal(muc) || len(ms) != 1 || !ms.Stale() {
		t.Fatalf("clear muc: %v %+v %+v", change, m, ms)
	}
	if len(before) != 2 || !before[1].By.Equal(muc) {
		t.Fatal("Apply modified the set it was called on")
	}
	ms, change, _ = ms.Apply(psa.Annotation{From: muc}, t1)
	if change != psa.MarkUnchanged || len(ms) != 1 {
		t.Fatalf("clearing an absent mark: %v %+v", change, ms)
	}
	ms, change, _ = ms.Apply(psa.Annotation{From: own}, t1)
	if change != psa.MarkRemoved || ms.Stale() {
		t.Fatalf("clear own: %v %+v", change, ms)
	}
	if _, ok := ms.Get(own); ok {
		t.Fatal("Get on an empty set")
	}
}

func TestMarkChangeString(t *testing.T) {
	for c, want := range map[psa.MarkChange]string{
		psa.MarkUnchanged: "unchanged", psa.MarkAdded: "added", psa.MarkReplaced: "replaced",
		psa.MarkRemoved: "removed", 42: "MarkChange(?)",
	} {
		if c.String() != want {
			t.Errorf("String() = %q, want %q", c.String(), want)
		}
	}
}
