package client

import (
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// The log of sent stanzas stays bounded whatever the application sends, an
// entry matches only its recipient, once, and not after sentTTL.
func TestSentLog(t *testing.T) {
	var l sentLog
	to := jid.MustParse("juliet@capulet.lit/balcony")
	other := jid.MustParse("mercutio@verona.lit")
	t0 := time.Unix(1_000_000, 0)
	for i := range 10 * maxSent {
		l.add(sentStanza{id: fmt.Sprint(i), to: to, at: t0})
		if len(l.byID) > maxSent || len(l.order) > 2*maxSent {
			t.Fatalf("after %d: %d entries, %d in order", i+1, len(l.byID), len(l.order))
		}
	}
	last := fmt.Sprint(10*maxSent - 1)
	if _, ok := l.take("0", to, t0); ok {
		t.Error("the oldest entry was kept past maxSent")
	}
	if _, ok := l.take(last, other, t0); ok {
		t.Error("an error from another JID matched")
	}
	if _, ok := l.take(last, to, t0); !ok {
		t.Error("the newest entry did not match its recipient")
	}
	if _, ok := l.take(last, to, t0); ok {
		t.Error("one stanza matched two errors")
	}
	l.add(sentStanza{id: "late", to: to, at: t0})
	if _, ok := l.take("late", to, t0.Add(sentTTL)); ok {
		t.Error("an entry matched after sentTTL")
	}
	// Taking entries keeps the order bounded too.
	for i := range 10 * maxSent {
		id := fmt.Sprint("t", i)
		l.add(sentStanza{id: id, to: to, at: t0})
		l.take(id, to, t0)
		if len(l.order) > 2*maxSent {
			t.Fatalf("order grew to %d", len(l.order))
		}
	}
}
