package psatest

import (
	"encoding/xml"
	"errors"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// matchSender reports whether sender is pattern (full), or under it (bare
// or domain JID).
func matchSender(sender, pattern jid.JID) bool {
	switch {
	case pattern.Resourcepart() != "":
		return sender.Equal(pattern)
	case pattern.Localpart() != "":
		return sender.Bare().Equal(pattern)
	default:
		return sender.Domain().Equal(pattern)
	}
}

// contactPresence is a presence stored with SetContactPresence.
type contactPresence struct {
	from jid.JID
	toks []xml.Token
}

// SetContactPresence stores raw, a presence stanza whose from is a contact's
// full JID, as that contact's current presence for the user (a bare JID).
// Every session of the user receives it right after its initial available
// presence, the way a real server answers its presence probes; sessions
// already available receive it at once. Its to attribute is set to each
// receiving session. A later call for the same from replaces it.
func (s *Server) SetContactPresence(user jid.JID, raw string) error {
	toks, err := parseElement(raw)
	if err != nil {
		return err
	}
	start := toks[0].(xml.StartElement)
	from, err := jid.Parse(attrValue(start.Attr, "from"))
	if start.Name.Local != "presence" || err != nil || from.String() == "" {
		return errors.New("psatest: SetContactPresence needs a presence stanza with a valid from")
	}
	user = user.Bare()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.contacts[user.String()]
	replaced := false
	for i := range list {
		if list[i].from.Equal(from) {
			list[i].toks, replaced = toks, true
		}
	}
	if !replaced {
		list = append(list, contactPresence{from: from, toks: toks})
	}
	s.contacts[user.String()] = list
	for _, sess := range s.sessionsLocked(user) {
		if sess.available {
			sess.sendLocked(routed(toks, from.String(), sess.jid.String()))
		}
	}
	return nil
}

// ClearContactPresence forgets the stored presence from from (see
// SetContactPresence): the contact is offline. Sessions of the user that are
// available receive unavailable presence from it.
func (s *Server) ClearContactPresence(user, from jid.JID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearContactsLocked(user.Bare(), func(j jid.JID) bool { return j.Equal(from) })
}

// clearContactsLocked forgets the stored presences of user whose from
// match accepts, and sends unavailable from each to user's available
// sessions.
func (s *Server) clearContactsLocked(user jid.JID, match func(jid.JID) bool) {
	list := s.contacts[user.String()]
	kept := list[:0:0]
	for _, cp := range list {
		if !match(cp.from) {
			kept = append(kept, cp)
			continue
		}
		s.deliverLocked(user, presenceToks(cp.from, jid.JID{}, string(stanza.UnavailablePresence)))
	}
	s.contacts[user.String()] = kept
}
