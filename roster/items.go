package roster

import (
	"bytes"
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
	if m.stats.Items == 0 {
		// The first fetch: one event per item. Growing the slice by appending
		// would allocate five times its final size (append grows large slices
		// by a quarter), tens of megabytes for a large roster.
		dst = make([]Event, 0, len(items))
		m.st.growContacts(len(items))
	}
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
	for ci := range m.st.allContacts() {
		c := m.st.contact(ci)
		if !c.inRoster {
			continue
		}
		if _, ok := seen[string(m.st.get(c.key))]; !ok {
			dst = m.removeItem(dst, ci)
		}
	}
	m.st.maybeShrink()
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
		if ci := m.st.lookup(key); ci != 0 && m.st.contact(ci).inRoster {
			evs := m.removeItem(nil, ci)
			m.st.maybeShrink()
			return evs, nil
		}
		return nil, nil
	}
	return m.setItem(nil, key, item), nil
}

func (m *Model) setItem(dst []Event, key string, it Item) []Event {
	m.scratch = appendItem(m.scratch[:0], &it)
	if len(m.scratch)+len(key) > maxRecord {
		return append(dst, Event{Kind: EventRejected, JID: it.JID, Item: it, Err: errLimit("bytes per item", maxRecord)})
	}
	ci := m.st.lookup(key)
	if ci == 0 {
		ci = m.st.addContact(key)
	}
	c := m.st.contact(ci)
	if c.inRoster {
		if bytes.Equal(m.scratch, m.st.get(c.item)) {
			return dst
		}
		c.item = m.st.put(c.item, m.scratch)
		return append(dst, Event{Kind: EventItemUpdated, JID: it.JID, Item: it})
	}
	if c.nres > 0 && !it.JID.Equal(m.account.Bare()) {
		// A stranger with presence joins the roster.
		m.stats.Strangers--
		m.stats.StrangerBytes -= int(c.bytes)
	}
	c.item, c.inRoster = m.st.put(c.item, m.scratch), true
	m.stats.Items++
	return append(dst, Event{Kind: EventItemAdded, JID: it.JID, Item: it})
}

func (m *Model) removeItem(dst []Event, ci contactRef) []Event {
	c := m.st.contact(ci)
	bare := m.parseJID(m.st.get(c.key))
	old := m.readItem(bare, m.st.get(c.item))
	c.item, c.inRoster = m.st.put(c.item, nil), false
	m.stats.Items--
	dst = append(dst, Event{Kind: EventItemRemoved, JID: old.JID, Item: old})
	if c.nres > 0 && !bare.Equal(m.account.Bare()) {
		// Its presence stays, as a stranger's, until it goes unavailable.
		m.stats.Strangers++
		m.stats.StrangerBytes += int(c.bytes)
		if m.stats.Strangers > m.maxStrangers || m.stats.StrangerBytes > m.maxStrangerBytes {
			// No room for one more stranger: drop its presence rather than break
			// a limit. Removing the last resource counts the stranger out.
			return m.removeResources(dst, ci, func(resourceRef) bool { return true })
		}
	}
	m.dropIfEmpty(ci)
	return dst
}
