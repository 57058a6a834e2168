package psatest

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"sort"
	"strconv"

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

// occupant is one occupant of a room: a client's session, or a programmatic
// occupant added by the test.
type occupant struct {
	nick      string
	real      jid.JID
	role, aff string
	sess      *Session         // nil for a programmatic occupant
	content   []xml.Token      // presence children: show, status, caps...
	marks     []psa.Annotation // current annotations, one per annotator
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

// MUC status codes the service sends.
const (
	codeNonAnonymous = 100
	codeSelf         = 110
	codeCreated      = 201
	codeNickAssigned = 210
	codeNewNick      = 303
	codeKicked       = 307
	codeBanned       = 301
	codeAffiliation  = 321
	codeMembersOnly  = 322
)

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

func (s *Server) roomLocked(rj jid.JID) *Room {
	r := s.rooms[rj.String()]
	if r == nil {
		r = &Room{srv: s, jid: rj}
		s.rooms[rj.String()] = r
	}
	return r
}

// JID returns the room's bare JID.
func (r *Room) JID() jid.JID { return r.jid }

// occupantJID returns the occupant JID room@service/nick.
func (r *Room) occupantJID(nick string) string {
	j, err := r.jid.WithResource(nick)
	if err != nil {
		return r.jid.String()
	}
	return j.String()
}

// existsLocked reports whether the room exists for the outside world.
func (r *Room) existsLocked() bool { return r.persistent || len(r.occupants) > 0 }

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

func (r *Room) occupantLocked(nick string) *occupant {
	for _, o := range r.occupants {
		if o.nick == nick {
			return o
		}
	}
	return nil
}

func (r *Room) occupantOfLocked(sess *Session) *occupant {
	for _, o := range r.occupants {
		if o.sess == sess {
			return o
		}
	}
	return nil
}

func (r *Room) removeLocked(o *occupant) {
	r.occupants = slices.DeleteFunc(r.occupants, func(x *occupant) bool { return x == o })
}

// mucPresence describes an occupant presence the service sends.
type mucPresence struct {
	unavailable bool
	role, aff   string // override the occupant's when not empty
	newNick     string // status 303
	codes       []int
	destroy     []xml.Token
	content     bool        // include the occupant's presence content and marks
	extra       []xml.Token // further children, before <x/>
}

// presenceLocked builds the presence of occupant o sent to the session to;
// status code 110 is added when o is to's own occupant.
func (r *Room) presenceLocked(o *occupant, to *Session, p mucPresence) []xml.Token {
	role, aff := o.role, o.aff
	if p.role != "" {
		role = p.role
	}
	if p.aff != "" {
		aff = p.aff
	}
	real := ""
	if !r.anonymous && o.real.String() != "" {
		real = o.real.String()
	}
	codes := slices.Clone(p.codes)
	if o.sess != nil && o.sess == to && !slices.Contains(codes, codeSelf) {
		codes = append(codes, codeSelf)
	}
	sort.Ints(codes)
	x := [][]xml.Token{el("", "item", []xml.Attr{
		attr("affiliation", aff), attr("role", role), attr("jid", real), attr("nick", p.newNick),
	})}
	for _, c := range codes {
		x = append(x, el("", "status", []xml.Attr{attr("code", strconv.Itoa(c))}))
	}
	if p.destroy != nil {
		x = append(x, p.destroy)
	}
	var children [][]xml.Token
	if p.content {
		children = append(children, o.content)
		for _, m := range o.marks {
			toks, _ := annotationTokens(m, r.srv.mucDomain)
			children = append(children, toks)
		}
	}
	children = append(children, p.extra, el(nsMUCUser, "x", nil, x...))
	typ := ""
	if p.unavailable {
		typ = "unavailable"
	}
	return el("", "presence", []xml.Attr{
		attr("from", r.occupantJID(o.nick)), attr("to", to.jid.String()), attr("type", typ),
	}, children...)
}

// subjectLocked builds the subject message to the session to.
func (r *Room) subjectLocked(to *Session) []xml.Token {
	return el("", "message", []xml.Attr{
		attr("from", r.jid.String()), attr("to", to.jid.String()), attr("type", "groupchat"), attr("id", newID()),
	}, textEl("subject", r.subject))
}

// broadcastLocked sends, to every session occupant, the presence of o that
// p describes.
func (r *Room) broadcastLocked(o *occupant, p mucPresence) []*outItem {
	var items []*outItem
	for _, x := range r.occupants {
		if x.sess != nil {
			items = append(items, x.sess.sendLocked(r.presenceLocked(o, x.sess, p)))
		}
	}
	if o.sess != nil && !slices.Contains(r.occupants, o) {
		// o has just been removed: it still gets its own presence.
		items = append(items, o.sess.sendLocked(r.presenceLocked(o, o.sess, p)))
	}
	return items
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

func (r *Room) changeNickLocked(o *occupant, newNick string) []*outItem {
	items := r.broadcastLocked(o, mucPresence{unavailable: true, newNick: newNick, codes: []int{codeNewNick}})
	o.nick = newNick
	return append(items, r.broadcastLocked(o, mucPresence{content: true})...)
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

// mucPresenceLocked handles a presence from a client to an occupant JID.
func (s *Server) mucPresenceLocked(sess *Session, st Stanza) {
	if st.To.Localpart() == "" {
		return // presence to the service itself
	}
	r := s.roomLocked(st.To.Bare())
	nick := st.To.Resourcepart()
	me := r.occupantOfLocked(sess)
	switch st.Type {
	case "unavailable":
		if me != nil {
			r.removeLocked(me)
			r.broadcastLocked(me, mucPresence{unavailable: true, role: "none"})
		}
		return
	case "":
	default:
		return // subscriptions and errors are only recorded
	}
	hasX := st.Has(nsMUC, "x")
	content := mucContent(st.toks)
	switch {
	case me == nil:
		r.joinLocked(sess, st, nick, hasX, content)
	case nick == "":
		s.mucErrorLocked(sess, st, stanza.JIDMalformed, "")
	case me.nick == nick && hasX:
		// A rejoin by a client the room still has: send the room state again.
		me.content, me.marks = content, nil
		r.recordJoinLocked(st, nick, hasX, "")
		r.sendRoomStateLocked(sess, me, nil)
		for _, o := range r.occupants {
			if o.sess != nil && o != me {
				o.sess.sendLocked(r.presenceLocked(me, o.sess, mucPresence{content: true}))
			}
		}
	case me.nick == nick:
		me.content, me.marks = content, nil
		r.broadcastLocked(me, mucPresence{content: true})
	case r.occupantLocked(nick) != nil:
		s.mucErrorLocked(sess, st, stanza.Conflict, stanza.Cancel)
	default:
		me.content, me.marks = content, nil
		r.changeNickLocked(me, nick)
	}
}

// mucContent returns the children of a presence the service repeats to
// other occupants: all but the MUC elements.
func mucContent(toks []xml.Token) []xml.Token {
	body := filterChildren(toks, func(start xml.StartElement) bool {
		return start.Name.Space == nsMUC || start.Name.Space == nsMUCUser
	})
	return slices.Clone(inner(body))
}

// mucErrorLocked answers a presence to the room with an error from the
// occupant JID it was sent to.
func (s *Server) mucErrorLocked(sess *Session, st Stanza, cond stanza.Condition, typ stanza.ErrorType) {
	sess.sendLocked(el("", "presence", []xml.Attr{
		attr("from", attrValue(st.Attr, "to")), attr("to", sess.jid.String()),
		attr("type", "error"), attr("id", st.ID),
	}, el(nsMUC, "x", nil), errorEl(cond, typ, "")))
}

// mucJoinErrorType is the error type XEP-0045 gives each join error.
func mucJoinErrorType(cond stanza.Condition) stanza.ErrorType {
	switch cond {
	case stanza.ServiceUnavailable, stanza.ResourceConstraint:
		return stanza.Wait
	case stanza.Conflict, stanza.ItemNotFound, stanza.NotAllowed, stanza.NotAcceptable:
		return stanza.Cancel
	}
	return ""
}

// recordJoinLocked records a join attempt.
func (r *Room) recordJoinLocked(st Stanza, nick string, hasX bool, refused stanza.Condition) {
	j := Join{Stanza: st, Nick: nick, HasMUC: hasX, Refused: refused}
	childElements(st.toks, func(start xml.StartElement, x []xml.Token) {
		if start.Name.Space != nsMUC || start.Name.Local != "x" {
			return
		}
		childElements(x, func(start xml.StartElement, child []xml.Token) {
			switch start.Name.Local {
			case "password":
				for _, tok := range child {
					if cd, ok := tok.(xml.CharData); ok {
						j.Password += string(cd)
					}
				}
			case "history":
				j.History = &History{
					MaxStanzas: attrValue(start.Attr, "maxstanzas"),
					MaxChars:   attrValue(start.Attr, "maxchars"),
					Seconds:    attrValue(start.Attr, "seconds"),
					Since:      attrValue(start.Attr, "since"),
				}
			}
		})
	})
	r.joins = append(r.joins, j)
	r.joinsTaken = append(r.joinsTaken, false)
}

// joinLocked handles a join by a client that is not in the room.
func (r *Room) joinLocked(sess *Session, st Stanza, nick string, hasX bool, content []xml.Token) {
	s := r.srv
	assigned := nick
	if r.rewrite != nil && r.refuse == "" {
		assigned = r.rewrite(nick)
	}
	var refused stanza.Condition
	var typ stanza.ErrorType
	switch {
	case r.refuse != "":
		refused, typ = r.refuse, mucJoinErrorType(r.refuse)
	case nick == "" || assigned == "":
		refused = stanza.JIDMalformed
	case r.occupantLocked(assigned) != nil:
		refused, typ = stanza.Conflict, stanza.Cancel
	}
	if refused == "" {
		if _, err := r.jid.WithResource(assigned); err != nil {
			refused = stanza.JIDMalformed
		}
	}
	r.recordJoinLocked(st, nick, hasX, refused)
	if refused != "" {
		s.mucErrorLocked(sess, st, refused, typ)
		return
	}
	created := !r.existsLocked()
	me := &occupant{nick: assigned, real: sess.jid, role: "participant", aff: "none", sess: sess, content: content}
	if created {
		me.role, me.aff = "moderator", "owner"
	}
	var codes []int
	if created {
		codes = append(codes, codeCreated)
	}
	if assigned != nick {
		codes = append(codes, codeNickAssigned)
	}
	r.occupants = append(r.occupants, me)
	r.sendRoomStateLocked(sess, me, codes)
	for _, o := range r.occupants {
		if o.sess != nil && o != me {
			o.sess.sendLocked(r.presenceLocked(me, o.sess, mucPresence{content: true}))
		}
	}
}

// sendRoomStateLocked sends a joining client the presences of the other
// occupants, its own presence with status 110 (and 100 and codes), and the
// subject.
func (r *Room) sendRoomStateLocked(sess *Session, me *occupant, codes []int) {
	for _, o := range r.occupants {
		if o != me {
			sess.sendLocked(r.presenceLocked(o, sess, mucPresence{content: true}))
		}
	}
	if !r.anonymous {
		codes = append(codes, codeNonAnonymous)
	}
	sess.sendLocked(r.presenceLocked(me, sess, mucPresence{content: true, codes: codes}))
	sess.sendLocked(r.subjectLocked(sess))
}

// leaveRoomsLocked removes the occupants of sess from every room, as the
// user's server announces unavailable presence to the rooms it had joined.
func (s *Server) leaveRoomsLocked(sess *Session) {
	keys := make([]string, 0, len(s.rooms))
	for k := range s.rooms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := s.rooms[k]
		if o := r.occupantOfLocked(sess); o != nil {
			r.removeLocked(o)
			p := mucPresence{unavailable: true, role: "none"}
			for _, x := range r.occupants {
				if x.sess != nil {
					x.sess.sendLocked(r.presenceLocked(o, x.sess, p))
				}
			}
			if !sess.ended {
				sess.sendLocked(r.presenceLocked(o, sess, p))
			}
		}
	}
}

// mucIQLocked answers a get or set to the MUC service, a room, or an
// occupant.
func (s *Server) mucIQLocked(sess *Session, st Stanza) {
	payload := payloadName(st.toks)
	isGet := st.Type == string(stanza.GetIQ)
	discoInfo := isGet && payload == xml.Name{Space: nsDiscoInfo, Local: "query"}
	isPing := isGet && payload == xml.Name{Space: nsPing, Local: "ping"}
	if st.To.Localpart() == "" {
		switch {
		case discoInfo:
			s.replyLocked(sess, st, el(nsDiscoInfo, "query", nil,
				el("", "identity", []xml.Attr{attr("category", "conference"), attr("type", "text"), attr("name", "Chatrooms")}),
				feature(nsDiscoInfo), feature(nsMUC)))
		case isGet && payload == xml.Name{Space: nsDiscoItems, Local: "query"}:
			keys := make([]string, 0, len(s.rooms))
			for k, r := range s.rooms {
				if r.existsLocked() {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			var items [][]xml.Token
			for _, k := range keys {
				items = append(items, el("", "item", []xml.Attr{attr("jid", k)}))
			}
			s.replyLocked(sess, st, el(nsDiscoItems, "query", nil, items...))
		default:
			s.replyErrorLocked(sess, st, stanza.ServiceUnavailable, "")
		}
		return
	}
	r := s.rooms[st.To.Bare().String()]
	if r == nil || !r.existsLocked() {
		if isPing && st.To.Resourcepart() != "" {
			s.replyErrorLocked(sess, st, stanza.NotAcceptable, stanza.Cancel)
			return
		}
		s.replyErrorLocked(sess, st, stanza.ItemNotFound, "")
		return
	}
	if st.To.Resourcepart() == "" {
		if st.Type == string(stanza.SetIQ) && payload == (xml.Name{Space: nsMUCOwner, Local: "query"}) {
			// The owner's configuration (XEP-0045 §10.1): accepted from an
			// owner in the room, whatever it says, like an instant room.
			if me := r.occupantOfLocked(sess); me != nil && me.aff == "owner" {
				s.replyLocked(sess, st, nil)
			} else {
				s.replyErrorLocked(sess, st, stanza.Forbidden, stanza.Auth)
			}
			return
		}
		if discoInfo {
			anon, persist := "muc_nonanonymous", "muc_temporary"
			if r.anonymous {
				anon = "muc_semianonymous"
			}
			if r.persistent {
				persist = "muc_persistent"
			}
			s.replyLocked(sess, st, el(nsDiscoInfo, "query", nil,
				el("", "identity", []xml.Attr{attr("category", "conference"), attr("type", "text"), attr("name", r.jid.Localpart())}),
				feature(nsDiscoInfo), feature(nsMUC), feature(anon), feature(persist)))
			return
		}
		s.replyErrorLocked(sess, st, stanza.ServiceUnavailable, "")
		return
	}
	me := r.occupantOfLocked(sess)
	target := r.occupantLocked(st.To.Resourcepart())
	switch {
	case me == nil:
		// Prosody: only occupants may address occupants.
		s.replyErrorLocked(sess, st, stanza.NotAcceptable, stanza.Cancel)
	case target == nil:
		s.replyErrorLocked(sess, st, stanza.ItemNotFound, "")
	case target == me && isPing:
		switch {
		case r.selfPing.Ignore:
		case r.selfPing.Condition != "":
			s.replyErrorLocked(sess, st, r.selfPing.Condition, "")
		default:
			s.replyLocked(sess, st, nil)
		}
	case isPing:
		s.replyLocked(sess, st, nil) // as if the occupant answered
	case target.sess != nil:
		// Forwarded to the occupant's client, from the sender's occupant JID.
		target.sess.sendLocked(routed(st.toks, r.occupantJID(me.nick), target.sess.jid.String()))
	}
	// Other IQs to programmatic occupants are only recorded: the test may
	// answer them with SendRaw.
}

// mucReplyLocked forwards an IQ answer addressed to an occupant JID to that
// occupant's client, from the answering client's occupant JID.
func (s *Server) mucReplyLocked(sess *Session, st Stanza) {
	r := s.rooms[st.To.Bare().String()]
	if r == nil || st.To.Resourcepart() == "" {
		return
	}
	me, target := r.occupantOfLocked(sess), r.occupantLocked(st.To.Resourcepart())
	if me != nil && target != nil && target.sess != nil {
		target.sess.sendLocked(routed(st.toks, r.occupantJID(me.nick), target.sess.jid.String()))
	}
}

// mucMessageLocked reflects a groupchat message of an occupant to every
// client in the room.
func (s *Server) mucMessageLocked(sess *Session, st Stanza) {
	r := s.rooms[st.To.Bare().String()]
	if st.Type != "groupchat" || st.To.Resourcepart() != "" || st.To.Localpart() == "" {
		return // private messages are only recorded
	}
	var me *occupant
	if r != nil {
		me = r.occupantOfLocked(sess)
	}
	if me == nil {
		s.replyErrorLocked(sess, st, stanza.NotAcceptable, stanza.Cancel)
		return
	}
	for _, o := range r.occupants {
		if o.sess != nil {
			o.sess.sendLocked(routed(st.toks, r.occupantJID(me.nick), o.sess.jid.String()))
		}
	}
}
