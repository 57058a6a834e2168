package roster

import (
	"fmt"

	"mellium.im/xmpp/jid"
)

// SetItems replaces the roster items with the result of a roster fetch that
// returned the full roster, and records its version (RFC 6121 §2.6; "" when
// the server does not version rosters). It returns item events for what
// changed compared with the items the model had, so a re-fetch after a
// reconnect reports only the differences.
//
// When a versioned fetch returns no items (the roster is unchanged since
// ver), do not call SetItems: the model already holds them.
func (m *Model) SetItems(ver string, items []Item) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ver = ver
	var dst []Event
	seen := make(map[string]struct{}, len(items))
	for _, it := range items {
		it.JID = it.JID.Bare()
		key := it.JID.String()
		if it.Subscription == SubscriptionRemove {
			continue
		}
		seen[key] = struct{}{}
		dst = m.setItem(dst, key, it)
	}
	for key, c := range m.contacts {
		if _, ok := seen[key]; !ok && c.inRoster {
			dst = m.removeItem(dst, key, c)
		}
	}
	return dst
}

// ApplyPush applies a roster push (RFC 6121 §2.1.6) received from from with
// version ver. A push is accepted only from the account's own bare JID or
// with no from at all (mellium turns the account's bare JID into an empty
// from); anything else is a spoofing attempt and is rejected with
// ErrSpoofedPush, which the caller must answer with a service-unavailable
// error. A push with subscription "remove" removes the item.
func (m *Model) ApplyPush(from jid.JID, ver string, item Item) ([]Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !from.Equal(jid.JID{}) && !from.Equal(m.account.Bare()) {
		err := fmt.Errorf("%w: from %s", ErrSpoofedPush, from)
		return []Event{{Kind: EventRejected, JID: from, Item: item, Err: err}}, err
	}
	if ver != "" {
		m.ver = ver
	}
	item.JID = item.JID.Bare()
	key := item.JID.String()
	if item.Subscription == SubscriptionRemove {
		if c := m.contacts[key]; c != nil && c.inRoster {
			return m.removeItem(nil, key, c), nil
		}
		return nil, nil
	}
	return m.setItem(nil, key, item), nil
}

func (m *Model) setItem(dst []Event, key string, it Item) []Event {
	c := m.contacts[key]
	switch {
	case c == nil:
		c = &contact{jid: it.JID}
		m.contacts[key] = c
		m.stats.Contacts++
	case !c.inRoster && len(c.resources) > 0 && !c.jid.Equal(m.account.Bare()):
		// A stranger with presence joins the roster.
		m.stats.Strangers--
	case c.inRoster:
		if c.item.equal(it) {
			return dst
		}
		c.item = it
		return append(dst, Event{Kind: EventItemUpdated, JID: it.JID, Item: it})
	}
	c.item, c.inRoster = it, true
	m.stats.Items++
	return append(dst, Event{Kind: EventItemAdded, JID: it.JID, Item: it})
}

func (m *Model) removeItem(dst []Event, key string, c *contact) []Event {
	old := c.item
	c.item, c.inRoster = Item{}, false
	m.stats.Items--
	dst = append(dst, Event{Kind: EventItemRemoved, JID: old.JID, Item: old})
	if len(c.resources) > 0 && !c.jid.Equal(m.account.Bare()) {
		// Its presence stays, as a stranger's, until it goes unavailable.
		m.stats.Strangers++
		if m.stats.Strangers > m.maxStrangers {
			// No room for one more stranger: drop its presence rather than break
			// the limit. Removing the last resource counts the stranger out.
			for i := len(c.resources) - 1; i >= 0; i-- {
				dst = m.removeResource(dst, key, c, i)
			}
			return dst
		}
	}
	m.dropIfEmpty(key, c)
	return dst
}
