package psatest

import (
	"encoding/xml"
	"slices"
	"sort"
	"strconv"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/psa"
)

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

func (s *Server) roomLocked(rj jid.JID) *Room {
	r := s.rooms[rj.String()]
	if r == nil {
		r = &Room{srv: s, jid: rj}
		s.rooms[rj.String()] = r
	}
	return r
}

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

func (r *Room) changeNickLocked(o *occupant, newNick string) []*outItem {
	items := r.broadcastLocked(o, mucPresence{unavailable: true, newNick: newNick, codes: []int{codeNewNick}})
	o.nick = newNick
	return append(items, r.broadcastLocked(o, mucPresence{content: true})...)
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
// client in the room, and delivers private messages between occupants.
func (s *Server) mucMessageLocked(sess *Session, st Stanza) {
	r := s.rooms[st.To.Bare().String()]
	if st.Type != "groupchat" && st.Type != "error" && st.To.Resourcepart() != "" {
		s.mucPrivateLocked(sess, st)
		return
	}
	if st.Type != "groupchat" || st.To.Resourcepart() != "" || st.To.Localpart() == "" {
		return // other messages are only recorded
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
