package psatest_test

import (
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/psa/psatest"
)

// isPush matches roster pushes whose item has every attribute in want
// (e.g. subscription='to') and, when noAsk, no ask attribute.
func isPush(contact string, noAsk bool, want ...string) func(received) bool {
	return func(r received) bool {
		if r.name != "iq" || r.typ != "set" || !strings.Contains(r.raw, `jid="`+contact+`"`) || noAsk && strings.Contains(r.raw, `ask=`) {
			return false
		}
		for _, w := range want {
			if !strings.Contains(r.raw, w) {
				return false
			}
		}
		return true
	}
}

// isSubscription matches a subscription presence of typ from from.
func isSubscription(from string, typ stanza.PresenceType) func(received) bool {
	return func(r received) bool { return r.name == "presence" && r.from == from && r.typ == string(typ) }
}

// A contact on another domain, played by the test with Subscription.
func TestSubscriptionRemoteContact(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	c := dial(t, srv, romeoLane, "pw")
	c.send(`<presence/>`)
	if _, err := srv.WaitAvailable(testContext(t), romeoLane); err != nil {
		t.Fatal(err)
	}
	jb := juliet.Bare()
	i := 0

	// romeo asks: his item is pending (ask), and the request is recorded for
	// capulet.lit.
	c.send(`<presence type='subscribe' to='juliet@capulet.lit'/>`)
	c.next(&i, isPush(jb.String(), false, `subscription="none"`, `ask="subscribe"`))
	sess, _ := srv.WaitSession(testContext(t), romeoLane)
	if _, err := sess.Next(testContext(t), func(st psatest.Stanza) bool {
		return st.Name == "presence" && st.Type == "subscribe" && st.To.Equal(jb)
	}); err != nil {
		t.Fatal(err)
	}

	// A subscribed nobody asked for is dropped; the one juliet sends after
	// romeo's request is applied and delivered.
	first := i
	must(t, srv.Subscription(romeo, jid.MustParse("nurse@capulet.lit"), stanza.SubscribedPresence))
	must(t, srv.Subscription(romeo, jb, stanza.SubscribedPresence))
	// The server pushes the item first, then delivers the presence.
	c.next(&i, isPush(jb.String(), true, `subscription="to"`))
	got := c.next(&first, func(r received) bool { return r.name == "presence" && r.typ != "" })
	if got.from != jb.String() || got.typ != "subscribed" {
		t.Fatalf("first subscription presence: %s", got.raw)
	}

	// juliet asks back; romeo approves: both.
	must(t, srv.Subscription(romeo, jb, stanza.SubscribePresence))
	c.next(&i, isSubscription(jb.String(), stanza.SubscribePresence))
	c.send(`<presence type='subscribed' to='juliet@capulet.lit'/>`)
	c.next(&i, isPush(jb.String(), true, `subscription="both"`))

	// A subscribe from a contact already subscribed is answered by the server,
	// not delivered: the next thing romeo sees is the unsubscribed after it.
	first = i
	must(t, srv.Subscription(romeo, jb, stanza.SubscribePresence))
	must(t, srv.Subscription(romeo, jb, stanza.UnsubscribedPresence))
	c.next(&i, isPush(jb.String(), true, `subscription="from"`))
	got = c.next(&first, func(r received) bool { return r.name == "presence" && r.typ != "" })
	if got.typ != "unsubscribed" {
		t.Fatalf("after a subscribe from a subscribed contact: %s", got.raw)
	}

	// romeo cancels hers.
	c.send(`<presence type='unsubscribed' to='juliet@capulet.lit'/>`)
	c.next(&i, isPush(jb.String(), true, `subscription="none"`))

	if err := srv.Subscription(romeo, jb, "probe"); err == nil {
		t.Error("Subscription accepted a probe")
	}
}

// Two local users: the server plays both sides.
func TestSubscriptionLocalContact(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"), psatest.WithUser("benvolio", "pw"))
	r := dial(t, srv, romeoLane, "pw")
	b := dial(t, srv, benvolioPC, "pw")
	r.send(`<presence/>`)
	b.send(`<presence><status>He ran this way</status></presence>`)
	for _, j := range []jid.JID{romeoLane, benvolioPC} {
		if _, err := srv.WaitAvailable(testContext(t), j); err != nil {
			t.Fatal(err)
		}
	}
	var ri, bi int
	r.send(`<presence type='subscribe' to='benvolio@montague.lit'/>`)
	r.next(&ri, isPush("benvolio@montague.lit", false, `ask="subscribe"`))
	b.next(&bi, isSubscription("romeo@montague.lit", stanza.SubscribePresence))

	b.send(`<presence type='subscribed' to='romeo@montague.lit'/>`)
	b.next(&bi, isPush("romeo@montague.lit", true, `subscription="from"`))
	r.next(&ri, isPush("benvolio@montague.lit", true, `subscription="to"`))
	r.next(&ri, isSubscription("benvolio@montague.lit", stanza.SubscribedPresence))
	// Approving sends benvolio's presence to romeo.
	p := r.next(&ri, isPresenceFrom(benvolioPC.String()))
	if !strings.Contains(p.raw, "He ran this way") {
		t.Errorf("benvolio's presence: %s", p.raw)
	}

	// benvolio takes it back: romeo's item is none again, and benvolio is
	// unavailable to him.
	b.send(`<presence type='unsubscribed' to='romeo@montague.lit'/>`)
	b.next(&bi, isPush("romeo@montague.lit", true, `subscription="none"`))
	r.next(&ri, isPush("benvolio@montague.lit", true, `subscription="none"`))
	r.next(&ri, isSubscription("benvolio@montague.lit", stanza.UnsubscribedPresence))
	r.next(&ri, func(rc received) bool {
		return rc.name == "presence" && rc.from == benvolioPC.String() && rc.typ == "unavailable"
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
