// Package stale holds psakit's staleness rules, shared by the roster and
// mucwatch models so that contacts and room occupants go stale and fresh in
// exactly the same way. The rules are written out once, in the roster
// package documentation (section Staleness); this package is their engine,
// and its tests check it against each of them.
package stale

import (
	"fmt"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// Change is one mark added, replaced or removed.
type Change struct {
	Kind psa.MarkChange // MarkAdded, MarkReplaced or MarkRemoved; never MarkUnchanged
	Mark psa.Mark       // the new mark, or the removed one
}

// Rejected is an annotation that was not applied, and why.
type Rejected struct {
	Annotation psa.Annotation
	Err        error // matches psa.ErrUntrusted, psa.ErrMalformed or psa.ErrExcluded
}

// Result collects what applying one presence did. Its slices are reused by
// Reset so that a hot path can apply presence after presence without
// allocating.
type Result struct {
	Changes  []Change
	Rejected []Rejected
}

// Reset empties r, keeping its memory.
func (r *Result) Reset() {
	clear(r.Changes)
	clear(r.Rejected)
	r.Changes, r.Rejected = r.Changes[:0], r.Rejected[:0]
}

// Annotated reports whether p carries at least one state-annotation element,
// well formed or not.
func Annotated(p *presence.Presence) bool {
	return len(p.Annotations) > 0 || len(p.Malformed) > 0 || p.DroppedAnnotations > 0
}

// rejectMalformed records the malformed annotations the decoder found in p
// (presence.MaxAnnotations at most, for a decoded presence).
func rejectMalformed(p *presence.Presence, res *Result) {
	for _, err := range p.Malformed {
		res.Rejected = append(res.Rejected, Rejected{Err: err})
	}
}

// RejectExcluded records every annotation of p as excluded, and the
// malformed ones as malformed. Callers use it for presences that are not of
// type available.
func RejectExcluded(p *presence.Presence, res *Result) {
	rejectMalformed(p, res)
	for _, a := range p.Annotations {
		res.Rejected = append(res.Rejected, Rejected{
			Annotation: a,
			Err:        fmt.Errorf("%w: type %q from %s", psa.ErrExcluded, p.Type, p.From),
		})
	}
}

// Apply applies the annotations of the available presence p, received by
// account at now, to the marks of its entry, following the staleness rules.
// It appends to res what changed and what was rejected.
func Apply(marks psa.Marks, p *presence.Presence, account jid.JID, now time.Time, res *Result) psa.Marks {
	if p.Type != stanza.AvailablePresence {
		RejectExcluded(p, res)
		return marks
	}
	if !Annotated(p) {
		// A new delivery: every mark goes.
		for _, m := range marks {
			res.Changes = append(res.Changes, Change{Kind: psa.MarkRemoved, Mark: m})
		}
		return nil
	}
	rejectMalformed(p, res)
	for _, a := range p.Annotations {
		if err := psa.CheckTrust(account, p.From, a.From); err != nil {
			res.Rejected = append(res.Rejected, Rejected{Annotation: a, Err: err})
			continue
		}
		var (
			change psa.MarkChange
			m      psa.Mark
		)
		marks, change, m = marks.Apply(a, now)
		if change != psa.MarkUnchanged {
			res.Changes = append(res.Changes, Change{Kind: change, Mark: m})
		}
	}
	return ClearLocal(marks, account, res)
}

// LocalMark is the mark psakit sets on every entry when the account's own
// stream drops.
func LocalMark(account jid.JID, now time.Time) psa.Mark {
	return psa.Mark{Condition: psa.LocalDisconnected, By: account.Bare(), Since: now}
}

// ClearLocal removes the psa.LocalDisconnected mark, if any, and records it.
func ClearLocal(marks psa.Marks, account jid.JID, res *Result) psa.Marks {
	next, m, ok := marks.Without(account.Bare())
	if ok {
		res.Changes = append(res.Changes, Change{Kind: psa.MarkRemoved, Mark: m})
	}
	return next
}

// HasLocal reports whether marks carry the psa.LocalDisconnected mark.
func HasLocal(marks psa.Marks, account jid.JID) bool {
	_, ok := marks.Get(account.Bare())
	return ok
}
