package psatest

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/psa"
)

// A Room is a room of the server's multi-user chat service (XEP-0045),
// scripted by the test. Get it with Server.Room. Its methods are safe for
// concurrent use.
//
// Like a non-persistent room of a real service, a room without occupants
// does not exist: the next join creates it, with status code 201, and makes
// the joiner its owner. SetPersistent keeps it in existence when empty.
// Rooms are non-anonymous by default: occupant presences carry the real
// JID, and self-presence carries status code 100.
type Room struct {
	srv *Server
	jid jid.JID

	// Guarded by srv.mu.
	occupants  []*occupant
	subject    string
	anonymous  bool
	persistent bool
	refuse     stanza.Condition
	selfPing   SelfPingReply
	rewrite    func(string) string
	joins      []Join
	joinsTaken []bool
}

// Occupant describes an occupant of a room.
type Occupant struct {
	Nick string
	// JID is the occupant's real JID; zero for a programmatic occupant added
	// without one.
	JID               jid.JID
	Role, Affiliation string
	// Session is the client session of the occupant, nil for a programmatic
	// occupant.
	Session *Session
}

// SelfPingReply says how a room answers a XEP-0410 self-ping: an IQ ping
// from a joined client to its own occupant JID. The zero value answers with
// a result (the client is joined). A ping from a client that is not joined
// is always answered with not-acceptable, as Prosody does.
type SelfPingReply struct {
	// Condition, when not empty, is the error condition of the answer.
	Condition stanza.Condition
	// Ignore leaves self-pings unanswered, for tests of timeouts.
	Ignore bool
}

// Join is a join attempt a client made: an available presence to an
// occupant JID of a room it was not in, or again to its own occupant JID
// with a MUC <x/> (a rejoin).
type Join struct {
	// Stanza is the presence as the client sent it; Stanza.Presence holds its
	// caps and annotations.
	Stanza
	// Nick is the nickname the client asked for.
	Nick string
	// HasMUC reports whether the presence had <x xmlns='http://jabber.org/protocol/muc'/>.
	HasMUC bool
	// Password is the content of the <password/> element.
	Password string
	// History is the <history/> element, nil when absent.
	History *History
	// Refused is the error condition the join was answered with, "" when it
	// was accepted.
	Refused stanza.Condition
}

// History holds the attributes of the <history/> element of a join, as
// sent; an attribute that was absent is "".
type History struct {
	MaxStanzas, MaxChars, Seconds, Since string
}

// Room returns the room name@MUC-domain, creating its handle on first use.
// It panics if the server has no MUC service (WithMUC) or name is not a
// valid localpart.
func (s *Server) Room(name string) *Room {
	if s.mucDomain.String() == "" {
		panic("psatest: Room needs a MUC service (WithMUC)")
	}
	rj, err := jid.New(name, s.mucDomain.Domainpart(), "")
	if err != nil {
		panic(fmt.Sprintf("psatest: invalid room name %q: %v", name, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomLocked(rj)
}

// JID returns the room's bare JID.
func (r *Room) JID() jid.JID { return r.jid }

// SetPersistent makes the room exist even without occupants (no status 201,
// no owner affiliation for the first joiner), or not.
func (r *Room) SetPersistent(persistent bool) {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	r.persistent = persistent
}

// SetAnonymous makes the room semi-anonymous (no real JIDs in occupant
// presences, no status 100) or, with false, non-anonymous (the default).
func (r *Room) SetAnonymous(anonymous bool) {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	r.anonymous = anonymous
}

// RefuseJoins makes the room answer every join with a presence error of
// condition cond, such as stanza.Conflict, stanza.NotAuthorized,
// stanza.RegistrationRequired, stanza.Forbidden, stanza.ServiceUnavailable
// or stanza.ItemNotFound, with the error type XEP-0045 uses. An empty cond
// accepts joins again.
func (r *Room) RefuseJoins(cond stanza.Condition) {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	r.refuse = cond
}

// SetSelfPing sets how the room answers XEP-0410 self-pings from joined
// clients.
func (r *Room) SetSelfPing(reply SelfPingReply) {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	r.selfPing = reply
}

// RewriteNicks makes the service give joining clients the nickname
// f(requested) instead of the one they asked for; self-presence then carries
// status code 210. nil turns rewriting off.
func (r *Room) RewriteNicks(f func(requested string) string) {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	r.rewrite = f
}

// SetSubject sets the room's subject, sent to each joining client after the
// occupant presences, and sends it to the clients already joined.
func (r *Room) SetSubject(ctx context.Context, subject string) error {
	s := r.srv
	s.mu.Lock()
	r.subject = subject
	var items []*outItem
	for _, o := range r.occupants {
		if o.sess != nil {
			items = append(items, o.sess.sendLocked(r.subjectLocked(o.sess)))
		}
	}
	s.mu.Unlock()
	return waitWritten(ctx, items)
}

// Occupants returns the room's occupants, in the order they joined.
func (r *Room) Occupants() []Occupant {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	out := make([]Occupant, 0, len(r.occupants))
	for _, o := range r.occupants {
		out = append(out, Occupant{Nick: o.nick, JID: o.real, Role: o.role, Affiliation: o.aff, Session: o.sess})
	}
	return out
}

// NextJoin waits for the first join attempt that match accepts (nil accepts
// any) and that no earlier call returned, and returns it. Refused joins are
// included. match runs in the caller's goroutine, without locks held. It
// returns ErrClosed once the server is closed and no recorded join matches.
func (r *Room) NextJoin(ctx context.Context, match func(Join) bool) (Join, error) {
	s := r.srv
	checked := 0
	for {
		s.mu.Lock()
		candidates := r.joins[checked:]
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		for i, j := range candidates {
			if match != nil && !match(j) {
				continue
			}
			s.mu.Lock()
			taken := r.joinsTaken[checked+i]
			r.joinsTaken[checked+i] = true
			s.mu.Unlock()
			if !taken {
				return j, nil
			}
		}
		checked += len(candidates)
		if closed {
			return Join{}, ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Join{}, ctx.Err()
		}
	}
}

// run applies f to the room under the lock and waits for the writes it
// queued.
func (r *Room) run(ctx context.Context, f func() ([]*outItem, error)) error {
	s := r.srv
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	items, err := f()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return waitWritten(ctx, items)
}

// AddOccupant adds a programmatic occupant with the nickname nick, real JID
// real (may be zero), role and affiliation ("participant" and "none" when
// empty), and sends its presence to the clients in the room. It returns
// ErrNickInUse when nick is taken.
func (r *Room) AddOccupant(ctx context.Context, nick string, real jid.JID, role, affiliation string) error {
	if _, err := r.jid.WithResource(nick); err != nil || nick == "" {
		return fmt.Errorf("psatest: invalid nickname %q", nick)
	}
	if role == "" {
		role = "participant"
	}
	if affiliation == "" {
		affiliation = "none"
	}
	return r.run(ctx, func() ([]*outItem, error) {
		if r.occupantLocked(nick) != nil {
			return nil, fmt.Errorf("%w: %s", ErrNickInUse, nick)
		}
		o := &occupant{nick: nick, real: real, role: role, aff: affiliation}
		r.occupants = append(r.occupants, o)
		return r.broadcastLocked(o, mucPresence{content: true}), nil
	})
}

// RemoveOccupant removes the occupant nick, telling every client in the room
// with unavailable presence (status 110 to a client's own occupant), as when
// an occupant leaves.
func (r *Room) RemoveOccupant(ctx context.Context, nick string) error {
	return r.run(ctx, func() ([]*outItem, error) {
		o := r.occupantLocked(nick)
		if o == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoOccupant, nick)
		}
		r.removeLocked(o)
		return r.broadcastLocked(o, mucPresence{unavailable: true, role: "none"}), nil
	})
}

// SetPresence changes the show and status of occupant nick and sends the
// new presence to every client in the room. Being a fresh presence, it
// carries no annotation, and clears those of Annotate.
func (r *Room) SetPresence(ctx context.Context, nick, show, status string) error {
	return r.run(ctx, func() ([]*outItem, error) {
		o := r.occupantLocked(nick)
		if o == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoOccupant, nick)
		}
		o.content = nil
		if show != "" {
			o.content = append(o.content, textEl("show", show)...)
		}
		if status != "" {
			o.content = append(o.content, textEl("status", status)...)
		}
		o.marks = nil
		return r.broadcastLocked(o, mucPresence{content: true}), nil
	})
}

// Annotate re-sends the presence of occupant nick to every client in the
// room with the XEP-0310 annotation ann, as a MUC service does when it can no
// longer deliver that occupant's updates. ann.From, the annotator, defaults
// to the MUC service's domain; another annotator makes a spoofed annotation.
// The room keeps the annotation (until one with no condition from the same
// annotator, or a new presence of the occupant) and includes it in the
// presence that clients joining later receive.
func (r *Room) Annotate(ctx context.Context, nick string, ann psa.Annotation) error {
	if ann.From.String() == "" {
		ann.From = r.srv.mucDomain
	}
	annToks, err := annotationTokens(ann, r.srv.mucDomain)
	if err != nil {
		return err
	}
	return r.run(ctx, func() ([]*outItem, error) {
		o := r.occupantLocked(nick)
		if o == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoOccupant, nick)
		}
		o.marks = slices.DeleteFunc(o.marks, func(m psa.Annotation) bool { return m.From.Equal(ann.From) })
		p := mucPresence{content: true}
		if ann.Restored() {
			p.extra = annToks
		} else {
			o.marks = append(o.marks, ann)
		}
		return r.broadcastLocked(o, p), nil
	})
}

// Kick removes occupant nick with unavailable presence, role none and the
// status codes (307, kicked, when none are given), such as 301 (banned),
// 321 (affiliation change), 322 (members-only), 332 (system shutdown) or
// 333 (technical reasons). Codes 301, 321 and 322 also change the
// affiliation (outcast, none, none). A client's own occupant gets status
// 110 added.
func (r *Room) Kick(ctx context.Context, nick string, codes ...int) error {
	if len(codes) == 0 {
		codes = []int{codeKicked}
	}
	return r.run(ctx, func() ([]*outItem, error) {
		o := r.occupantLocked(nick)
		if o == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoOccupant, nick)
		}
		p := mucPresence{unavailable: true, role: "none", codes: codes}
		switch {
		case slices.Contains(codes, codeBanned):
			p.aff = "outcast"
		case slices.Contains(codes, codeAffiliation), slices.Contains(codes, codeMembersOnly):
			p.aff = "none"
		}
		r.removeLocked(o)
		return r.broadcastLocked(o, p), nil
	})
}

// ChangeNick changes the nickname of occupant oldNick to newNick, as the
// service does on a nick change (XEP-0045 §7.6): unavailable presence from
// the old occupant JID with status 303 and the new nick, then available
// presence from the new one, to every client in the room. It returns
// ErrNickInUse when newNick is taken.
func (r *Room) ChangeNick(ctx context.Context, oldNick, newNick string) error {
	if _, err := r.jid.WithResource(newNick); err != nil || newNick == "" {
		return fmt.Errorf("psatest: invalid nickname %q", newNick)
	}
	return r.run(ctx, func() ([]*outItem, error) {
		o := r.occupantLocked(oldNick)
		if o == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoOccupant, oldNick)
		}
		if r.occupantLocked(newNick) != nil {
			return nil, fmt.Errorf("%w: %s", ErrNickInUse, newNick)
		}
		return r.changeNickLocked(o, newNick), nil
	})
}

// Destroy destroys the room (XEP-0045 §10.9): each client in it gets its
// own unavailable presence, with status 110 and a <destroy/> element naming
// the alternate venue (may be zero) and the reason (may be empty). Every
// occupant, programmatic ones included, is removed; the next join creates
// the room anew, unless it is persistent.
func (r *Room) Destroy(ctx context.Context, venue jid.JID, reason string) error {
	var reasonEl []xml.Token
	if reason != "" {
		reasonEl = textEl("reason", reason)
	}
	destroy := el("", "destroy", []xml.Attr{attr("jid", venue.String())}, reasonEl)
	return r.run(ctx, func() ([]*outItem, error) {
		var items []*outItem
		for _, o := range r.occupants {
			if o.sess != nil {
				items = append(items, o.sess.sendLocked(r.presenceLocked(o, o.sess, mucPresence{
					unavailable: true, role: "none", aff: "none", destroy: destroy,
				})))
			}
		}
		r.occupants = nil
		return items, nil
	})
}

// Forget removes occupant nick without telling anyone, the way a room that
// lost track of a client during an outage looks: the client still believes
// it is joined, and a self-ping tells it otherwise.
func (r *Room) Forget(nick string) error {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	o := r.occupantLocked(nick)
	if o == nil {
		return fmt.Errorf("%w: %s", ErrNoOccupant, nick)
	}
	r.removeLocked(o)
	return nil
}
