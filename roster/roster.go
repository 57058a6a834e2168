// Package roster is a staleness-aware model of an XMPP roster: the contacts,
// their roster items, and the presence of each of their resources, with the
// XEP-0310 marks that say which presence may be stale, why, since when, and
// by whose word.
//
// The Model is a functional core: it does no I/O and starts no goroutines.
// Its Apply methods take decoded stanzas and return the events they cause;
// each costs O(1) whatever the size of the roster. Reads (lookups and
// iter.Seq snapshots) are safe from any goroutine while another applies
// updates, so a user interface can render the model while the client feeds
// it.
//
// # Staleness
//
// These are psakit's staleness rules, in full. They hold for each presence
// entry: a resource here, a room occupant in package mucwatch, which applies
// the same rules.
//   - An annotation applies only when its annotator passes the trust rule
//     ([psa.CheckTrust]): it is the account's own domain, or the domain of
//     the presence's from (on a presence without from, the account's own,
//     only the former). Domains are compared in normalized form (case, a
//     trailing dot). An annotation from any other domain is rejected
//     ([psa.ErrUntrusted]), and so is a malformed one, whose from is a
//     user's or a full JID, say ([psa.ErrMalformed]): reported, never
//     applied.
//   - A trusted annotation from annotator A sets or replaces A's mark; an
//     empty annotation from A removes A's mark only. An entry is fresh when
//     no mark is left. A condition psakit does not know is kept by its name
//     and means stale all the same.
//   - An annotated presence carries the presence content as well: it is
//     applied, and a mark that is repeated keeps its Since.
//   - An available presence without annotations is a new delivery from the
//     contact: the path works, so it clears every mark. Without this an
//     entry would stay stale for ever whenever an annotator forgot its
//     outage (a restarted server) or its empty annotation was lost. A
//     presence that carries annotations, even rejected ones only, is a
//     re-send and clears only what its trusted annotations clear.
//   - A presence carries at most presence.MaxAnnotations (4) annotation
//     elements, malformed ones included; the decoder drops further ones
//     (they are not applied, nor reported as EventRejected, only listed in
//     the presence's Problems), and the presence still counts as annotated.
//   - An annotation for a resource the model does not know creates it,
//     marked.
//   - Unavailable presence removes the resource and its marks. Annotations
//     on unavailable, error, probe and subscription presences are excluded
//     by XEP-0310: they are rejected ([psa.ErrExcluded]).
//   - MarkDisconnected marks every resource [psa.LocalDisconnected] when the
//     account's own stream drops; any available presence received
//     afterwards clears that mark, and Sweep removes the resources that were
//     not refreshed.
//
// Rejections and limits are reported as EventRejected events, never as
// panics or silently corrupted state.
//
// # Bounds
//
// A peer outside the roster can send directed presence from as many
// resources as it likes, so the model bounds what it keeps: resources per
// bare JID (WithMaxResources, 32), strangers (WithMaxStrangers, 1024), and
// in bytes the records of the strangers' resources (WithMaxStrangerBytes,
// 8 MiB) and of all resources (WithMaxBytes, 256 MiB), counted in the
// blocks that hold them (Stats.Bytes). A presence that would pass a limit
// is rejected with ErrLimit, before anything changes; shrinking is always
// allowed. MarkDisconnectedUpTo marks every resource but builds its events
// only up to a size, so that a disconnect does not copy the whole model.
//
// # Large rosters and the garbage collector
//
// The model keeps its entries where the garbage collector does not walk
// them: fixed-size slots in pointer-free slices and every string in a byte
// arena, found through a map of JID hashes. A collection cycle costs about
// a nanosecond per online contact instead of the 0.4 µs that ten small
// heap objects per contact cost (BenchmarkMarkModel), so a client that
// tracks a million entries does not pay for them on every cycle. Snapshots
// build their JIDs and strings when asked. Memory the model frees is kept
// for its next entries until three quarters of it is free; the storage is
// then rebuilt packed, and the rest given back.
//
// # Where each behaviour lives
//
// roster.go: the Model, presence and the staleness rules as they apply to
// resources, MarkDisconnected and Sweep. items.go: roster items (SetItems,
// ApplyPush); parse.go: reading them from a roster result or push
// (ReadItems). remote.go: the marks of unreachable domains. budget.go: the
// byte budgets. storage.go, arena.go and record.go: how entries are kept
// (slots, handles, the byte arena, the record encoding). events.go: the
// events; view.go: the read-only View package client hands out.
package roster

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/fastjid"
	"github.com/psakit/psakit/internal/stale"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// Default limits. Each can be changed with an Option.
const (
	// DefaultMaxResources is the number of resources kept per bare JID.
	DefaultMaxResources = 32
	// DefaultMaxStrangers is the number of bare JIDs not in the roster (they
	// sent directed presence) that the model tracks at once.
	DefaultMaxStrangers = 1024
	// DefaultMaxStrangerBytes is the memory that the presence of bare JIDs
	// not in the roster may take, all of them together: 8 MiB. At the
	// decoder's limits a resource's record takes at most 64 KiB, so a
	// thousand strangers with 32 resources each would otherwise hold 2 GiB.
	DefaultMaxStrangerBytes = 8 << 20
	// DefaultMaxBytes is the memory that the presence of every resource may
	// take, roster contacts' and strangers' together: 256 MiB, room for a
	// million typical resources.
	DefaultMaxBytes = 256 << 20
)

// Errors reported in EventRejected events and returned by ApplyPush.
var (
	// ErrLimit: a resource or a stranger was not tracked because of a limit.
	ErrLimit = errors.New("roster: limit reached, presence not tracked")
	// ErrSpoofedPush: a roster push came from someone other than the
	// account's own server (RFC 6121 §2.1.6).
	ErrSpoofedPush = errors.New("roster: roster push not from the account's server")
)

// Subscription states of a roster item (RFC 6121 §2.1.2.5).
const (
	SubscriptionNone   = "none"
	SubscriptionTo     = "to"
	SubscriptionFrom   = "from"
	SubscriptionBoth   = "both"
	SubscriptionRemove = "remove" // only in pushes and set requests
)

// Item is a roster item.
type Item struct {
	JID          jid.JID // a bare JID
	Name         string
	Subscription string // one of the Subscription constants; "" means none
	Ask          bool   // a subscription request to the contact is pending
	Approved     bool   // pre-approved subscription
	Groups       []string
}

// Resource is the presence of one full JID.
type Resource struct {
	JID jid.JID // the full JID, or the bare JID for presence without a resource
	presence.State
	// Marks say why the presence may be stale; none means fresh.
	Marks psa.Marks
	// Updated is when the last presence for this resource was applied.
	Updated time.Time
}

// Fresh reports whether the resource carries no mark.
func (r Resource) Fresh() bool { return !r.Marks.Stale() }

// Contact is a bare JID with its roster item, if any, and its resources.
type Contact struct {
	JID      jid.JID // the bare JID
	Item     Item    // the zero Item when InRoster is false
	InRoster bool
	// Resources that are online, in the order they came online.
	Resources []Resource
}

// Online reports whether the contact has at least one resource.
func (c Contact) Online() bool { return len(c.Resources) > 0 }

// Fresh reports whether no resource of the contact carries a mark.
func (c Contact) Fresh() bool {
	for _, r := range c.Resources {
		if !r.Fresh() {
			return false
		}
	}
	return true
}

// Best returns the resource a client shows for the contact: the highest
// priority, ties going to the one that came online first.
func (c Contact) Best() (Resource, bool) {
	if len(c.Resources) == 0 {
		return Resource{}, false
	}
	best := c.Resources[0]
	for _, r := range c.Resources[1:] {
		if r.Priority > best.Priority {
			best = r
		}
	}
	return best, true
}

// Stats counts what the model holds.
type Stats struct {
	Items     int // roster items
	Contacts  int // bare JIDs tracked: roster items plus strangers with resources
	Strangers int // bare JIDs with resources that are not in the roster
	Resources int // full JIDs with presence
	Stale     int // resources that carry at least one mark
	// Bytes is the memory that the resources' presence records take, in
	// the blocks the model keeps them in (WithMaxBytes).
	Bytes int
	// StrangerBytes is the part of Bytes that strangers' resources take
	// (WithMaxStrangerBytes).
	StrangerBytes int
}

// Option configures a Model. Only this package's With functions make
// one, so that an option cannot reach the model it configures.
type Option struct{ apply func(*Model) }

// WithMaxResources sets how many resources are kept per bare JID
// (DefaultMaxResources). Presence for more is rejected with ErrLimit.
func WithMaxResources(n int) Option { return Option{func(m *Model) { m.maxResources = max(n, 1) }} }

// WithMaxStrangers sets how many bare JIDs that are not in the roster may
// have presence tracked at once (DefaultMaxStrangers). Presence from more is
// rejected with ErrLimit, and when a roster item is removed while the limit
// is reached, its presence is dropped with EventUnavailable events.
func WithMaxStrangers(n int) Option { return Option{func(m *Model) { m.maxStrangers = max(n, 0) }} }

// WithMaxStrangerBytes sets how much memory the presence of all strangers
// together may take (DefaultMaxStrangerBytes), counted as Stats.StrangerBytes
// counts it: the records of their resources' state and marks, in the
// power-of-two blocks the model keeps them in. A presence from a stranger
// that would take more is rejected with ErrLimit: a new resource is not
// tracked, a known one keeps its previous state. When a roster item is
// removed while the budget is spent, its presence is dropped with
// EventUnavailable events.
func WithMaxStrangerBytes(n int) Option {
	return Option{func(m *Model) { m.maxStrangerBytes = max(n, 0) }}
}

// WithMaxBytes sets how much memory the presence of all resources together
// may take (DefaultMaxBytes), counted as Stats.Bytes counts it. A presence
// that would take more is rejected with ErrLimit, as for
// WithMaxStrangerBytes. The psa.LocalDisconnected marks of MarkDisconnected
// are the model's own and always stored: they may take the total past the
// budget by a few dozen bytes per resource until Sweep.
func WithMaxBytes(n int) Option { return Option{func(m *Model) { m.maxBytes = max(n, 0) }} }

// WithClock sets the clock used for Since and Updated (time.Now).
func WithClock(now func() time.Time) Option { return Option{func(m *Model) { m.now = now }} }

// Model is a staleness-aware roster. Its zero value is not usable: call New.
type Model struct {
	// Immutable after New.
	maxResources     int
	maxStrangers     int
	maxBytes         int
	maxStrangerBytes int
	now              func() time.Time

	mu      sync.RWMutex
	account jid.JID
	ver     string
	stats   Stats        // but Contacts and Resources, which st counts
	res     stale.Result // scratch space for Apply, reused under mu
	scratch []byte       // scratch space for records, reused under mu

	// The contacts and resources, where the garbage collector does not walk
	// them (storage.go).
	st storage

	locs          []*time.Location // the locations of stamps, see stampOf
	lastJID       jid.JID          // the last JID given to jidString
	lastJIDString string           // its string
	strings       fastjid.Interner // for snapshots' caps strings
}

// maxRecord bounds the bytes the Model keeps for one resource or item.
// Decoded presence is far below it (the presence package caps status
// texts); a presence or item built by hand above it is rejected with
// ErrLimit.
const maxRecord = 1 << 26

// New returns an empty model for account, the user's JID (bare, or the full
// JID of the session: presence from the session itself is then ignored).
func New(account jid.JID, opts ...Option) *Model {
	m := &Model{
		account:          account,
		maxResources:     DefaultMaxResources,
		maxStrangers:     DefaultMaxStrangers,
		maxBytes:         DefaultMaxBytes,
		maxStrangerBytes: DefaultMaxStrangerBytes,
		now:              time.Now,
		st:               newStorage(),
	}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(m)
		}
	}
	return m
}

// SetAccount replaces the account JID, for instance with the full JID the
// server bound after a reconnect.
func (m *Model) SetAccount(account jid.JID) {
	m.mu.Lock()
	m.account = account
	m.mu.Unlock()
}

// Account returns the account JID.
func (m *Model) Account() jid.JID {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.account
}

// Version returns the roster version (RFC 6121 §2.6) of the items, "" when
// the server does not version rosters or no roster was fetched yet.
func (m *Model) Version() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ver
}

// Stats returns counts of what the model holds.
func (m *Model) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.stats
	s.Contacts, s.Resources = m.st.nContacts, m.st.nResources
	return s
}

// Contact returns a snapshot of the contact with j's bare JID.
func (m *Model) Contact(j jid.JID) (Contact, bool) {
	key := j.Bare().String()
	m.mu.RLock()
	defer m.mu.RUnlock()
	ci := m.st.lookup(key)
	if ci == 0 {
		return Contact{}, false
	}
	return m.contactSnapshot(ci), true
}

// Resource returns a snapshot of the resource with full JID j.
func (m *Model) Resource(j jid.JID) (Resource, bool) {
	full := j.String()
	key, _ := fastjid.Split(full)
	m.mu.RLock()
	defer m.mu.RUnlock()
	ci := m.st.lookup(key)
	if ci == 0 {
		return Resource{}, false
	}
	if ri, _ := m.st.findResource(ci, full); ri != 0 {
		return m.resourceSnapshot(ri, &j), true
	}
	return Resource{}, false
}

// Contacts returns a snapshot of every contact: roster items, and bare JIDs
// outside the roster that have resources. The snapshot is taken when
// iteration starts; the model may change while the loop runs.
func (m *Model) Contacts() iter.Seq[Contact] {
	return func(yield func(Contact) bool) {
		m.mu.RLock()
		all := make([]Contact, 0, m.st.nContacts)
		for ci := range m.st.allContacts() {
			all = append(all, m.contactSnapshot(ci))
		}
		m.mu.RUnlock()
		for _, c := range all {
			if !yield(c) {
				return
			}
		}
	}
}

// Items returns a snapshot of the roster items.
func (m *Model) Items() iter.Seq[Item] {
	return func(yield func(Item) bool) {
		m.mu.RLock()
		items := make([]Item, 0, m.stats.Items)
		for ci := range m.st.allContacts() {
			if c := m.st.contact(ci); c.inRoster {
				items = append(items, m.readItem(m.parseJID(m.st.get(c.key)), m.st.get(c.item)))
			}
		}
		m.mu.RUnlock()
		for _, it := range items {
			if !yield(it) {
				return
			}
		}
	}
}

// Resources returns a snapshot of every resource with presence.
func (m *Model) Resources() iter.Seq[Resource] {
	return func(yield func(Resource) bool) {
		m.mu.RLock()
		all := make([]Resource, 0, m.st.nResources)
		for ci := range m.st.allContacts() {
			for ri := range m.st.resourcesOf(ci) {
				all = append(all, m.resourceSnapshot(ri, nil))
			}
		}
		m.mu.RUnlock()
		for _, r := range all {
			if !yield(r) {
				return
			}
		}
	}
}

// ApplyPresence applies a decoded presence and returns the events it caused,
// possibly none. The model copies what it keeps; the events share p's
// Status slice and annotation descriptions.
//
// Presence with MUC user data belongs to rooms (package mucwatch) and is
// ignored, as is presence from the account's own session.
func (m *Model) ApplyPresence(p *presence.Presence) []Event {
	return m.AppendPresence(nil, p)
}

// AppendPresence is ApplyPresence appending to dst, so that a hot path can
// reuse one slice of events.
func (m *Model) AppendPresence(dst []Event, p *presence.Presence) []Event {
	if p.MUC != nil || p.From.Equal(jid.JID{}) {
		return dst
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.From.Equal(m.account) {
		return dst
	}
	now := m.now()
	m.res.Reset()
	switch p.Type {
	case stanza.AvailablePresence:
		dst = m.applyAvailable(dst, p, now)
	case stanza.UnavailablePresence:
		stale.RejectExcluded(p, &m.res)
		dst = m.rejected(dst, p.From)
		dst = m.applyUnavailable(dst, p)
	default:
		// Subscription, probe and error presence change no presence state.
		stale.RejectExcluded(p, &m.res)
		dst = m.rejected(dst, p.From)
	}
	m.st.maybeShrink()
	return dst
}

func (m *Model) applyAvailable(dst []Event, p *presence.Presence, now time.Time) []Event {
	full := p.FromString()
	// The bare JID's string is a prefix of the from attribute: no allocation
	// on this path, which every presence of a burst takes.
	key, _ := fastjid.Split(full)
	if tooLarge(full, p) {
		return append(dst, Event{Kind: EventRejected, JID: p.From, Err: errLimit("bytes per resource", maxRecord)})
	}
	isOwn := p.From.Bare().Equal(m.account.Bare())
	ci := m.st.lookup(key)
	var ri resourceRef
	if ci != 0 {
		ri, _ = m.st.findResource(ci, full)
	}
	added := ri == 0
	changed := added || !stateMatches(m.st.get(m.st.resource(ri).state), &p.State)
	if changed {
		m.scratch = appendState(m.scratch[:0], full, &p.State)
	}
	stranger := !isOwn && (ci == 0 || !m.st.contact(ci).inRoster)
	if ev, ok := m.checkBytes(p, ri, changed, stranger); !ok {
		return append(dst, ev)
	}
	if ci == 0 {
		if !isOwn && m.stats.Strangers >= m.maxStrangers {
			return append(dst, Event{Kind: EventRejected, JID: p.From, Err: errLimit("strangers", m.maxStrangers)})
		}
		ci = m.st.addContact(key)
	}
	if added {
		c := m.st.contact(ci)
		if int(c.nres) >= m.maxResources {
			m.dropIfEmpty(ci)
			return append(dst, Event{Kind: EventRejected, JID: p.From, Err: errLimit("resources per contact", m.maxResources)})
		}
		if c.nres == 0 && !c.inRoster && !isOwn {
			m.stats.Strangers++
		}
		ri = m.st.addResource(ci)
	}
	r := m.st.resource(ri)
	oldBytes := r.blockBytes()
	marks := m.readMarks(m.st.get(r.marks))
	wasStale := marks.Stale()
	if changed {
		r.state = m.st.put(r.state, m.scratch)
	}
	r.delay = m.stampOf(p.Delay)
	r.updated = m.stampOf(now)
	marks = stale.Apply(marks, p, m.account, now, &m.res)
	if wasStale || marks.Stale() {
		// Descriptions may change without a change of mark: store what the
		// presence left, when it differs.
		m.scratch = m.appendMarks(m.scratch[:0], marks)
		if !bytes.Equal(m.scratch, m.st.get(r.marks)) {
			r.marks = m.st.put(r.marks, m.scratch)
		}
	}
	m.charge(ci, stranger, r.blockBytes()-oldBytes)
	switch isStale := marks.Stale(); {
	case isStale && !wasStale:
		m.stats.Stale++
	case !isStale && wasStale:
		m.stats.Stale--
	}

	dst = m.rejected(dst, p.From)
	snap := Resource{JID: p.From, State: p.State, Marks: marks, Updated: now}
	resent := stale.Annotated(p)
	switch {
	case added:
		dst = append(dst, Event{Kind: EventAvailable, JID: p.From, Resource: snap, Resent: resent})
	case changed:
		dst = append(dst, Event{Kind: EventUpdated, JID: p.From, Resource: snap, Resent: resent})
	}
	for _, ch := range m.res.Changes {
		kind := EventStale
		if ch.Kind == psa.MarkRemoved {
			kind = EventRestored
		}
		dst = append(dst, Event{Kind: kind, JID: p.From, Resource: snap, Mark: ch.Mark, Resent: resent})
	}
	return dst
}

// tooLarge reports whether what the model would keep of p's state and
// annotations could be over maxRecord. Only presence built by hand can be:
// the presence package's limits keep decoded presence far below, and its
// statuses short, so the loops below are short.
func tooLarge(full string, p *presence.Presence) bool {
	n := len(full) + len(p.Caps.Hash) + len(p.Caps.Node) + len(p.Caps.Ver)
	for _, t := range p.Status {
		n += len(t.Lang) + len(t.Value)
	}
	for _, a := range p.Annotations {
		for _, d := range a.Descriptions {
			n += len(d.Lang) + len(d.Text)
		}
	}
	return n > maxRecord/4
}

// rejected turns the scratch rejections into events.
func (m *Model) rejected(dst []Event, from jid.JID) []Event {
	for _, rj := range m.res.Rejected {
		dst = append(dst, Event{Kind: EventRejected, JID: from, Err: rj.Err, Annotation: rj.Annotation})
	}
	return dst
}

// applyUnavailable removes the resource p is from (all of the contact's
// resources when p is from a bare JID).
func (m *Model) applyUnavailable(dst []Event, p *presence.Presence) []Event {
	full := p.FromString()
	key, resource := fastjid.Split(full)
	ci := m.st.lookup(key)
	if ci == 0 {
		return dst
	}
	if resource == "" {
		// From the bare JID: every resource is gone (RFC 6121 §4.5.3 allows it,
		// and a probe to an offline contact answers so).
		return m.removeResources(dst, ci, func(resourceRef) bool { return true })
	}
	if ri, prev := m.st.findResource(ci, full); ri != 0 {
		dst = m.removeResource(dst, ci, ri, prev, &p.From)
	}
	return dst
}

// removeResources removes the resources of contact ci for which drop
// reports true.
func (m *Model) removeResources(dst []Event, ci contactRef, drop func(resourceRef) bool) []Event {
	var prev resourceRef
	for ri := range m.st.resourcesOf(ci) {
		if drop(ri) {
			dst = m.removeResource(dst, ci, ri, prev, nil)
		} else {
			prev = ri
		}
	}
	return dst
}

// removeResource removes resource ri of contact ci, which follows prev in
// the contact's list (0 when ri is first), and the contact when nothing is
// left of it. from is the resource's JID when the caller has it, else nil.
func (m *Model) removeResource(dst []Event, ci contactRef, ri, prev resourceRef, from *jid.JID) []Event {
	snap := m.resourceSnapshot(ri, from)
	r := m.st.resource(ri)
	c := m.st.contact(ci)
	if r.marked() {
		m.stats.Stale--
	}
	own := snap.JID.Bare().Equal(m.account.Bare())
	m.charge(ci, !c.inRoster && !own, -r.blockBytes())
	m.st.freeResource(ci, ri, prev)
	if c.nres == 0 && !c.inRoster && !own {
		m.stats.Strangers--
	}
	m.dropIfEmpty(ci)
	return append(dst, Event{Kind: EventUnavailable, JID: snap.JID, Resource: snap})
}

// MarkDisconnected marks every resource psa.LocalDisconnected, for when the
// account's own stream has dropped: no update can arrive until it is back.
// It returns one EventStale per resource newly marked.
func (m *Model) MarkDisconnected() []Event {
	evs, _ := m.MarkDisconnectedUpTo(-1)
	return evs
}

// MarkDisconnectedUpTo is MarkDisconnected with a bound on the memory of
// the events: every resource is marked, but events are built only while
// their estimated size (the event and the strings of its snapshot) stays
// within maxBytes; omitted counts the resources marked without an event.
// A negative maxBytes means no bound. The models are current either way: a
// caller that omits events tells its user to read the snapshots again, as
// after an overflow.
func (m *Model) MarkDisconnectedUpTo(maxBytes int) (evs []Event, omitted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mark := stale.LocalMark(m.account, m.now())
	return m.remark(nil, false, func(marks psa.Marks) (psa.Marks, psa.Mark, bool) {
		next, change, _ := marks.With(mark)
		return next, mark, change != psa.MarkUnchanged
	}, EventStale, false, maxBytes)
}

// remark applies change to the marks of every resource of the contacts
// that in accepts (nil: every contact), or only of the marked ones when
// removing, stores what change returns when it reports a change, and
// returns an event of kind for each, with the mark change returns and
// resent, built only while their estimated size stays within maxBytes
// (omitted counts the others). Callers hold m.mu.
func (m *Model) remark(in func(contactRef) bool, removing bool, change func(psa.Marks) (next psa.Marks, ev psa.Mark, ok bool), kind EventKind, resent bool, maxBytes int) (evs []Event, omitted int) {
	size := 0
	for ci := range m.st.allContacts() {
		if in != nil && !in(ci) {
			continue
		}
		stranger := m.isStranger(ci)
		for ri := range m.st.resourcesOf(ci) {
			if removing && !m.st.resource(ri).marked() {
				continue
			}
			marks := m.readMarks(m.st.get(m.st.resource(ri).marks))
			next, ev, ok := change(marks)
			if !ok {
				continue
			}
			m.replaceMarks(ci, ri, stranger, marks, next)
			if !m.withinEvents(ri, &size, maxBytes) {
				omitted++
				continue
			}
			snap := m.resourceSnapshot(ri, nil)
			evs = append(evs, Event{Kind: kind, JID: snap.JID, Resource: snap, Mark: ev, Resent: resent})
		}
	}
	m.st.maybeShrink() // replaced marks may have freed storage
	return evs, omitted
}

// replaceMarks stores next as the marks of resource ri of contact ci in
// place of marks, keeping the count of stale resources and the byte
// budget in step.
func (m *Model) replaceMarks(ci contactRef, ri resourceRef, stranger bool, marks, next psa.Marks) {
	switch {
	case !marks.Stale() && next.Stale():
		m.stats.Stale++
	case marks.Stale() && !next.Stale():
		m.stats.Stale--
	}
	r := m.st.resource(ri)
	old := r.blockBytes()
	m.scratch = m.appendMarks(m.scratch[:0], next)
	r.marks = m.st.put(r.marks, m.scratch)
	m.charge(ci, stranger, r.blockBytes()-old)
}

// Sweep removes every resource that still carries the psa.LocalDisconnected
// mark: after a reconnect and a settle window, presence that the server did
// not send again is gone. It returns one EventUnavailable per resource.
func (m *Model) Sweep() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var dst []Event
	for ci := range m.st.allContacts() {
		dst = m.removeResources(dst, ci, func(ri resourceRef) bool {
			r := m.st.resource(ri)
			return r.marked() && stale.HasLocal(m.readMarks(m.st.get(r.marks)), m.account)
		})
	}
	m.st.maybeShrink()
	return dst
}

// dropIfEmpty forgets contact ci when it has neither an item nor resources.
func (m *Model) dropIfEmpty(ci contactRef) {
	if c := m.st.contact(ci); !c.inRoster && c.nres == 0 {
		m.st.freeContact(ci)
	}
}

// resourceSnapshot decodes resource ri. full, when not nil, is its JID,
// which then need not be parsed again.
func (m *Model) resourceSnapshot(ri resourceRef, full *jid.JID) Resource {
	r := m.st.resource(ri)
	var s Resource
	s.JID, s.State = m.readState(m.st.get(r.state), full)
	s.Delay = m.timeOf(r.delay)
	s.Marks = m.readMarks(m.st.get(r.marks))
	s.Updated = m.timeOf(r.updated)
	return s
}

func (m *Model) contactSnapshot(ci contactRef) Contact {
	c := m.st.contact(ci)
	s := Contact{JID: m.parseJID(m.st.get(c.key)), InRoster: c.inRoster}
	if c.inRoster {
		s.Item = m.readItem(s.JID, m.st.get(c.item))
	}
	if c.nres > 0 {
		s.Resources = make([]Resource, 0, c.nres)
		for ri := range m.st.resourcesOf(ci) {
			s.Resources = append(s.Resources, m.resourceSnapshot(ri, nil))
		}
	}
	return s
}

func errLimit(what string, n int) error {
	return fmt.Errorf("%w: %s capped at %d", ErrLimit, what, n)
}

// ClearDisconnected removes the psa.LocalDisconnected mark from every
// resource, for when the account's stream was resumed (XEP-0198) and the
// stanzas the server kept meanwhile were applied: nothing was lost, so every
// entry is as current as before the drop, and no resource is swept. It
// returns one EventRestored per resource, built only while their estimated
// size stays within maxBytes (negative: no bound), as MarkDisconnectedUpTo
// does; omitted counts the resources cleared without an event. Resent is
// false: there is nothing to verify.
func (m *Model) ClearDisconnected(maxBytes int) (evs []Event, omitted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	by := m.account.Bare()
	return m.remark(nil, true, func(marks psa.Marks) (psa.Marks, psa.Mark, bool) {
		return marks.Without(by)
	}, EventRestored, false, maxBytes)
}
