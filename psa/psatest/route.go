package psatest

import (
	"encoding/xml"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// handleLocked acts on a stanza the client of sess sent, as a server would.
func (s *Server) handleLocked(sess *Session, st Stanza) {
	if s.smHandleLocked(sess, st) {
		return
	}
	switch st.Name {
	case "presence":
		s.handlePresenceLocked(sess, st)
	case "iq":
		s.handleIQLocked(sess, st)
	case "message":
		s.handleMessageLocked(sess, st)
	}
}

// isMUC reports whether j is at the MUC service.
func (s *Server) isMUC(j jid.JID) bool {
	return s.mucDomain.String() != "" && j.Domain().Equal(s.mucDomain)
}

// isLocalUser reports whether j is an account JID of this server (bare or
// full), rather than the server itself.
func (s *Server) isLocalUser(j jid.JID) bool {
	return j.Localpart() != "" && j.Domain().Equal(s.domain)
}

// routed returns the stanza toks as the server forwards it from sess: with
// from set to the session's full JID and to as given.
func routed(toks []xml.Token, from, to string) []xml.Token {
	out := append([]xml.Token(nil), toks...)
	out[0] = withAttrs(toks[0].(xml.StartElement), attr("from", from), attr("to", to))
	return out
}

func (s *Server) handlePresenceLocked(sess *Session, st Stanza) {
	if isSubscription(st.Type) {
		if st.To.String() != "" {
			s.subscriptionOutLocked(sess, st.Type, st.To)
		}
		return
	}
	if attrValue(st.Attr, "to") != "" {
		switch {
		case s.down[st.To.Domain().String()] == Silent:
			// A blackholed domain: the presence goes nowhere.
		case st.To.String() == "":
			// An invalid to: nothing a test can use.
		case s.isMUC(st.To):
			s.mucPresenceLocked(sess, st)
		case s.isLocalUser(st.To):
			// Directed presence to another local user, delivered as is.
			for _, target := range s.sessionsLocked(st.To) {
				target.sendLocked(routed(st.toks, sess.jid.String(), target.jid.String()))
			}
		}
		// Directed presence to other domains is only recorded.
		return
	}
	switch st.Type {
	case "":
		stCopy := st
		sess.last = &stCopy
		initial := !sess.available
		sess.available = true
		// RFC 6121 §4.2.2: to every available resource of the user, the
		// sender included.
		s.broadcastOwnLocked(sess, st.toks, true)
		if initial {
			// Answer the probes a real server would send: the presence of the
			// user's other resources, then of the contacts online.
			for _, other := range s.sessionsLocked(sess.jid.Bare()) {
				if other != sess && other.available && other.last != nil {
					sess.sendLocked(routed(other.last.toks, other.jid.String(), sess.jid.String()))
				}
			}
			for _, cp := range s.contacts[sess.jid.Bare().String()] {
				sess.sendLocked(routed(cp.toks, cp.from.String(), sess.jid.String()))
			}
		}
	case "unavailable":
		stCopy := st
		sess.last = &stCopy
		if sess.available {
			sess.available = false
			s.broadcastOwnLocked(sess, st.toks, false)
			s.leaveRoomsLocked(sess)
		}
	}
}

// broadcastOwnLocked sends the presence toks from sess to the user's other
// available sessions, and to sess itself when self is true.
func (s *Server) broadcastOwnLocked(sess *Session, toks []xml.Token, self bool) {
	for _, other := range s.sessionsLocked(sess.jid.Bare()) {
		if (other != sess && other.available) || (other == sess && self) {
			other.sendLocked(routed(toks, sess.jid.String(), other.jid.String()))
		}
	}
}

func (s *Server) handleMessageLocked(sess *Session, st Stanza) {
	if s.unreachableLocked(sess, st) {
		return
	}
	to := st.To
	switch {
	case to.String() == "":
	case s.isMUC(to):
		s.mucMessageLocked(sess, st)
	case s.isLocalUser(to):
		targets := s.sessionsLocked(to)
		if len(targets) == 0 && to.Resourcepart() != "" {
			targets = s.sessionsLocked(to.Bare())
		}
		for _, target := range targets {
			if target.available || to.Resourcepart() != "" {
				target.sendLocked(routed(st.toks, sess.jid.String(), attrValue(st.Attr, "to")))
			}
		}
	}
	// Messages to the server or to other domains are only recorded.
}

func (s *Server) handleIQLocked(sess *Session, st Stanza) {
	toAttr := attrValue(st.Attr, "to")
	request := st.Type == string(stanza.GetIQ) || st.Type == string(stanza.SetIQ)
	if s.unreachableLocked(sess, st) {
		return
	}
	switch {
	case toAttr != "" && st.To.String() == "":
		if request {
			s.replyErrorLocked(sess, st, stanza.JIDMalformed, "")
		}
	case toAttr == "" || st.To.Equal(s.domain) || st.To.Equal(sess.jid.Bare()):
		if !request {
			if ch, ok := sess.pending[st.ID]; ok {
				delete(sess.pending, st.ID)
				ch <- st
			}
			return
		}
		s.serverIQLocked(sess, st)
	case s.isMUC(st.To):
		if request {
			s.mucIQLocked(sess, st)
		} else {
			s.mucReplyLocked(sess, st)
		}
	case s.isLocalUser(st.To):
		targets := s.sessionsLocked(st.To)
		if st.To.Resourcepart() == "" || len(targets) == 0 {
			// The server would answer for the account; it knows nothing of it.
			if request {
				s.replyErrorLocked(sess, st, stanza.ServiceUnavailable, "")
			}
			return
		}
		targets[0].sendLocked(routed(st.toks, sess.jid.String(), toAttr))
	case request && !st.To.Domain().Equal(s.domain):
		// IQs to other domains are only recorded, pings to the domain
		// itself answered: the test may answer the others with SendRaw.
		s.remoteIQLocked(sess, st)
	}
}

func feature(v string) []xml.Token {
	return el("", "feature", []xml.Attr{attr("var", v)})
}

// payloadName returns the name of the first child element of the stanza
// toks.
func payloadName(toks []xml.Token) xml.Name {
	for _, tok := range toks[1:] {
		if start, ok := tok.(xml.StartElement); ok {
			return start.Name
		}
	}
	return xml.Name{}
}

// payloadAttr returns an attribute of the first child element.
func payloadAttr(toks []xml.Token, local string) string {
	for _, tok := range toks[1:] {
		if start, ok := tok.(xml.StartElement); ok {
			return attrValue(start.Attr, local)
		}
	}
	return ""
}
