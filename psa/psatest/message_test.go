package psatest_test

import (
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/psa/psatest"
)

// Chat between clients, from scripted entities, and the messages a client
// sends to them.
func TestMessages(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	b := dial(t, srv, benvolioPC, "pw")
	c.send(`<presence/>`)
	b.send(`<presence/>`)
	var i, k int

	// A scripted contact writes to romeo.
	err := srv.SendMessage(ctx, romeoLane.Bare(), psatest.Message{From: jid.MustParse("juliet@capulet.lit/balcony"), ID: "m1", Body: "Romeo?", Thread: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	m := c.next(&i, func(r received) bool { return r.name == "message" && r.from == "juliet@capulet.lit/balcony" })
	if m.typ != "chat" || !strings.Contains(m.raw, ">Romeo?</body>") || !strings.Contains(m.raw, ">t1</thread>") ||
		!strings.Contains(m.raw, `to="`+romeoLane.String()+`"`) {
		t.Fatalf("message %s", m.raw)
	}
	if err := srv.SendMessage(ctx, jid.MustParse("nobody@"+srv.Domain().String()), psatest.Message{Body: "x"}); err == nil {
		t.Fatal("SendMessage to no session succeeded")
	}

	// romeo writes to benvolio (delivered, to his available sessions) and to
	// juliet (recorded).
	if _, err := srv.WaitAvailable(ctx, benvolioPC); err != nil {
		t.Fatal(err)
	}
	c.send(`<message to='` + benvolioPC.Bare().String() + `' type='chat'><body>Cousin</body></message>`)
	if m := b.next(&k, func(r received) bool { return r.name == "message" && r.from == romeoLane.String() }); !strings.Contains(m.raw, "Cousin") {
		t.Fatalf("message %s", m.raw)
	}
	c.send(`<message to='juliet@capulet.lit' type='chat'><body>Lady</body></message>`)
	sess, err := srv.WaitSession(ctx, romeoLane)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" && st.To.String() == "juliet@capulet.lit" })
	if err != nil || !strings.Contains(st.String(), "Lady") {
		t.Fatalf("recorded %s, %v", st.Raw, err)
	}

	// An unreachable domain bounces messages and IQ requests.
	srv.SetUnreachable(jid.MustParse("capulet.lit"), true)
	c.send(`<message to='juliet@capulet.lit/balcony' type='chat' id='b1'><body>Lady?</body></message>`)
	m = c.next(&i, func(r received) bool { return r.name == "message" && r.typ == "error" })
	if m.from != "juliet@capulet.lit/balcony" || !strings.Contains(m.raw, `id="b1"`) || !strings.Contains(m.raw, "remote-server-not-found") {
		t.Fatalf("bounce %s", m.raw)
	}
	c.send(`<iq to='capulet.lit' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if m := c.next(&i, func(r received) bool { return r.name == "iq" && r.typ == "error" }); !strings.Contains(m.raw, "remote-server-not-found") {
		t.Fatalf("bounce %s", m.raw)
	}
	srv.SetUnreachable(jid.MustParse("capulet.lit"), false)
	c.send(`<message to='juliet@capulet.lit/balcony' type='chat' id='b2'><body>Lady!</body></message>`)
	if _, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.ID == "b2" }); err != nil {
		t.Fatal(err)
	}
	// A reachable domain answers a ping to itself, and nothing else.
	c.send(`<iq to='capulet.lit' type='get' id='q2'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if m := c.next(&i, func(r received) bool { return r.name == "iq" && strings.Contains(r.raw, `id="q2"`) }); m.typ != "result" || m.from != "capulet.lit" {
		t.Fatalf("answer to the ping %s", m.raw)
	}
	// A silent domain swallows everything: q3 and b3 are recorded, the
	// ping after them answered, and neither of them.
	srv.SetReachability(jid.MustParse("capulet.lit"), psatest.Silent)
	c.send(`<iq to='capulet.lit' type='get' id='q3'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.send(`<message to='juliet@capulet.lit/balcony' type='chat' id='b3'><body>Lady?</body></message>`)
	if _, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.ID == "b3" }); err != nil {
		t.Fatal(err)
	}
	if err := srv.Ping(ctx, romeoLane); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	for _, r := range c.got {
		if strings.Contains(r.raw, `id="q3"`) || strings.Contains(r.raw, `id="b3"`) {
			t.Errorf("a silent domain answered: %s", r.raw)
		}
	}
	c.mu.Unlock()
	srv.SetReachability(jid.MustParse("capulet.lit"), psatest.Reachable)
	// The ping answered after b2 shows that no bounce came for it.
	if err := srv.Ping(ctx, romeoLane); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	for _, r := range c.got {
		if strings.Contains(r.raw, `id="b2"`) {
			t.Errorf("b2 bounced: %s", r.raw)
		}
	}
	c.mu.Unlock()
}

// Groupchat from scripted occupants, and private messages through a room.
func TestRoomSayAndPrivate(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	b := dial(t, srv, benvolioPC, "pw")
	c.join(covenAt("romeo"))
	b.join(covenAt("benvolio"))
	var i, k int
	c.mucPresence(&i, covenAt("benvolio"))
	b.mucPresence(&k, covenAt("benvolio"))
	room := srv.Room("coven")
	if err := room.AddOccupant(ctx, "witch", jid.JID{}, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := room.Say(ctx, "witch", psatest.Message{Body: "Double, double"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []struct {
		c *client
		i *int
	}{{c, &i}, {b, &k}} {
		m := cl.c.next(cl.i, func(r received) bool { return r.name == "message" && r.from == covenAt("witch") })
		if m.typ != string(stanza.GroupChatMessage) || !strings.Contains(m.raw, "Double, double") {
			t.Fatalf("groupchat %s", m.raw)
		}
	}
	if err := room.Say(ctx, "macbeth", psatest.Message{Body: "x"}); err == nil {
		t.Fatal("Say of no occupant succeeded")
	}

	// romeo writes privately to benvolio through the room.
	c.send(`<message to='` + covenAt("benvolio") + `' type='chat'><body>psst</body></message>`)
	if m := b.next(&k, func(r received) bool { return r.name == "message" && r.from == covenAt("romeo") }); m.typ != "chat" || !strings.Contains(m.raw, "psst") {
		t.Fatalf("private %s", m.raw)
	}
	c.send(`<message to='` + covenAt("nobody") + `' type='chat'><body>psst</body></message>`)
	if m := c.next(&i, func(r received) bool { return r.name == "message" && r.typ == "error" }); !strings.Contains(m.raw, "item-not-found") {
		t.Fatalf("error %s", m.raw)
	}
}
