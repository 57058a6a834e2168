package client_test

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
)

// messages records what OnMessage receives.
func messages(c chan client.Message) client.Option {
	return client.OnMessage(func(m client.Message) { c <- m })
}

func nextMessage(ctx context.Context, t *testing.T, c chan client.Message) client.Message {
	t.Helper()
	select {
	case m := <-c:
		return m
	case <-ctx.Done():
		t.Fatal("no message")
		return client.Message{}
	}
}

// nextSent waits for the next message the client sent.
func nextSent(ctx context.Context, t *testing.T, sess *psatest.Session) (psatest.Stanza, struct {
	Body   string `xml:"body"`
	Thread string `xml:"thread"`
}) {
	t.Helper()
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" })
	if err != nil {
		t.Fatalf("no message sent: %v", err)
	}
	var v struct {
		Body   string `xml:"body"`
		Thread string `xml:"thread"`
	}
	if err := st.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return st, v
}

// A Dial'ed client receives messages with OnMessage and answers them with
// Reply.
func TestOnMessageAndReply(t *testing.T) {
	srv, ctx := setup(t)
	got := make(chan client.Message, 10)
	c := dial(ctx, t, srv, nil, messages(got))
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	err = srv.SendRaw(ctx, c.JID(), `<message xmlns='jabber:client' from='juliet@capulet.lit/balcony' to='romeo@montague.lit/lane' type='chat' id='m1' xml:lang='en'>`+
		`<body xml:lang='fr'>Roméo</body><body>Romeo, Romeo</body><subject>names</subject><thread>t-1</thread>`+
		`<delay xmlns='urn:xmpp:delay' from='capulet.lit' stamp='2026-12-01T10:00:00Z'/><x xmlns='urn:example'><body>not this</body></x></message>`)
	if err != nil {
		t.Fatal(err)
	}
	m := nextMessage(ctx, t, got)
	want := client.Message{
		ID: "m1", From: juliet, To: c.JID(), Type: stanza.ChatMessage, Lang: "en",
		Body: "Romeo, Romeo", Subject: "names", Thread: "t-1",
		Delay: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
	}
	if m.ID != want.ID || !m.From.Equal(want.From) || !m.To.Equal(want.To) || m.Type != want.Type || m.Lang != want.Lang ||
		m.Body != want.Body || m.Subject != want.Subject || m.Thread != want.Thread || !m.Delay.Equal(want.Delay) || m.Error != nil {
		t.Fatalf("got %+v, want %+v", m, want)
	}

	if err := c.Reply(ctx, m, "It is my lady"); err != nil {
		t.Fatal(err)
	}
	st, v := nextSent(ctx, t, sess)
	if !st.To.Equal(juliet) || st.Type != "chat" || v.Body != "It is my lady" || v.Thread != "t-1" {
		t.Fatalf("reply: %s", st.Raw)
	}

	// A message without a type is normal, and so is its answer.
	if err := srv.SendRaw(ctx, c.JID(), `<message xmlns='jabber:client' from='nurse@capulet.lit/kitchen'><body>Madam!</body></message>`); err != nil {
		t.Fatal(err)
	}
	m = nextMessage(ctx, t, got)
	if m.Type != stanza.NormalMessage || m.Body != "Madam!" || !m.Delay.IsZero() {
		t.Fatalf("got %+v", m)
	}
	if err := m.Reply(ctx, "Anon!"); err != nil { // the method: no Client needed
		t.Fatal(err)
	}
	if st, v := nextSent(ctx, t, sess); !st.To.Equal(nurse) || st.Type != "normal" || v.Body != "Anon!" || v.Thread != "" {
		t.Fatalf("reply: %s", st.Raw)
	}

	// A bounce carries its error and is never answered.
	if err := srv.SendRaw(ctx, c.JID(), `<message xmlns='jabber:client' from='tybalt@verona.lit' type='error' id='x'><body>hi</body>`+
		`<error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no route</text></error></message>`); err != nil {
		t.Fatal(err)
	}
	m = nextMessage(ctx, t, got)
	if m.Type != stanza.ErrorMessage || m.Error == nil || m.Error.Condition != stanza.RemoteServerNotFound || m.Error.Type != stanza.Cancel || m.Error.Text[""] != "no route" {
		t.Fatalf("bounce: %+v (error %+v)", m, m.Error)
	}
	if err := c.Reply(ctx, m, "what?"); !errors.Is(err, client.ErrReplyToError) {
		t.Fatalf("Reply to an error: %v", err)
	}

	// SendMessage: chat by default.
	if err := c.SendMessage(ctx, juliet.Bare(), "", "Good night"); err != nil {
		t.Fatal(err)
	}
	if st, v := nextSent(ctx, t, sess); !st.To.Equal(juliet.Bare()) || st.Type != "chat" || v.Body != "Good night" {
		t.Fatalf("sent: %s", st.Raw)
	}
}

// A groupchat message is answered in the room, not to the occupant.
func TestReplyGroupchat(t *testing.T) {
	srv, ctx := setup(t)
	got := make(chan client.Message, 10)
	c := dial(ctx, t, srv, nil, messages(got))
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SendRaw(ctx, c.JID(), `<message xmlns='jabber:client' from='orchard@chat.shakespeare.lit/juliet' type='groupchat'><body>!status</body></message>`); err != nil {
		t.Fatal(err)
	}
	m := nextMessage(ctx, t, got)
	if err := c.Reply(ctx, m, "fine"); err != nil {
		t.Fatal(err)
	}
	if st, v := nextSent(ctx, t, sess); st.To.String() != "orchard@chat.shakespeare.lit" || st.Type != "groupchat" || v.Body != "fine" {
		t.Fatalf("reply: %s", st.Raw)
	}
}

// Messages whose from is not a JID are dropped: mellium's mux ended the
// session over them, and the client reconnected.
func TestInvalidMessageKeepsSession(t *testing.T) {
	for _, onMessage := range []bool{false, true} {
		srv, ctx := setup(t)
		rec := newRecorder()
		got := make(chan client.Message, 10)
		opts := []client.Option{}
		if onMessage {
			opts = append(opts, messages(got))
		}
		c := dial(ctx, t, srv, rec, opts...)
		rec.nextConn(ctx, t, client.ConnConnected)
		sess, err := srv.WaitAvailable(ctx, c.JID())
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.SendRaw(ctx, c.JID(), `<message xmlns='jabber:client' from='@@' type='chat'><body>x</body></message>`); err != nil {
			t.Fatal(err)
		}
		// The ping is answered on the same session, after the message.
		if err := srv.Ping(ctx, c.JID()); err != nil {
			t.Fatalf("onMessage %v: ping after the bad message: %v", onMessage, err)
		}
		select {
		case <-sess.Done():
			t.Fatalf("onMessage %v: the session ended", onMessage)
		case e := <-rec.conn:
			t.Fatalf("onMessage %v: %v", onMessage, e.Kind)
		default:
		}
		if len(got) != 0 {
			t.Fatalf("the bad message was delivered: %+v", <-got)
		}
	}
}

// WithMux adds the application's message and IQ handlers; OnMessage sees the
// messages they see.
func TestWithMux(t *testing.T) {
	srv, ctx := setup(t)
	custom := xml.Name{Space: "urn:example:bot", Local: "x"}
	fromMux := make(chan stanza.Message, 10)
	got := make(chan client.Message, 10)
	c := dial(ctx, t, srv, nil, messages(got), client.WithMux(
		mux.MessageFunc(stanza.ChatMessage, custom, func(m stanza.Message, r xmlstream.TokenReadEncoder) error {
			fromMux <- m
			return nil
		}),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: "urn:example:bot", Local: "query"}, func(iq stanza.IQ, w xmlstream.TokenReadEncoder, _ *xml.StartElement) error {
			_, err := xmlstream.Copy(w, iq.Result(nil))
			return err
		}),
	))
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SendRaw(ctx, c.JID(), `<message xmlns='jabber:client' from='juliet@capulet.lit/balcony' type='chat' id='m2'><body>b</body><x xmlns='urn:example:bot'/></message>`); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-fromMux:
		if m.ID != "m2" || !m.From.Equal(juliet) {
			t.Fatalf("mux got %+v", m)
		}
	case <-ctx.Done():
		t.Fatal("the mux handler was not called")
	}
	if m := nextMessage(ctx, t, got); m.ID != "m2" || m.Body != "b" {
		t.Fatalf("OnMessage got %+v", m)
	}
	if err := srv.SendRaw(ctx, c.JID(), `<iq xmlns='jabber:client' from='juliet@capulet.lit/balcony' type='get' id='q1'><query xmlns='urn:example:bot'/></iq>`); err != nil {
		t.Fatal(err)
	}
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "iq" && st.ID == "q1" })
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != "result" || !st.To.Equal(juliet) {
		t.Fatalf("answer: %s", st.Raw)
	}
}

// A handler for an IQ the client answers itself is refused by Dial, not a
// panic.
func TestWithMuxConflict(t *testing.T) {
	srv, ctx := setup(t)
	_, err := client.Dial(ctx, romeo, password, client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText),
		client.WithMux(mux.IQFunc(stanza.GetIQ, xml.Name{Space: "urn:xmpp:ping", Local: "ping"},
			func(stanza.IQ, xmlstream.TokenReadEncoder, *xml.StartElement) error { return nil })))
	if err == nil || !strings.Contains(err.Error(), "WithMux") {
		t.Fatalf("Dial: %v", err)
	}
}

// Send helpers honour their context and say when there is no session.
func TestSendMessageNotConnected(t *testing.T) {
	srv, ctx := setup(t)
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithoutReconnect())
	rec.nextConn(ctx, t, client.ConnConnected)
	srv.DropAll()
	<-c.Done()
	if err := c.SendMessage(ctx, juliet, stanza.ChatMessage, "hi"); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("SendMessage: %v", err)
	}
	if err := c.Reply(ctx, client.Message{From: juliet, Type: stanza.ChatMessage}, "hi"); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Reply: %v", err)
	}
	if err := (client.Message{From: juliet}).Reply(ctx, "hi"); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("Reply of a Message built by hand: %v", err)
	}
	if err := c.SendMessage(ctx, jid.JID{}, stanza.ErrorMessage, "x"); !errors.Is(err, client.ErrReplyToError) {
		t.Fatalf("SendMessage of type error: %v", err)
	}
}

// Messages count against the queue's byte budget: a callback that blocks
// while large messages keep coming makes the client drop and count them,
// never hold them all.
func TestMessagesInQueueBudget(t *testing.T) {
	srv, ctx := setup(t)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	blocked := make(chan struct{})
	overflow := make(chan int, 10)
	var delivered atomic.Int64
	c := dial(ctx, t, srv, nil, client.WithQueueBytes(64<<10),
		client.OnMessage(func(m client.Message) {
			if delivered.Add(1) == 1 {
				close(blocked)
				<-release
			}
		}),
		client.OnOverflow(func(n int) { overflow <- n }))
	body := strings.Repeat("x", 16<<10)
	const sent = 40 // 640 KiB of bodies against a 64 KiB budget
	for range sent {
		if err := srv.SendMessage(ctx, c.JID(), psatest.Message{From: juliet, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	<-blocked
	// The stream goes on while the callback is stuck.
	if err := srv.Ping(ctx, c.JID()); err != nil {
		t.Fatalf("ping while the callback blocks: %v", err)
	}
	close(release)
	dropped := 0
	for delivered.Load()+int64(dropped) != sent {
		select {
		case n := <-overflow:
			dropped += n
		case <-ctx.Done():
			t.Fatalf("%d delivered and %d dropped, want %d in all", delivered.Load(), dropped, sent)
		}
	}
	if dropped == 0 {
		t.Fatalf("%d delivered and nothing dropped with a 64 KiB budget", delivered.Load())
	}
}

// A room that bounces our groupchat message may have dropped us without a
// word: the client self-pings it, and rejoins when it says we are not in it
// (XEP-0310's business rule).
func TestGroupchatBounceSelfPings(t *testing.T) {
	_, room, c, rec, ctx := joined(t, fastPolicy())
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	if _, err := room.NextJoin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := room.Forget("Romeo"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMessage(ctx, orchard, stanza.GroupChatMessage, "anyone?"); err != nil {
		t.Fatal(err)
	}
	a := rec.nextAction(ctx, t, client.ActionSelfPing)
	if a.Reason != "bounce" || a.Verdict != mucwatch.VerdictNotJoined {
		t.Fatalf("self-ping %+v", a)
	}
	if a := rec.nextAction(ctx, t, client.ActionRejoin); a.Reason != "not-joined" {
		t.Fatalf("rejoin %+v", a)
	}
	if _, err := room.NextJoin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
}

// A groupchat message to a room the model holds stale is preceded by a
// self-ping: not sent when the room says we are not in it (the client
// rejoins), sent when we are.
func TestGroupchatToStaleRoomSelfPingsFirst(t *testing.T) {
	srv, room, c, rec, ctx := joined(t, fastPolicy())
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	if _, err := room.NextJoin(ctx, nil); err != nil {
		t.Fatal(err)
	}
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	// Our server says our occupant may be stale.
	if err := room.Annotate(ctx, "Romeo", psa.Annotation{From: montague, Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomStale)

	// Still in the room: the self-ping says so, and the message goes.
	if err := c.SendMessage(ctx, orchard, stanza.GroupChatMessage, "still here?"); err != nil {
		t.Fatal(err)
	}
	if a := rec.nextAction(ctx, t, client.ActionSelfPing); a.Reason != "send" || a.Verdict != mucwatch.VerdictJoined {
		t.Fatalf("self-ping %+v", a)
	}
	if st, v := nextSent(ctx, t, sess); st.Type != "groupchat" || v.Body != "still here?" {
		t.Fatalf("sent %s", st.Raw)
	}

	// Dropped meanwhile: the message is not sent, and the client rejoins.
	if err := room.Forget("Romeo"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMessage(ctx, orchard, stanza.GroupChatMessage, "anyone?"); !errors.Is(err, client.ErrNotInRoom) {
		t.Fatalf("SendMessage: %v", err)
	}
	if a := rec.nextAction(ctx, t, client.ActionSelfPing); a.Reason != "send" || a.Verdict != mucwatch.VerdictNotJoined {
		t.Fatalf("self-ping %+v", a)
	}
	if a := rec.nextAction(ctx, t, client.ActionRejoin); a.Reason != "not-joined" {
		t.Fatalf("rejoin %+v", a)
	}
	rec.nextRoom(ctx, t, mucwatch.EventRoomJoined)
	for _, st := range sess.Stanzas() {
		if strings.Contains(st.String(), "anyone?") {
			t.Fatalf("sent to a room we were not in: %s", st.Raw)
		}
	}
}
