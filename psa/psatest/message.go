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

// Reachability is how the server treats a remote domain: a domain other
// than its own, and a MUC service of its own as well (SetReachability).
type Reachability uint8

// The ways a remote domain can be reached.
const (
	// Reachable: the default. The domain answers XEP-0199 pings addressed
	// to it (a bare domain JID) with a result, as any server with a working
	// server-to-server link does; other stanzas to it are recorded and left
	// for the test to answer (SendRaw, SendMessage).
	Reachable Reachability = iota
	// Bouncing: the server cannot reach the domain and says so at once, as
	// when its server-to-server connection is refused: a message or an IQ
	// request to the domain, its users or its services is answered with
	// remote-server-not-found (type cancel, no by), from the JID it was sent
	// to. Presence is not bounced.
	Bouncing
	// Silent: the domain's link is blackholed: stanzas to it, pings and
	// presence included, are recorded and never answered or delivered, as
	// when the server waits on a connection whose packets vanish.
	Silent
)

// SetReachability sets how the server treats stanzas to the domain (a
// domain JID; its users and services follow). Tests of a client's remote
// checks use it to cut a domain off (Bouncing, Silent) and heal it
// (Reachable).
func (s *Server) SetReachability(domain jid.JID, r Reachability) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == nil {
		s.down = make(map[string]Reachability)
	}
	if r == Reachable {
		delete(s.down, domain.Domain().String())
	} else {
		s.down[domain.Domain().String()] = r
	}
}

// SetUnreachable is SetReachability with Bouncing when unreachable is true,
// Reachable when it is false.
func (s *Server) SetUnreachable(domain jid.JID, unreachable bool) {
	r := Reachable
	if unreachable {
		r = Bouncing
	}
	s.SetReachability(domain, r)
}

// unreachableLocked handles a stanza of sess to a domain that is not
// Reachable: it bounces a message or IQ request to a Bouncing domain with
// remote-server-not-found and drops anything to a Silent one, and reports
// whether it did.
func (s *Server) unreachableLocked(sess *Session, st Stanza) bool {
	if st.To.String() == "" {
		return false
	}
	switch s.down[st.To.Domain().String()] {
	case Silent:
		return true
	case Bouncing:
	default:
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

// remoteIQLocked answers a request to a remote domain that is reachable: a
// ping to the domain itself gets a result, anything else is only recorded.
func (s *Server) remoteIQLocked(sess *Session, st Stanza) {
	if st.To.Localpart() == "" && st.To.Resourcepart() == "" && st.Type == string(stanza.GetIQ) &&
		payloadName(st.toks) == (xml.Name{Space: nsPing, Local: "ping"}) {
		s.replyLocked(sess, st, nil)
	}
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
