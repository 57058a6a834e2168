package psatest

import (
	"encoding/xml"
	"fmt"
	"strconv"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/roster"
)

// isSubscription reports whether typ is one of the four subscription
// presence types of RFC 6121 §3.
func isSubscription(typ string) bool {
	switch stanza.PresenceType(typ) {
	case stanza.SubscribePresence, stanza.SubscribedPresence, stanza.UnsubscribePresence, stanza.UnsubscribedPresence:
		return true
	}
	return false
}

// item returns r's item for contact, or a new one with subscription none.
func (r *rosterData) item(contact jid.JID) roster.Item {
	for _, it := range r.items {
		if it.JID.Equal(contact) {
			return it
		}
	}
	return roster.Item{JID: contact, Subscription: roster.SubscriptionNone}
}

// pushItemLocked stores item in user's roster with a new version and pushes
// it to every session of user (not waiting for the answers).
func (s *Server) pushItemLocked(user jid.JID, item roster.Item) {
	r := s.rosterLocked(user)
	r.setItem(item)
	r.gen++
	r.ver = "psatest-" + strconv.Itoa(r.gen)
	for _, sess := range s.sessionsLocked(user.Bare()) {
		sess.requestLocked(stanza.SetIQ, "", rosterQuery(r.ver, item))
	}
}

// The subscription states an item moves between (RFC 6121 §3 and appendix
// A): the first state of each pair becomes the second.
var (
	// We sent subscribed, or received unsubscribe answered: the contact may
	// or may not see our presence.
	grantFrom  = map[string]string{roster.SubscriptionNone: roster.SubscriptionFrom, roster.SubscriptionTo: roster.SubscriptionBoth}
	cancelFrom = map[string]string{roster.SubscriptionFrom: roster.SubscriptionNone, roster.SubscriptionBoth: roster.SubscriptionTo}
	// The contact sent subscribed, or unsubscribed: we do or no longer see
	// their presence.
	grantTo  = map[string]string{roster.SubscriptionNone: roster.SubscriptionTo, roster.SubscriptionFrom: roster.SubscriptionBoth}
	cancelTo = map[string]string{roster.SubscriptionTo: roster.SubscriptionNone, roster.SubscriptionBoth: roster.SubscriptionFrom}
)

// move returns the state the transitions give sub, and whether it changed.
func move(transitions map[string]string, sub string) (string, bool) {
	if next, ok := transitions[sub]; ok {
		return next, true
	}
	return sub, false
}

// withoutTo ends the user's subscription to the contact's presence, or the
// request for it.
func withoutTo(item roster.Item) (roster.Item, bool) {
	var changed bool
	item.Subscription, changed = move(cancelTo, item.Subscription)
	if item.Ask {
		item.Ask, changed = false, true
	}
	return item, changed
}

// subscriptionOutLocked handles a subscription presence the client of sess
// sent to contact: the user's server updates the user's roster item and
// pushes it, then routes the presence from the user's bare JID (RFC 6121
// §3.1.2, §3.2.2, §3.3.2); after subscribed, the user's available sessions'
// presence goes to the contact too, after unsubscribed their unavailable.
// The contact's server is this one for a local contact; other domains are
// only recorded, and the test answers for them with Subscription.
func (s *Server) subscriptionOutLocked(sess *Session, typ string, contact jid.JID) {
	user := sess.jid.Bare()
	contact = contact.Bare()
	r := s.rosterLocked(user)
	item := r.item(contact)
	changed := false
	switch stanza.PresenceType(typ) {
	case stanza.SubscribePresence:
		if item.Subscription != roster.SubscriptionTo && item.Subscription != roster.SubscriptionBoth && !item.Ask {
			item.Ask, changed = true, true
		}
	case stanza.SubscribedPresence:
		item.Subscription, changed = move(grantFrom, item.Subscription)
	case stanza.UnsubscribePresence:
		item, changed = withoutTo(item)
	case stanza.UnsubscribedPresence:
		item.Subscription, changed = move(cancelFrom, item.Subscription)
	}
	if changed {
		s.pushItemLocked(user, item)
	}
	if !s.isLocalUser(contact) {
		return
	}
	s.subscriptionInLocked(contact, user, typ)
	switch stanza.PresenceType(typ) {
	case stanza.SubscribedPresence:
		for _, own := range s.sessionsLocked(user) {
			if own.available && own.last != nil {
				s.deliverLocked(contact, routed(own.last.toks, own.jid.String(), ""))
			}
		}
	case stanza.UnsubscribedPresence:
		for _, own := range s.sessionsLocked(user) {
			if own.available {
				s.deliverLocked(contact, presenceToks(own.jid, jid.JID{}, string(stanza.UnavailablePresence)))
			}
		}
	}
}

// Subscription plays a subscription presence of type typ (subscribe,
// subscribed, unsubscribe or unsubscribed) that contact sends to user, as
// user's server handles it when it arrives from contact's server (RFC 6121
// §3.1.3, §3.2.3, §3.3.3): it updates user's roster item for contact and
// pushes it to user's sessions, and delivers the presence to user's
// available sessions. A subscribe from a contact that is already subscribed
// to user, and a subscribed that answers no request user sent, are not
// delivered. Pre-approvals (RFC 6121 §3.4) are not modelled.
func (s *Server) Subscription(user, contact jid.JID, typ stanza.PresenceType) error {
	if !isSubscription(string(typ)) {
		return fmt.Errorf("psatest: %q is not a subscription presence type", typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.subscriptionInLocked(user.Bare(), contact.Bare(), string(typ))
	return nil
}

// subscriptionInLocked applies a subscription presence of type typ from
// contact to user (both bare), as user's server does on receipt.
func (s *Server) subscriptionInLocked(user, contact jid.JID, typ string) {
	r := s.rosterLocked(user)
	item := r.item(contact)
	changed, deliver := false, true
	switch stanza.PresenceType(typ) {
	case stanza.SubscribePresence:
		// Already subscribed to us: the server answers for the user (RFC 6121
		// §3.1.3 step 2), which a local contact's server then applies.
		if item.Subscription == roster.SubscriptionFrom || item.Subscription == roster.SubscriptionBoth {
			deliver = false
			if s.isLocalUser(contact) {
				s.subscriptionInLocked(contact, user, string(stanza.SubscribedPresence))
			}
		}
	case stanza.SubscribedPresence:
		if !item.Ask {
			deliver = false // not asked for (RFC 6121 §3.1.5)
			break
		}
		item.Subscription, _ = move(grantTo, item.Subscription)
		item.Ask, changed = false, true
	case stanza.UnsubscribePresence:
		item.Subscription, changed = move(cancelFrom, item.Subscription)
	case stanza.UnsubscribedPresence:
		item, changed = withoutTo(item)
		// The contact's presence is no longer the user's to see.
		s.clearContactsLocked(user, func(j jid.JID) bool { return j.Bare().Equal(contact) })
	}
	if changed {
		s.pushItemLocked(user, item)
	}
	if deliver {
		s.deliverLocked(user, presenceToks(contact, jid.JID{}, typ))
	}
}

// deliverLocked sends the presence toks to every available session of the
// local user, addressed to the session.
func (s *Server) deliverLocked(user jid.JID, toks []xml.Token) {
	from := attrValue(toks[0].(xml.StartElement).Attr, "from")
	for _, sess := range s.sessionsLocked(user.Bare()) {
		if sess.available {
			sess.sendLocked(routed(toks, from, sess.jid.String()))
		}
	}
}

// presenceToks returns an empty presence of type typ from from to to (no to
// attribute when to is zero).
func presenceToks(from, to jid.JID, typ string) []xml.Token {
	attrs := []xml.Attr{attr("from", from.String()), attr("type", typ)}
	if to.String() != "" {
		attrs = append(attrs, attr("to", to.String()))
	}
	return el("", "presence", attrs, nil)
}
