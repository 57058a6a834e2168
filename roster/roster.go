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
// The staleness rules (also in psakit's DESIGN.md):
//   - A trusted annotation from annotator A sets or replaces A's mark on the
//     resource; an empty annotation from A removes A's mark only. A resource
//     is fresh when no mark is left.
//   - An annotated presence carries the presence content as well: it is
//     applied, and a mark that is repeated keeps its Since.
//   - An available presence without annotations is a new delivery from the
//     contact, so it clears every mark. A presence that carries annotations
//     is a re-send and clears only what its trusted annotations clear.
//   - An annotation for a resource the model does not know creates it,
//     marked.
//   - Unavailable presence removes the resource and its marks. Annotations on
//     unavailable, error, probe and subscription presences are rejected.
//   - MarkDisconnected marks every resource psa.LocalDisconnected when the
//     account's own stream drops; any presence received afterwards clears
//     that mark, and Sweep removes the resources that were not refreshed.
//   - Annotations that fail psa.CheckTrust, and malformed ones, are rejected,
//     never applied.
//
// Rejections and limits are reported as EventRejected events, never as
// panics or silently corrupted state.
//
// # Large rosters and the garbage collector
//
// Each online contact costs about 10 heap objects (its strings, JIDs and
// entries), and every garbage collection cycle marks all of them: about
// 0.4 µs per contact on a 2-core machine (BenchmarkMarkModel). A client
// that tracks hundreds of thousands of entries pays this once per cycle,
// and the XML tokenizer's allocations set how often cycles come. Such an
// application should tune the collector for its heap, as any Go program
// with a large live heap does (a higher GOGC, or a GOMEMLIMIT near the
// memory it can afford); this package sets neither. BENCHMARKS.md has the
// figures.
package roster

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

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

func (i Item) equal(o Item) bool {
	return i.JID.Equal(o.JID) && i.Name == o.Name && i.Subscription == o.Subscription &&
		i.Ask == o.Ask && i.Approved == o.Approved && slices.Equal(i.Groups, o.Groups)
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
}

// Option configures a Model.
type Option func(*Model)

// WithMaxResources sets how many resources are kept per bare JID
// (DefaultMaxResources). Presence for more is rejected with ErrLimit.
func WithMaxResources(n int) Option { return func(m *Model) { m.maxResources = max(n, 1) } }

// WithMaxStrangers sets how many bare JIDs that are not in the roster may
// have presence tracked at once (DefaultMaxStrangers). Presence from more is
// rejected with ErrLimit, and when a roster item is removed while the limit
// is reached, its presence is dropped with EventUnavailable events.
func WithMaxStrangers(n int) Option { return func(m *Model) { m.maxStrangers = max(n, 0) } }

// WithClock sets the clock used for Since and Updated (time.Now).
func WithClock(now func() time.Time) Option { return func(m *Model) { m.now = now } }

// Model is a staleness-aware roster. Its zero value is not usable: call New.
type Model struct {
	// Immutable after New.
	maxResources int
	maxStrangers int
	now          func() time.Time

	mu       sync.RWMutex
	account  jid.JID
	ver      string
	contacts map[string]*contact // by bare JID
	stats    Stats
	res      stale.Result // scratch space for Apply, reused under mu
}

// contact is a Model's entry for one bare JID.
type contact struct {
	jid       jid.JID
	item      Item
	inRoster  bool
	resources []Resource
}

func (c *contact) snapshot() Contact {
	s := Contact{JID: c.jid, InRoster: c.inRoster}
	if c.inRoster {
		s.Item = c.item
	}
	if len(c.resources) > 0 {
		s.Resources = slices.Clone(c.resources)
	}
	return s
}

func (c *contact) find(full jid.JID) int {
	for i := range c.resources {
		if c.resources[i].JID.Equal(full) {
			return i
		}
	}
	return -1
}

// New returns an empty model for account, the user's JID (bare, or the full
// JID of the session: presence from the session itself is then ignored).
func New(account jid.JID, opts ...Option) *Model {
	m := &Model{
		account:      account,
		maxResources: DefaultMaxResources,
		maxStrangers: DefaultMaxStrangers,
		now:          time.Now,
		contacts:     make(map[string]*contact),
	}
	for _, o := range opts {
		o(m)
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
	return m.stats
}

// Contact returns a snapshot of the contact with j's bare JID.
func (m *Model) Contact(j jid.JID) (Contact, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := m.contacts[j.Bare().String()]
	if c == nil {
		return Contact{}, false
	}
	return c.snapshot(), true
}

// Resource returns a snapshot of the resource with full JID j.
func (m *Model) Resource(j jid.JID) (Resource, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := m.contacts[j.Bare().String()]
	if c == nil {
		return Resource{}, false
	}
	if i := c.find(j); i >= 0 {
		return c.resources[i], true
	}
	return Resource{}, false
}

// Contacts returns a snapshot of every contact: roster items, and bare JIDs
// outside the roster that have resources. The snapshot is taken when
// iteration starts; the model may change while the loop runs.
func (m *Model) Contacts() iter.Seq[Contact] {
	return func(yield func(Contact) bool) {
		m.mu.RLock()
		all := make([]Contact, 0, len(m.contacts))
		for _, c := range m.contacts {
			all = append(all, c.snapshot())
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
		for _, c := range m.contacts {
			if c.inRoster {
				items = append(items, c.item)
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
		all := make([]Resource, 0, m.stats.Resources)
		for _, c := range m.contacts {
			all = append(all, c.resources...)
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
// possibly none. The model keeps p's Status slice and annotation
// descriptions: the caller must not modify them afterwards.
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
	return dst
}

func (m *Model) applyAvailable(dst []Event, p *presence.Presence, now time.Time) []Event {
	bare := p.From.Bare()
	// The bare JID's string is a prefix of the from attribute: no allocation
	// on this path, which every presence of a burst takes.
	key, _ := presence.SplitJID(p.FromString())
	c := m.contacts[key]
	isOwn := bare.Equal(m.account.Bare())
	if c == nil {
		if !isOwn && m.stats.Strangers >= m.maxStrangers {
			return append(dst, Event{Kind: EventRejected, JID: p.From, Err: errLimit("strangers", m.maxStrangers)})
		}
		c = &contact{jid: bare}
		m.contacts[key] = c
		m.stats.Contacts++
	}
	i := c.find(p.From)
	added := i < 0
	if added {
		if len(c.resources) >= m.maxResources {
			m.dropIfEmpty(key, c)
			return append(dst, Event{Kind: EventRejected, JID: p.From, Err: errLimit("resources per contact", m.maxResources)})
		}
		if len(c.resources) == 0 && !c.inRoster && !isOwn {
			m.stats.Strangers++
		}
		c.resources = append(c.resources, Resource{JID: p.From})
		i = len(c.resources) - 1
		m.stats.Resources++
	}
	r := &c.resources[i]
	wasStale := r.Marks.Stale()
	changed := !r.State.SameContent(p.State)
	r.State = p.State
	r.Updated = now
	r.Marks = stale.Apply(r.Marks, p, m.account, now, &m.res)
	switch isStale := r.Marks.Stale(); {
	case isStale && !wasStale:
		m.stats.Stale++
	case !isStale && wasStale:
		m.stats.Stale--
	}

	dst = m.rejected(dst, p.From)
	snap := *r
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
	from := p.From
	key, resource := presence.SplitJID(p.FromString())
	c := m.contacts[key]
	if c == nil {
		return dst
	}
	if resource == "" {
		// From the bare JID: every resource is gone (RFC 6121 §4.5.3 allows it,
		// and a probe to an offline contact answers so).
		for i := len(c.resources) - 1; i >= 0; i-- {
			dst = m.removeResource(dst, key, c, i)
		}
		return dst
	}
	if i := c.find(from); i >= 0 {
		dst = m.removeResource(dst, key, c, i)
	}
	return dst
}

func (m *Model) removeResource(dst []Event, key string, c *contact, i int) []Event {
	r := c.resources[i]
	// Copy-on-write: snapshots handed out earlier share the old array.
	c.resources = slices.Delete(slices.Clone(c.resources), i, i+1)
	m.stats.Resources--
	if r.Marks.Stale() {
		m.stats.Stale--
	}
	if len(c.resources) == 0 && !c.inRoster && !c.jid.Equal(m.account.Bare()) {
		m.stats.Strangers--
	}
	m.dropIfEmpty(key, c)
	return append(dst, Event{Kind: EventUnavailable, JID: r.JID, Resource: r})
}

// dropIfEmpty forgets a contact that has neither an item nor resources.
func (m *Model) dropIfEmpty(key string, c *contact) {
	if !c.inRoster && len(c.resources) == 0 {
		delete(m.contacts, key)
		m.stats.Contacts--
	}
}

// MarkDisconnected marks every resource psa.LocalDisconnected, for when the
// account's own stream has dropped: no update can arrive until it is back.
// It returns one EventStale per resource newly marked.
func (m *Model) MarkDisconnected() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	mark := stale.LocalMark(m.account, now)
	var dst []Event
	for _, c := range m.contacts {
		for i := range c.resources {
			r := &c.resources[i]
			wasStale := r.Marks.Stale()
			var change psa.MarkChange
			r.Marks, change, _ = r.Marks.With(mark)
			if change == psa.MarkUnchanged {
				continue
			}
			if !wasStale {
				m.stats.Stale++
			}
			dst = append(dst, Event{Kind: EventStale, JID: r.JID, Resource: *r, Mark: mark})
		}
	}
	return dst
}

// Sweep removes every resource that still carries the psa.LocalDisconnected
// mark: after a reconnect and a settle window, presence that the server did
// not send again is gone. It returns one EventUnavailable per resource.
func (m *Model) Sweep() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var dst []Event
	for key, c := range m.contacts {
		for i := len(c.resources) - 1; i >= 0; i-- {
			if stale.HasLocal(c.resources[i].Marks, m.account) {
				dst = m.removeResource(dst, key, c, i)
			}
		}
	}
	return dst
}

func errLimit(what string, n int) error {
	return fmt.Errorf("%w: %s capped at %d", ErrLimit, what, n)
}
