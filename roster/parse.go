package roster

import (
	"encoding/xml"
	"errors"
	"fmt"
	"slices"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/xmltok"
)

// Limits on what ReadItems keeps of an item.
const (
	MaxGroups     = 32
	MaxGroupBytes = 512
	MaxNameBytes  = 1024
)

// ErrBadItem reports a malformed roster item (no JID, a JID that does not
// parse, an unknown subscription), which ReadItems skips.
var ErrBadItem = errors.New("roster: malformed roster item")

// ReadItems reads the roster items inside a jabber:iq:roster query element
// whose start was read, up to and including its end: the body of a roster
// result or push (RFC 6121 §2.1). A malformed item is skipped and reported
// with ErrBadItem once all were read; any other error is the reader's. What
// an item may make the caller keep is bounded: names are truncated to
// MaxNameBytes, groups to MaxGroupBytes, and an item keeps at most MaxGroups
// groups. Unknown elements and attributes are skipped.
func ReadItems(r xml.TokenReader) ([]Item, error) {
	var (
		items []Item
		bad   error
	)
	err := xmltok.Children(r, func(t xml.StartElement) error {
		if t.Name.Local != "item" {
			return xmltok.Skip(r)
		}
		it, err := readItem(r, t)
		switch {
		case err == nil:
			if len(items) == cap(items) {
				// Double: append grows a large slice by a quarter, which allocates
				// five times the final size over a large roster.
				items = slices.Grow(items, max(len(items), 16))
			}
			items = append(items, it)
		case errors.Is(err, ErrBadItem):
			bad = err
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return items, bad
}

func readItem(r xml.TokenReader, start xml.StartElement) (Item, error) {
	var it Item
	var bad error
	for _, at := range start.Attr {
		if at.Name.Space != "" {
			continue
		}
		switch at.Name.Local {
		case "jid":
			j, err := jid.Parse(at.Value)
			if err != nil {
				bad = fmt.Errorf("%w: jid: %w", ErrBadItem, err)
			}
			it.JID = j.Bare()
		case "name":
			it.Name = xmltok.Truncate(at.Value, MaxNameBytes)
		case "subscription":
			switch at.Value {
			case SubscriptionNone, SubscriptionTo, SubscriptionFrom, SubscriptionBoth, SubscriptionRemove:
				it.Subscription = at.Value
			default:
				bad = fmt.Errorf("%w: subscription %q", ErrBadItem, xmltok.Truncate(at.Value, 16))
			}
		case "ask":
			it.Ask = at.Value == "subscribe"
		case "approved":
			it.Approved = at.Value == "true" || at.Value == "1"
		}
	}
	if it.JID.Equal(jid.JID{}) && bad == nil {
		bad = fmt.Errorf("%w: no jid", ErrBadItem)
	}
	err := xmltok.Children(r, func(t xml.StartElement) error {
		if t.Name.Local != "group" {
			return xmltok.Skip(r)
		}
		g, _, err := xmltok.ReadText(r, MaxGroupBytes)
		if err == nil && len(it.Groups) < MaxGroups {
			it.Groups = append(it.Groups, g)
		}
		return err
	})
	if err != nil {
		return it, err
	}
	return it, bad
}
