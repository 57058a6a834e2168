package mucwatch

import (
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/fastjid"
	"github.com/psakit/psakit/internal/stale"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// ApplyPresence applies a decoded presence and returns the events it caused,
// possibly none. handled is false when the presence is not from a room the
// model tracks: the client then gives it to the roster. The model keeps p's
// Status slice, status codes and annotation descriptions: the caller must
// not modify them afterwards.
//
// Presence from a room we are not in (left, kicked or destroyed) is handled
// and ignored, except our own unavailable presence that confirms a Leaving call.
// Presence from the room's bare JID (room avatars, XEP-0486) concerns no
// occupant and is ignored, unless it is an error answering our join. A
// presence without status 110 never changes our own occupant: from our own
// occupant JID, it is refused with an EventRejected event (ErrNotSelf).
func (m *Model) ApplyPresence(p *presence.Presence) (events []Event, handled bool) {
	return m.AppendPresence(nil, p)
}

// AppendPresence is ApplyPresence appending to dst, so that a hot path can
// reuse one slice of events.
func (m *Model) AppendPresence(dst []Event, p *presence.Presence) ([]Event, bool) {
	if m.tracked.Load() == 0 || p.From.Equal(jid.JID{}) {
		return dst, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.lookup(p)
	if r == nil {
		return dst, false
	}
	now := m.now()
	m.res.Reset()
	c := cause{resent: p.Type == stanza.AvailablePresence && stale.Annotated(p)}
	switch p.Type {
	case stanza.AvailablePresence:
		if !r.state.in() || p.From.Equal(r.jid) {
			return dst, true
		}
		dst = m.applyAvailable(dst, r, p, now, &c)
	case stanza.UnavailablePresence:
		if p.From.Equal(r.jid) {
			return dst, true
		}
		stale.RejectExcluded(p, &m.res)
		dst = m.rejected(dst, r, p.From)
		dst = m.applyUnavailable(dst, r, p, now, &c)
	case stanza.ErrorPresence:
		stale.RejectExcluded(p, &m.res)
		dst = m.rejected(dst, r, p.From)
		dst = m.applyError(dst, r, p)
		return dst, true
	default:
		// Subscription and probe presence mean nothing in a room.
		stale.RejectExcluded(p, &m.res)
		return m.rejected(dst, r, p.From), true
	}
	return m.settle(dst, r, &c), true
}

// lookup returns the room p is from, nil when it is not tracked.
func (m *Model) lookup(p *presence.Presence) *room {
	if m.last != nil && m.last.jid.Equal(p.From.Bare()) {
		return m.last
	}
	key, _ := fastjid.Split(p.FromString())
	r := m.rooms[key]
	if r != nil {
		m.last = r
	}
	return r
}

// cause remembers, during one operation on a room, the marks that may have
// flipped its staleness: the first one added and the first one removed.
type cause struct {
	added, removed psa.Mark
	resent         bool // the presence applied carried annotations
}

func (c *cause) note(kind psa.MarkChange, mk psa.Mark) {
	switch {
	case kind != psa.MarkRemoved && c.added.Condition == "":
		c.added = mk
	case kind == psa.MarkRemoved && c.removed.Condition == "":
		c.removed = mk
	}
}

func (m *Model) applyAvailable(dst []Event, r *room, p *presence.Presence, now time.Time, c *cause) []Event {
	_, nick := fastjid.Split(p.FromString())
	self := p.MUC.Has(110)
	o := r.occupants[nick]
	if o != nil && o.Self && !self {
		return append(dst, Event{Kind: EventRejected, Room: r.jid, JID: p.From, Err: ErrNotSelf})
	}
	if ev, ok := m.fits(r, o, nick, p, self); !ok {
		return append(dst, ev)
	}
	added := o == nil
	if added {
		if !self && m.full(r) {
			return append(dst, Event{Kind: EventRejected, Room: r.jid, JID: p.From, Err: errLimit("occupants per room", m.maxOccupants)})
		}
		o = &occ{}
		o.JID, o.Nick = p.From, nick
		r.occupants[nick] = o
		m.stats.Occupants++
	}
	changed := o.update(p)
	o.Updated = now
	o.epoch = r.epoch
	r.updated = now
	m.setMarks(r, o, stale.Apply(o.Marks, p, m.account, now, &m.res))
	if self && !o.Self {
		dst = m.makeSelf(dst, r, o, c)
		changed = true
	}

	dst = m.rejected(dst, r, p.From)
	snap := o.Occupant
	switch {
	case added:
		dst = append(dst, Event{Kind: EventOccupantAvailable, Room: r.jid, JID: o.JID, Occupant: snap, Codes: codesOf(p), Resent: c.resent})
	case changed:
		dst = append(dst, Event{Kind: EventOccupantUpdated, Room: r.jid, JID: o.JID, Occupant: snap, Codes: codesOf(p), Resent: c.resent})
	}
	for _, ch := range m.res.Changes {
		kind := EventOccupantStale
		if ch.Kind == psa.MarkRemoved {
			kind = EventOccupantRestored
		}
		if o.Self {
			// Only marks on our own occupant concern the room: a mark on
			// another occupant, whoever set it, is about that occupant.
			c.note(ch.Kind, ch.Mark)
		}
		dst = append(dst, Event{Kind: kind, Room: r.jid, JID: o.JID, Occupant: snap, Mark: ch.Mark, Resent: c.resent})
	}
	if o.Self && o.Nick != r.nick {
		// Our nick is the one of our own occupant, as the service spells it:
		// assigned (210) or changed by the service.
		old := r.nick
		r.nick = o.Nick
		dst = append(dst, Event{Kind: EventNickChanged, Room: r.jid, JID: o.JID, Occupant: o.Occupant, OldNick: old, Codes: codesOf(p)})
	}
	if self {
		dst = m.selfAvailable(dst, r, o, p, c)
	}
	return dst
}

// update applies the content of the available presence p to o and reports
// whether anything a user sees changed.
func (o *occ) update(p *presence.Presence) bool {
	changed := !o.State.SameContent(p.State)
	o.State = p.State
	if p.MUC != nil {
		it := &p.MUC.Item
		if it.Role != "" && it.Role != o.Role {
			o.Role, changed = it.Role, true
		}
		if it.Affiliation != "" && it.Affiliation != o.Affiliation {
			o.Affiliation, changed = it.Affiliation, true
		}
		if !it.JID.Equal(jid.JID{}) && !it.JID.Equal(o.RealJID) {
			o.RealJID, changed = it.JID, true
		}
	}
	if p.OccupantID != "" && p.OccupantID != o.OccupantID {
		o.OccupantID, changed = p.OccupantID, true
	}
	return changed
}

// makeSelf makes o our own occupant. We are in a room once: an earlier own
// occupant under another nick is gone.
func (m *Model) makeSelf(dst []Event, r *room, o *occ, c *cause) []Event {
	if old := r.self; old != nil && old != o {
		dst = m.removeOccupant(dst, r, old, Event{Kind: EventOccupantUnavailable}, c)
	}
	o.Self = true
	r.self = o
	for _, mk := range o.Marks {
		c.note(psa.MarkAdded, mk)
	}
	return dst
}

// selfAvailable handles our own available presence, o: the end of a join or
// rejoin.
func (m *Model) selfAvailable(dst []Event, r *room, o *occ, p *presence.Presence, c *cause) []Event {
	codes := codesOf(p)
	if r.state != StateJoining && r.state != StateRejoining {
		return dst
	}
	// The join is complete. The service sent the occupant list before this
	// presence: whoever was not in it is gone.
	for _, mk := range r.marks {
		c.note(psa.MarkRemoved, mk)
	}
	r.marks = nil
	r.verdict = VerdictNone
	r.removal = Removal{}
	r.leavePending = false
	r.created = p.MUC.Has(201)
	dst = m.sweep(dst, r, c)
	m.setState(r, StateJoined)
	dst = append(dst, Event{Kind: EventRoomJoined, Room: r.jid, JID: o.JID, Occupant: o.Occupant, Codes: codes})
	if r.created {
		dst = append(dst, Event{Kind: EventRoomCreated, Room: r.jid, JID: o.JID, Occupant: o.Occupant, Codes: codes})
	}
	return dst
}

func (m *Model) applyUnavailable(dst []Event, r *room, p *presence.Presence, now time.Time, c *cause) []Event {
	self := p.MUC.Has(110)
	if r.state == StateLeft {
		if self {
			// The service confirms our leave.
			dst = append(dst, Event{Kind: EventRoomLeft, Room: r.jid, JID: p.From, Codes: codesOf(p), Removal: removalOf(p)})
			m.removeRoom(r)
		}
		return dst
	}
	if !r.state.in() {
		return dst
	}
	removal := removalOf(p)
	if self && r.leavePending && !removes(p) {
		// The confirmation of a leave that Joining or Rejoining overtook (a plain
		// 110, XEP-0045 §7.14): the occupant list being sent is the new one.
		r.leavePending = false
		return dst
	}
	r.updated = now
	if p.MUC != nil && p.MUC.Destroy != nil {
		// A destruction concerns the whole room, whoever's presence carries it.
		return m.exit(dst, r, p, StateDestroyed, EventRoomDestroyed, c)
	}
	_, nick := fastjid.Split(p.FromString())
	o := r.occupants[nick]
	if o != nil && o.Self && !self {
		return append(dst, Event{Kind: EventRejected, Room: r.jid, JID: p.From, Err: ErrNotSelf})
	}
	if p.MUC.Has(303) && p.MUC.Item.Nick != "" {
		return m.rename(dst, r, o, p, now, c)
	}
	if self {
		if removal.Technical() {
			return m.exit(dst, r, p, StateKicked, EventRoomDropped, c)
		}
		return m.exit(dst, r, p, StateKicked, EventRoomKicked, c)
	}
	if o != nil {
		dst = m.removeOccupant(dst, r, o, Event{Kind: EventOccupantUnavailable, Codes: codesOf(p), Removal: removalOf(p)}, c)
	}
	return dst
}

// rename applies a nick change (status 303): o, if known, is now known by
// the new nick of p's item. The available presence from the new nick
// follows.
func (m *Model) rename(dst []Event, r *room, o *occ, p *presence.Presence, now time.Time, c *cause) []Event {
	newNick := p.MUC.Item.Nick
	self := p.MUC.Has(110)
	codes := codesOf(p)
	newJID, err := r.jid.WithResource(newNick)
	if err != nil {
		// The new nick is no valid resourcepart: the occupant is gone under the
		// old one, and whatever comes next will be a new occupant.
		if o != nil {
			dst = m.removeOccupant(dst, r, o, Event{Kind: EventOccupantUnavailable, Codes: codes, Removal: removalOf(p)}, c)
		}
		return dst
	}
	if o == nil {
		// Nobody to rename. If it is us, the available presence from the new
		// nick, with status 110, tells our nick.
		return dst
	}
	newNick = newJID.Resourcepart() // as the occupant's JID spells it: the key
	if other := r.occupants[newNick]; other != nil && other != o {
		if other.Self && !self {
			// Our own occupant is ours until a presence with 110 says
			// otherwise: o is gone from under its old nick, and presence from
			// our JID without 110 will be refused.
			dst = m.removeOccupant(dst, r, o, Event{Kind: EventOccupantUnavailable, Codes: codes, Removal: removalOf(p)}, c)
			return append(dst, Event{Kind: EventRejected, Room: r.jid, JID: p.From, Err: ErrNotSelf})
		}
		// The service says the nick is o's now: whoever we had under it left
		// without our seeing it.
		dst = m.removeOccupant(dst, r, other, Event{Kind: EventOccupantUnavailable}, c)
	}
	delete(r.occupants, o.Nick)
	r.occupants[newNick] = o
	old := o.Nick
	o.JID, o.Nick = newJID, newNick
	r.recount(o)
	o.Updated = now
	o.epoch = r.epoch
	if self && !o.Self {
		dst = m.makeSelf(dst, r, o, c)
	}
	if o.Self {
		r.nick = newNick
	}
	return append(dst, Event{Kind: EventNickChanged, Room: r.jid, JID: newJID, Occupant: o.Occupant, OldNick: old, Codes: codes})
}

// exit takes us out of a room: kicked or destroyed. The occupants go without
// events of their own.
func (m *Model) exit(dst []Event, r *room, p *presence.Presence, state RoomState, kind EventKind, c *cause) []Event {
	var me Occupant
	if r.self != nil {
		me = r.self.Occupant
	}
	ours := me.JID
	if p.MUC.Has(110) {
		ours = p.From
	}
	m.clearRoom(r)
	r.removal = removalOf(p)
	m.setState(r, state)
	return append(dst, Event{Kind: kind, Room: r.jid, JID: ours, Occupant: me, Codes: codesOf(p), Removal: r.removal})
}

// applyError handles an error presence: the answer to a join, a rejoin or a
// presence we sent while in the room.
func (m *Model) applyError(dst []Event, r *room, p *presence.Presence) []Event {
	err := newJoinError(r.jid, p.Error, p.Lang)
	switch r.state {
	case StateJoining, StateRejoining:
		ours, jerr := r.jid.WithResource(r.nick)
		if jerr != nil {
			ours = p.From
		}
		m.removeRoom(r)
		return append(dst, Event{Kind: EventRoomJoinFailed, Room: r.jid, JID: ours, Err: err})
	case StateJoined, StateStale:
		return append(dst, Event{Kind: EventRoomError, Room: r.jid, JID: p.From, Err: err})
	}
	return dst
}

// removalOf returns what an unavailable presence says about the removal.
func removalOf(p *presence.Presence) Removal {
	if p.MUC == nil {
		return Removal{}
	}
	rm := Removal{Codes: p.MUC.Status, Actor: p.MUC.Item.Actor, Reason: p.MUC.Item.Reason}
	if d := p.MUC.Destroy; d != nil {
		rm.Venue = d.Venue
		if d.Reason != "" {
			rm.Reason = d.Reason
		}
	}
	return rm
}

// removes reports whether an unavailable presence tells of a removal, as
// opposed to a plain exit: a removal status code or a destruction.
func removes(p *presence.Presence) bool {
	if p.MUC == nil {
		return false
	}
	for _, c := range p.MUC.Status {
		switch c {
		case 301, 307, 321, 322, 332, 333:
			return true
		}
	}
	return p.MUC.Destroy != nil
}

// rejected turns the scratch rejections into events.
func (m *Model) rejected(dst []Event, r *room, from jid.JID) []Event {
	for _, rj := range m.res.Rejected {
		dst = append(dst, Event{Kind: EventRejected, Room: r.jid, JID: from, Err: rj.Err, Annotation: rj.Annotation})
	}
	return dst
}

// codesOf returns the MUC status codes of p.
func codesOf(p *presence.Presence) []int {
	if p.MUC == nil {
		return nil
	}
	return p.MUC.Status
}
