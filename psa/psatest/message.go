package psatest

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Message describes a message stanza for SendMessage and Room.Say.
type Message struct {
	// From is the sender: any JID, a scripted entity the test plays (a
	// contact, a remote user, a service). Zero means the server's domain.
	// Room.Say ignores it.
	From jid.JID
	// Type is the message type; "" means chat (groupchat for Room.Say).
	Type stanza.MessageType
	// ID is the stanza's id; "" leaves it out.
	ID string
	// Body and Thread are the texts of the body and thread elements; ""
	// leaves each out.
	Body, Thread string
}

func (m Message) tokens(from, to string) []xml.Token {
	var children [][]xml.Token
	if m.Body != "" {
		children = append(children, textEl("body", m.Body))
	}
	if m.Thread != "" {
		children = append(children, textEl("thread", m.Thread))
	}
	return el("", "message", []xml.Attr{
		attr("from", from), attr("to", to), attr("type", string(m.Type)), attr("id", m.ID),
	}, children...)
}

// SendMessage sends the message m to the session to (a full JID), or to
// every session of the user to (a bare JID), as if m.From had sent it, with
// to set to each session's full JID. It returns once the message is
// written, or ErrNoSession when there is no such session.
//
// To wait for a message a client sent, to a scripted entity or anyone else,
// use Session.Next: the server records every stanza a client sends.
func (s *Server) SendMessage(ctx context.Context, to jid.JID, m Message) error {
	from := m.From
	if from.String() == "" {
		from = s.domain
	}
	if m.Type == "" {
		m.Type = stanza.ChatMessage
	}
	s.mu.Lock()
	targets, err := s.targetsLocked(to)
	var items []*outItem
	for _, sess := range targets {
		items = append(items, sess.sendLocked(m.tokens(from.String(), sess.jid.String())))
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return waitWritten(ctx, items)
}

// Say makes the occupant nick (a programmatic occupant or a client's) say
// m in the room: the service sends it, from room@service/nick, to every
// client in the room, as it reflects an occupant's groupchat message. It
// returns ErrNoOccupant when nick is not in the room.
func (r *Room) Say(ctx context.Context, nick string, m Message) error {
	if m.Type == "" {
		m.Type = stanza.GroupChatMessage
	}
	return r.run(ctx, func() ([]*outItem, error) {
		if r.occupantLocked(nick) == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoOccupant, nick)
		}
		var items []*outItem
		for _, o := range r.occupants {
			if o.sess != nil {
				items = append(items, o.sess.sendLocked(m.tokens(r.occupantJID(nick), o.sess.jid.String())))
			}
		}
		return items, nil
	})
}

// SetUnreachable marks the domain (a domain JID; its users and services
// follow) as one the server cannot reach, or reachable again: a message or
// an IQ request a client sends there is then bounced with
// remote-server-not-found, from the JID it was sent to, as a server whose
// server-to-server connection fails does. Presence is not bounced.
// Stanzas to a reachable remote domain are only recorded (Session.Next).
func (s *Server) SetUnreachable(domain jid.JID, unreachable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == nil {
		s.down = make(map[string]bool)
	}
	if unreachable {
		s.down[domain.Domain().String()] = true
	} else {
		delete(s.down, domain.Domain().String())
	}
}

// bounceLocked answers a message or IQ request of sess to an unreachable
// domain with remote-server-not-found, and reports whether it did.
func (s *Server) bounceLocked(sess *Session, st Stanza) bool {
	if st.To.String() == "" || !s.down[st.To.Domain().String()] {
		return false
	}
	switch {
	case st.Name == "message" && st.Type != string(stanza.ErrorMessage):
	case st.Name == "iq" && (st.Type == string(stanza.GetIQ) || st.Type == string(stanza.SetIQ)):
	default:
		return false
	}
	s.replyErrorLocked(sess, st, stanza.RemoteServerNotFound, stanza.Cancel)
	return true
}

// mucPrivateLocked delivers a private message of an occupant (to
// room@service/nick, not groupchat) to the client of the occupant nick, from
// the sender's occupant JID, or answers with the error a service gives.
func (s *Server) mucPrivateLocked(sess *Session, st Stanza) {
	r := s.rooms[st.To.Bare().String()]
	if r == nil {
		s.replyErrorLocked(sess, st, stanza.ItemNotFound, stanza.Cancel)
		return
	}
	me, target := r.occupantOfLocked(sess), r.occupantLocked(st.To.Resourcepart())
	switch {
	case me == nil:
		s.replyErrorLocked(sess, st, stanza.NotAcceptable, stanza.Cancel)
	case target == nil:
		s.replyErrorLocked(sess, st, stanza.ItemNotFound, stanza.Cancel)
	case target.sess != nil:
		target.sess.sendLocked(routed(st.toks, r.occupantJID(me.nick), target.sess.jid.String()))
	}
	// A message to a programmatic occupant is only recorded.
}
