package psatest

import (
	"context"
	"encoding/xml"

	"mellium.im/xmpp/jid"
	mroster "mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/roster"
)

// rosterData is a user's roster and its version.
type rosterData struct {
	ver   string
	items []roster.Item
	gen   int // versions generated for client roster sets
}

func (s *Server) rosterLocked(user jid.JID) *rosterData {
	key := user.Bare().String()
	r := s.rosters[key]
	if r == nil {
		r = &rosterData{}
		s.rosters[key] = r
	}
	return r
}

// setItem updates or adds item, or removes it when its subscription is
// "remove".
func (r *rosterData) setItem(item roster.Item) {
	item.JID = item.JID.Bare()
	for i, it := range r.items {
		if it.JID.Equal(item.JID) {
			if item.Subscription == roster.SubscriptionRemove {
				r.items = append(r.items[:i:i], r.items[i+1:]...)
			} else {
				r.items[i] = item
			}
			return
		}
	}
	if item.Subscription != roster.SubscriptionRemove {
		r.items = append(r.items, item)
	}
}

// SetRoster replaces the roster of user (RFC 6121) with items, at version
// ver. The server advertises roster versioning: a client that fetches the
// roster with ver gets an empty result (its cache is current), any other
// client the full roster with ver. Nothing is pushed; see PushRoster.
func (s *Server) SetRoster(user jid.JID, ver string, items ...roster.Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rosterLocked(user)
	r.ver = ver
	r.items = nil
	for _, it := range items {
		r.setItem(it)
	}
}

// PushRoster changes one item of the roster of user (removing it when its
// Subscription is "remove"), sets the roster version to ver, and sends the
// roster push, with no from as real servers do, to every session of the user.
// It waits for each session's answer and returns the first error answer as a
// stanza.Error. Sessions bound later get the new roster when they fetch it.
// A push with a spoofed from is a SendRaw.
func (s *Server) PushRoster(ctx context.Context, user jid.JID, ver string, item roster.Item) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	r := s.rosterLocked(user)
	r.ver = ver
	r.setItem(item)
	var reqs []*request
	for _, sess := range s.sessionsLocked(user.Bare()) {
		reqs = append(reqs, sess.requestLocked(stanza.SetIQ, "", rosterQuery(ver, item)))
	}
	s.mu.Unlock()
	for _, req := range reqs {
		if _, err := req.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// rosterQuery builds a roster query element with ver and items.
func rosterQuery(ver string, items ...roster.Item) []xml.Token {
	var children [][]xml.Token
	for _, it := range items {
		var groups [][]xml.Token
		for _, g := range it.Groups {
			groups = append(groups, textEl("group", g))
		}
		ask, approved := "", ""
		if it.Ask {
			ask = "subscribe"
		}
		if it.Approved {
			approved = "true"
		}
		children = append(children, el("", "item", []xml.Attr{
			attr("jid", it.JID.Bare().String()), attr("name", it.Name),
			attr("subscription", it.Subscription), attr("ask", ask), attr("approved", approved),
		}, groups...))
	}
	start := xml.StartElement{Name: xml.Name{Space: nsRoster, Local: "query"}, Attr: []xml.Attr{attr("ver", ver)}}
	toks := []xml.Token{start}
	for _, c := range children {
		toks = append(toks, c...)
	}
	return append(toks, start.End())
}

// rosterIQLocked answers a roster get or set from the client.
func (s *Server) rosterIQLocked(sess *Session, st Stanza) {
	r := s.rosterLocked(sess.jid)
	if st.Type == string(stanza.GetIQ) {
		if ver := payloadAttr(st.toks, "ver"); ver != "" && ver == r.ver {
			// RFC 6121 §2.6.3: the cached roster is current.
			s.replyLocked(sess, st, nil)
			return
		}
		s.replyLocked(sess, st, rosterQuery(r.ver, r.items...))
		return
	}
	// A roster set: one item, applied, then pushed with a new version.
	var iq mroster.IQ
	if err := st.Decode(&iq); err != nil || len(iq.Query.Item) != 1 {
		s.replyErrorLocked(sess, st, stanza.BadRequest, "")
		return
	}
	in := iq.Query.Item[0]
	item := roster.Item{JID: in.JID.Bare(), Name: in.Name, Subscription: in.Subscription, Groups: in.Group}
	if item.Subscription != roster.SubscriptionRemove {
		// A client may not set the subscription (RFC 6121 §2.1.2.2).
		item.Subscription = ""
		for _, old := range r.items {
			if old.JID.Equal(item.JID) {
				item.Subscription, item.Ask, item.Approved = old.Subscription, old.Ask, old.Approved
			}
		}
	}
	s.replyLocked(sess, st, nil)
	s.pushItemLocked(sess.jid, item)
}
