package psa

import (
	"slices"
	"time"

	"golang.org/x/text/language"
	"mellium.im/xmpp/jid"
)

// Mark is one annotator's word that a presence entry may be stale.
type Mark struct {
	// Condition is why; never empty.
	Condition Condition
	// By is the annotator. For LocalDisconnected it is the account's own bare
	// JID, which no annotation can carry, so the two never collide.
	By jid.JID
	// Descriptions as the annotator sent them, possibly none.
	Descriptions []Description
	// Since is when this annotator first marked the entry with this condition.
	Since time.Time
}

// Description returns the description that best fits the preferred
// languages, as Annotation.Description does.
func (m Mark) Description(prefs ...language.Tag) (Description, bool) {
	return bestDescription(m.Descriptions, prefs)
}

// MarkChange says what applying an annotation did to a set of marks.
type MarkChange uint8

// The possible changes.
const (
	// MarkUnchanged: the annotator's mark was already there with the same
	// condition (descriptions may have been refreshed), or an empty annotation
	// came from an annotator that had no mark.
	MarkUnchanged MarkChange = iota
	// MarkAdded: the annotator had no mark and now has one.
	MarkAdded
	// MarkReplaced: the annotator's mark changed its condition.
	MarkReplaced
	// MarkRemoved: an empty annotation removed the annotator's mark.
	MarkRemoved
)

var markChangeNames = [...]string{"unchanged", "added", "replaced", "removed"}

// String returns a lower-case name for the change, and "MarkChange(?)"
// for a value that is no change.
func (c MarkChange) String() string {
	if int(c) < len(markChangeNames) {
		return markChangeNames[c]
	}
	return "MarkChange(?)"
}

// Marks is the set of marks on one presence entry: at most one per
// annotator, in the order they were first set. An entry is fresh when it has
// no marks.
//
// Marks is copy-on-write: no method modifies the receiver's elements, and a
// change returns a new slice. A Marks value taken from a snapshot therefore
// stays valid while the model it came from goes on changing.
type Marks []Mark

// Stale reports whether there is at least one mark.
func (ms Marks) Stale() bool { return len(ms) > 0 }

// Get returns the mark set by annotator by, if any.
func (ms Marks) Get(by jid.JID) (Mark, bool) {
	if i := ms.index(by); i >= 0 {
		return ms[i], true
	}
	return Mark{}, false
}

func (ms Marks) index(by jid.JID) int {
	for i := range ms {
		if ms[i].By.Equal(by) {
			return i
		}
	}
	return -1
}

// Apply applies an annotation received at now: an empty annotation removes
// its annotator's mark, any other sets or replaces it. It returns the new set
// and the mark that was added, replaced (the new one) or removed (the old
// one). The caller checks trust first (CheckTrust).
func (ms Marks) Apply(a Annotation, now time.Time) (Marks, MarkChange, Mark) {
	if a.Restored() {
		next, old, ok := ms.Without(a.From)
		if !ok {
			return ms, MarkUnchanged, Mark{}
		}
		return next, MarkRemoved, old
	}
	return ms.With(Mark{Condition: a.Condition, By: a.From, Descriptions: a.Descriptions, Since: now})
}

// With sets m as the mark of m.By, replacing an earlier one. When the earlier
// mark had the same condition its Since is kept, so that a repeated
// annotation does not make the entry look stale for less time than it has
// been.
func (ms Marks) With(m Mark) (Marks, MarkChange, Mark) {
	i := ms.index(m.By)
	if i < 0 {
		next := make(Marks, len(ms), len(ms)+1)
		copy(next, ms)
		return append(next, m), MarkAdded, m
	}
	change := MarkReplaced
	if ms[i].Condition == m.Condition {
		m.Since = ms[i].Since
		change = MarkUnchanged
	}
	next := slices.Clone(ms)
	next[i] = m
	return next, change, m
}

// Without removes the mark set by annotator by. ok is false, and ms is
// returned as it is, when there was none.
func (ms Marks) Without(by jid.JID) (next Marks, removed Mark, ok bool) {
	i := ms.index(by)
	if i < 0 {
		return ms, Mark{}, false
	}
	if len(ms) == 1 {
		return nil, ms[0], true
	}
	next = make(Marks, 0, len(ms)-1)
	next = append(next, ms[:i]...)
	next = append(next, ms[i+1:]...)
	return next, ms[i], true
}
