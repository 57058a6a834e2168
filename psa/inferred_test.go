package psa_test

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

func TestInferredMark(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	domain := jid.MustParse("romeo@montague.lit/garden") // any JID: its domain counts
	m := psa.InferredMark(domain, now)
	if m.Condition != psa.ServerUnavailable || m.By.String() != "montague.lit/psakit-inferred" || !m.Since.Equal(now) {
		t.Fatalf("InferredMark = %+v", m)
	}
	if !m.Inferred() {
		t.Fatal("an inferred mark is not Inferred")
	}
	if d, ok := m.InferredDomain(); !ok || d.String() != "montague.lit" {
		t.Fatalf("InferredDomain = %v %v", d, ok)
	}
	for _, by := range []string{"montague.lit", "juliet@capulet.lit", "juliet@capulet.lit/psakit-inferred"} {
		other := psa.Mark{Condition: psa.ServerUnavailable, By: jid.MustParse(by)}
		if other.Inferred() {
			t.Fatalf("a mark by %s is Inferred", by)
		}
		if _, ok := other.InferredDomain(); ok {
			t.Fatalf("a mark by %s has an InferredDomain", by)
		}
	}
	if by := psa.InferredBy(jid.JID{}); !by.Equal(jid.JID{}) {
		t.Fatalf("InferredBy(zero) = %v", by)
	}
}

// An empty annotation from the domain itself, the only annotator the trust
// rule lets speak for its users, cannot remove the inferred mark, nor can a
// server's own mark replace it.
func TestInferredMarkApart(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	domain := jid.MustParse("montague.lit")
	ms, _, _ := psa.Marks(nil).With(psa.InferredMark(domain, now))
	next, change, _ := ms.Apply(psa.Annotation{From: domain}, now)
	if change != psa.MarkUnchanged || len(next) != 1 {
		t.Fatalf("empty annotation from the domain: %v, %v", change, next)
	}
	next, change, _ = ms.Apply(psa.Annotation{From: domain, Condition: psa.ServerUnavailable}, now)
	if change != psa.MarkAdded || len(next) != 2 {
		t.Fatalf("the domain's own mark: %v, %v", change, next)
	}
}
