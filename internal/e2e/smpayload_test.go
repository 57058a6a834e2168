package e2e_test

import (
	"testing"
	"time"

	"github.com/psakit/psakit/client"
)

// Anyone who can send romeo a message chooses its payload. A child element
// named stream, and stanza-named elements after it, must not move romeo's
// XEP-0198 inbound count: Prosody's mod_smacks closes a session that
// acknowledges more than was sent, and refuses to resume it. After such a
// message and a network failure, the session is resumed.
func TestPayloadNamedStreamKeepsResumption(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 90*time.Second)
	p := newCutProxy(t, n.Server(montague).C2SAddr)
	got := make(chan client.Message, 10)
	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "", client.WithAddress(p.Addr()),
		client.OnMessage(func(m client.Message) { got <- m }))
	must(t, juliet.Sendf("<message to='%s' type='chat' id='payload'><body>Art thou not Romeo?</body>"+
		"<stream xmlns='urn:example:x'/><iq xmlns='urn:example:x'/><presence xmlns='urn:example:x'/></message>", romeo.JID()))
	select {
	case m := <-got:
		if m.ID != "payload" {
			t.Fatalf("romeo got %+v", m)
		}
	case <-ctx.Done():
		t.Fatal("the message never reached romeo")
	}
	roundTrip(ctx, t, romeo)

	mont := n.Server(montague)
	mark := mont.LogMark()
	from := rec.mark()
	p.Cut()
	_, _, err := mont.WaitLog(ctx, mark, "Session going into hibernation")
	must(t, err)
	p.Restore()
	e, _ := rec.waitFrom(ctx, t, from, "back", func(e event) bool {
		return connEvent(client.ConnResumed)(e) || connEvent(client.ConnConnected)(e)
	})
	if e.conn.Kind != client.ConnResumed {
		t.Fatalf("after the message, romeo got %s instead of a resumption:\n%s", e.conn.Kind, dumpEvents(rec.since(from)))
	}
}
