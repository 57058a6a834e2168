package sm_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/internal/sm"
	"github.com/psakit/psakit/psa/psatest"
)

var (
	romeo   = jid.MustParse("romeo@montague.lit/orchard")
	juliet  = jid.MustParse("juliet@capulet.lit/balcony")
	outside = jid.MustParse("nurse@capulet.lit")
)

// syncBuf is a goroutine-safe log buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// client is one connection of a Manager's session, served.
type client struct {
	s    *xmpp.Session
	in   chan string // "name id" of each stanza the handler received
	done chan error  // Serve's result
}

// connect opens a connection of m's session to srv and serves it.
// With a server created WithTLS it negotiates StartTLS, with the TLS
// connection wrapped for counting.
func connect(ctx context.Context, t *testing.T, srv *psatest.Server, m *sm.Manager) *client {
	t.Helper()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conn := m.Wrap(raw)
	features := []xmpp.StreamFeature{xmpp.SASL("", "secret", sasl.Plain), m.Bind()}
	state := xmpp.Secure
	if cfg := srv.ClientTLSConfig(); cfg != nil {
		features = append([]xmpp.StreamFeature{m.StartTLS(cfg)}, features...)
		state = 0
	}
	s, err := xmpp.NewSession(ctx, romeo.Domain(), romeo.Bare(), conn, state,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	c := &client{s: s, in: make(chan string, 100), done: make(chan error, 1)}
	h := xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		id := ""
		for _, a := range start.Attr {
			if a.Name.Local == "id" {
				id = a.Value
			}
		}
		c.in <- start.Name.Local + " " + id
		return nil
	})
	go func() {
		err := s.Serve(m.Handler(h))
		s.Conn().Close()
		m.Suspend()
		c.done <- err
	}()
	t.Cleanup(func() {
		s.Conn().Close()
		<-c.done
	})
	return c
}

func (c *client) next(ctx context.Context, t *testing.T) string {
	t.Helper()
	select {
	case got := <-c.in:
		return got
	case err := <-c.done:
		t.Fatalf("session ended: %v", err)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return ""
}

func (c *client) message(ctx context.Context, t *testing.T, id string) {
	t.Helper()
	if err := c.s.Send(ctx, stanza.Message{ID: id, To: outside, Type: stanza.ChatMessage}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
}

// drop makes the server drop the connection and waits for the client to
// notice.
func (c *client) drop(ctx context.Context, t *testing.T, sess *psatest.Session) {
	t.Helper()
	sess.Drop()
	select {
	case <-c.done:
		c.done <- nil // for the cleanup
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}

func setup(t *testing.T, opts ...psatest.Option) (context.Context, *psatest.Server) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	srv := psatest.NewServer(append([]psatest.Option{psatest.WithUser("romeo", "secret")}, opts...)...)
	t.Cleanup(srv.Close)
	return ctx, srv
}

func newManager(log *syncBuf, onUnacked func([][]byte, error)) *sm.Manager {
	cfg := sm.ManagerConfig{Resource: romeo.Resourcepart(), OnUnacked: onUnacked}
	if log != nil {
		cfg.Log = slog.New(slog.NewTextHandler(log, nil))
	}
	return sm.NewManager(cfg)
}

// lost is one call of a Manager's OnUnacked.
type lost struct {
	raw [][]byte
	err error
}

// lostManager returns a Manager whose OnUnacked calls arrive on the
// channel.
func lostManager() (*sm.Manager, chan lost) {
	lostc := make(chan lost, 10)
	return newManager(nil, func(s [][]byte, err error) { lostc <- lost{s, err} }), lostc
}

// expectLost waits for the application to get the one stanza that contains
// want, given up (ErrFailed).
func expectLost(ctx context.Context, t *testing.T, lostc chan lost, want string) {
	t.Helper()
	select {
	case l := <-lostc:
		if !errors.Is(l.err, sm.ErrFailed) || len(l.raw) != 1 || !bytes.Contains(l.raw[0], []byte(want)) {
			t.Fatalf("application got %q, %v; want %s only", l.raw, l.err, want)
		}
	case <-ctx.Done():
		t.Fatal("the unacknowledged stanza never reached the application")
	}
}

// deaf connects m's session to srv, waits until stream management is
// enabled, and then makes the server lose what the client sends: nothing
// more is acknowledged.
func deaf(ctx context.Context, t *testing.T, srv *psatest.Server, m *sm.Manager) (*client, *psatest.Session) {
	t.Helper()
	c := connect(ctx, t, srv, m)
	sess, err := srv.WaitSession(ctx, romeo)
	if err != nil {
		t.Fatal(err)
	}
	nextNamed(ctx, t, sess, "enable")
	sess.LoseInput()
	return c, sess
}

// nextNamed waits for the next element the client sent named name.
func nextNamed(ctx context.Context, t *testing.T, sess *psatest.Session, name string) psatest.Stanza {
	t.Helper()
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == name })
	if err != nil {
		t.Fatalf("waiting for <%s/>: %v", name, err)
	}
	return st
}

func hOf(st psatest.Stanza) string {
	for _, a := range st.Attr {
		if a.Name.Local == "h" {
			return a.Value
		}
	}
	return "none"
}

func TestNotOffered(t *testing.T) {
	ctx, srv := setup(t)
	m := newManager(nil, nil)
	c := connect(ctx, t, srv, m)
	if o := m.Outcome(); o != sm.OutcomeOff {
		t.Fatalf("outcome %v, want off", o)
	}
	if !c.s.LocalAddr().Equal(romeo) {
		t.Fatalf("bound %s", c.s.LocalAddr())
	}
	sess, err := srv.WaitSession(ctx, romeo)
	if err != nil {
		t.Fatal(err)
	}
	c.message(ctx, t, "m1")
	if st := nextNamed(ctx, t, sess, "message"); st.ID != "m1" {
		t.Fatalf("got %s", st)
	}
	for _, st := range sess.Stanzas() {
		if st.Name == "enable" {
			t.Fatal("enabled stream management on a server that does not offer it")
		}
	}
}

// The counts both ways: the client's <a/> counts every stanza it received,
// IQ results routed to a waiting caller included (they never reach the
// handler), and no nonza; the server's <a/> empties the client's queue.
func TestEnableAndAcks(t *testing.T) {
	ctx, srv := setup(t, psatest.WithStreamManagement(time.Minute))
	m := newManager(nil, nil)
	c := connect(ctx, t, srv, m)
	if o := m.Outcome(); o != sm.OutcomeEnabled {
		t.Fatalf("outcome %v, want enabled", o)
	}
	sess, err := srv.WaitSession(ctx, romeo)
	if err != nil {
		t.Fatal(err)
	}
	if st := nextNamed(ctx, t, sess, "enable"); !strings.Contains(st.String(), `resume="true"`) {
		t.Fatalf("enable without resume: %s", st)
	}

	// Three stanzas from the server, one of them an IQ result to a ping.
	for i := range 2 {
		if err := srv.SendPresence(ctx, romeo, psatest.Presence{From: jid.MustParse(fmt.Sprintf("juliet@capulet.lit/r%d", i))}); err != nil {
			t.Fatal(err)
		}
		c.next(ctx, t)
	}
	resp, err := c.s.SendIQ(ctx, stanza.IQ{Type: stanza.GetIQ, To: romeo.Domain()}.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}})))
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	if err := sess.RequestAck(ctx); err != nil {
		t.Fatal(err)
	}
	if h := hOf(nextNamed(ctx, t, sess, "a")); h != "3" {
		t.Fatalf("client's h = %s, want 3 (two presences and an IQ result)", h)
	}

	// Two messages and the ping from the client; <r/> and <a/> are not
	// counted either way.
	c.message(ctx, t, "m1")
	c.message(ctx, t, "m2")
	if n := m.State().Unacknowledged(); n != 3 {
		t.Fatalf("client unacknowledged = %d, want 3 (ping, m1, m2; never its <a/>)", n)
	}
	if err := sm.RequestAck(ctx, c.s); err != nil {
		t.Fatal(err)
	}
	nextNamed(ctx, t, sess, "r")
	// The server's <a/> is read before anything it sends later.
	if err := srv.SendPresence(ctx, romeo, psatest.Presence{From: juliet}); err != nil {
		t.Fatal(err)
	}
	c.next(ctx, t)
	if n := m.State().Unacknowledged(); n != 0 {
		t.Fatalf("client unacknowledged after the server's <a/> = %d", n)
	}
	if h := sess.Handled(); h != 3 {
		t.Fatalf("server counted %d stanzas from the client, want 3", h)
	}
}

// A wrong h from the server (Openfire once sent one) is clamped and logged;
// the session goes on.
func TestWrongAckFromServer(t *testing.T) {
	ctx, srv := setup(t, psatest.WithStreamManagement(time.Minute))
	var log syncBuf
	m := newManager(&log, nil)
	c := connect(ctx, t, srv, m)
	c.message(ctx, t, "m1")
	for _, raw := range []string{
		`<a xmlns='urn:xmpp:sm:3' h='99'/>`,
		`<a xmlns='urn:xmpp:sm:3' h='0'/>`, // backwards from the clamped 1
		`<a xmlns='urn:xmpp:sm:3' h='x'/>`,
		`<a xmlns='urn:xmpp:sm:3'/>`,
		`<r xmlns='urn:xmpp:sm:2'/>`,
	} {
		if err := srv.SendRaw(ctx, romeo, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.SendPresence(ctx, romeo, psatest.Presence{From: juliet}); err != nil {
		t.Fatal(err)
	}
	if got := c.next(ctx, t); !strings.HasPrefix(got, "presence") {
		// The sm:2 <r/> reached the handler: it is not ours.
		if got != "r " {
			t.Fatalf("handler got %q", got)
		}
		c.next(ctx, t)
	}
	if n := m.State().Unacknowledged(); n != 0 {
		t.Fatalf("unacknowledged = %d after h=99 of 1", n)
	}
	for _, want := range []string{"acknowledged stanzas that were never sent", "went backwards", "malformed"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	c.message(ctx, t, "m2")
	if n := m.State().Unacknowledged(); n != 1 {
		t.Fatalf("unacknowledged = %d after one more message", n)
	}
}

// A resumption across a blip: the server keeps the session; the client
// re-sends what the server did not get, before any new stanza (Smack sent
// new ones first), gets what the server sent meanwhile, and its inbound
// count goes on (stanza.io reset it).
func TestResume(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testResume(t) })
	// Counting above TLS: the wrapper under it sees only TLS records.
	t.Run("starttls", func(t *testing.T) { testResume(t, psatest.WithTLS()) })
}

func testResume(t *testing.T, opts ...psatest.Option) {
	ctx, srv := setup(t, append(opts, psatest.WithStreamManagement(0))...)
	var unacked [][]byte
	var mu sync.Mutex
	m := newManager(nil, func(s [][]byte, err error) {
		mu.Lock()
		unacked = append(unacked, s...)
		mu.Unlock()
	})
	c := connect(ctx, t, srv, m)
	sess, err := srv.WaitSession(ctx, romeo)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SendPresence(ctx, romeo, psatest.Presence{From: juliet}); err != nil {
		t.Fatal(err)
	}
	c.next(ctx, t)
	c.message(ctx, t, "delivered")
	nextNamed(ctx, t, sess, "message")
	sess.LoseInput()
	c.message(ctx, t, "lost1")
	c.message(ctx, t, "lost2")
	c.drop(ctx, t, sess)
	if !sess.Hibernating() {
		t.Fatal("the server did not keep the session")
	}
	if err := srv.SendPresence(ctx, romeo, psatest.Presence{From: juliet, Show: "away"}); err != nil {
		t.Fatal(err)
	}

	c2 := connect(ctx, t, srv, m)
	if o := m.Outcome(); o != sm.OutcomeResumed {
		t.Fatalf("outcome %v, want resumed", o)
	}
	if !c2.s.LocalAddr().Equal(romeo) {
		t.Fatalf("resumed as %s", c2.s.LocalAddr())
	}
	c2.message(ctx, t, "new")
	var got []string
	for range 3 {
		got = append(got, nextNamed(ctx, t, sess, "message").ID)
	}
	if fmt.Sprint(got) != "[lost1 lost2 new]" {
		t.Fatalf("the server received %v, want the re-sent stanzas before the new one", got)
	}
	resume := nextNamed(ctx, t, sess, "resume")
	t.Logf("client sent %s", resume)
	if h := hOf(resume); h != "1" {
		t.Fatalf("<resume h=%s>, want 1", h)
	}
	// What the server sent while the client was away arrives now.
	if got := c2.next(ctx, t); !strings.HasPrefix(got, "presence") {
		t.Fatalf("after resumption the handler got %q", got)
	}
	if err := sess.RequestAck(ctx); err != nil {
		t.Fatal(err)
	}
	if h := hOf(nextNamed(ctx, t, sess, "a")); h != "2" {
		t.Fatalf("client's h after resumption = %s, want 2 (the count goes on)", h)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(unacked) != 0 {
		t.Fatalf("%d stanzas reported lost after a successful resumption", len(unacked))
	}
	if n := len(srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions after resumption", n)
	}
}

// After the hibernation the resumption fails (gosrc.io took that for a
// success): the client binds anew, enables again, re-sends nothing and
// hands what the server never acknowledged to the application.
func TestResumeFailed(t *testing.T) {
	ctx, srv := setup(t, psatest.WithStreamManagement(0))
	m, lostc := lostManager()
	c := connect(ctx, t, srv, m)
	sess, err := srv.WaitSession(ctx, romeo)
	if err != nil {
		t.Fatal(err)
	}
	c.message(ctx, t, "delivered")
	nextNamed(ctx, t, sess, "message")
	sess.LoseInput()
	c.message(ctx, t, "lost1")
	c.drop(ctx, t, sess)
	sess.Expire()
	if sess.Hibernating() {
		t.Fatal("still hibernating after Expire")
	}

	c2 := connect(ctx, t, srv, m)
	if o := m.Outcome(); o != sm.OutcomeEnabled {
		t.Fatalf("outcome %v, want enabled (a new session)", o)
	}
	// The server's <failed h/> acknowledged the first.
	expectLost(ctx, t, lostc, "lost1")
	sess2, err := srv.WaitSession(ctx, romeo)
	if err != nil {
		t.Fatal(err)
	}
	if sess2 == sess {
		t.Fatal("the expired session came back")
	}
	c2.message(ctx, t, "new")
	if st := nextNamed(ctx, t, sess2, "message"); st.ID != "new" {
		t.Fatalf("the new session received %s first: a stanza was re-sent after a failed resumption", st)
	}
	nextNamed(ctx, t, sess2, "enable")
	if n := m.State().Unacknowledged(); n != 1 {
		t.Fatalf("unacknowledged on the new session = %d, want 1", n)
	}
}

// <enabled/>, <resumed/> and <failed/> are answers: from a server later in
// the stream they would reset the counts or hand the queue away, so they
// are ignored.
func TestUnsolicitedAnswersIgnored(t *testing.T) {
	ctx, srv := setup(t, psatest.WithStreamManagement(time.Minute))
	var lost int
	var mu sync.Mutex
	m := newManager(nil, func(s [][]byte, _ error) { mu.Lock(); lost += len(s); mu.Unlock() })
	c := connect(ctx, t, srv, m)
	before, _, ok := m.State().Resumption()
	if !ok {
		t.Fatal("not resumable")
	}
	c.message(ctx, t, "m1")
	for _, raw := range []string{
		`<enabled xmlns='urn:xmpp:sm:3' id='evil' resume='true'/>`,
		`<failed xmlns='urn:xmpp:sm:3' h='1'/>`,
		`<resumed xmlns='urn:xmpp:sm:3' previd='` + before.PrevID + `' h='1'/>`,
	} {
		if err := srv.SendRaw(ctx, romeo, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.SendPresence(ctx, romeo, psatest.Presence{From: juliet}); err != nil {
		t.Fatal(err)
	}
	for got := c.next(ctx, t); !strings.HasPrefix(got, "presence"); got = c.next(ctx, t) {
	}
	after, _, ok := m.State().Resumption()
	mu.Lock()
	defer mu.Unlock()
	if !ok || after.PrevID != before.PrevID || after.H != 1 || m.State().Unacknowledged() != 1 || lost != 0 {
		t.Fatalf("state changed by unsolicited answers: %+v (was %+v), %d unacknowledged, %d lost", after, before, m.State().Unacknowledged(), lost)
	}
}

func TestPing(t *testing.T) {
	ctx, srv := setup(t, psatest.WithStreamManagement(time.Minute))
	m := newManager(nil, nil)
	c := connect(ctx, t, srv, m)
	sess, err := srv.WaitSession(ctx, romeo)
	if err != nil {
		t.Fatal(err)
	}
	c.message(ctx, t, "m1")
	if err := m.Ping(ctx, c.s); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if n := m.State().Unacknowledged(); n != 0 {
		t.Fatalf("unacknowledged after a ping = %d", n)
	}
	// A server that reads nothing answers nothing: the ping ends with its
	// context.
	sess.LoseInput()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := m.Ping(short, c.s); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping to a deaf server = %v, want the context's error", err)
	}
}

// Sent signals stanzas queued on a managed stream, the client's cue to ask
// for an acknowledgement, and nothing on a stream without stream
// management.
func TestSentSignal(t *testing.T) {
	for _, offered := range []bool{false, true} {
		t.Run(fmt.Sprint("offered=", offered), func(t *testing.T) {
			var opts []psatest.Option
			if offered {
				opts = append(opts, psatest.WithStreamManagement(time.Minute))
			}
			ctx, srv := setup(t, opts...)
			m := newManager(nil, nil)
			c := connect(ctx, t, srv, m)
			sess, err := srv.WaitSession(ctx, romeo)
			if err != nil {
				t.Fatal(err)
			}
			c.message(ctx, t, "m1")
			nextNamed(ctx, t, sess, "message")
			select {
			case <-m.Sent():
				if !offered {
					t.Fatal("Sent signalled without stream management")
				}
			default:
				if offered {
					t.Fatal("no Sent signal after a stanza was queued")
				}
			}
		})
	}
}

// A server that offered stream management and then, after a drop, no
// longer does (restarted without mod_smacks, another node behind the same
// name): the client binds a new session without it. What the old session's
// server did not acknowledge goes to the application at once, and a later
// connection does not try to resume the session given up (binding anew in
// between made it a stranger's).
func TestNotOfferedAfterDrop(t *testing.T) {
	ctx, srv := setup(t, psatest.WithStreamManagement(time.Minute))
	plain := psatest.NewServer(psatest.WithUser("romeo", "secret"))
	t.Cleanup(plain.Close)
	m, lostc := lostManager()
	c, sess := deaf(ctx, t, srv, m)
	c.message(ctx, t, "lost1")
	c.drop(ctx, t, sess)

	connect(ctx, t, plain, m)
	if o := m.Outcome(); o != sm.OutcomeOff {
		t.Fatalf("outcome %v, want off", o)
	}
	expectLost(ctx, t, lostc, "lost1")
	if _, _, ok := m.State().Resumption(); ok {
		t.Fatal("the session given up is still resumable")
	}

	connect(ctx, t, srv, m)
	if o := m.Outcome(); o != sm.OutcomeEnabled {
		t.Fatalf("outcome %v, want enabled (a new session, not the old one resumed)", o)
	}
}

// A stanza larger than the queue is kept without its bytes: when a
// resumption finds that the server never got it, it cannot be re-sent, so
// the application gets it (ErrQueueFull, no bytes), and the stanzas
// re-sent are counted as the server counts them, so that its
// acknowledgement empties the queue (a count left ahead would free a
// stanza never delivered and re-send one delivered on the next
// resumption).
func TestResumeWithoutTheBytes(t *testing.T) {
	ctx, srv := setup(t, psatest.WithStreamManagement(0))
	lostc := make(chan lost, 10)
	m := sm.NewManager(sm.ManagerConfig{
		Config:    sm.Config{MaxQueueBytes: 400},
		Resource:  romeo.Resourcepart(),
		OnUnacked: func(s [][]byte, err error) { lostc <- lost{s, err} },
	})
	c, sess := deaf(ctx, t, srv, m)
	c.message(ctx, t, "lost1")
	big := stanza.Message{ID: "big", To: outside, Type: stanza.ChatMessage}.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(strings.Repeat("x", 1000))), xml.StartElement{Name: xml.Name{Local: "body"}}))
	if err := c.s.Send(ctx, big); err != nil {
		t.Fatal(err)
	}
	c.message(ctx, t, "lost2")
	c.drop(ctx, t, sess)

	c2 := connect(ctx, t, srv, m)
	if o := m.Outcome(); o != sm.OutcomeResumed {
		t.Fatalf("outcome %v, want resumed", o)
	}
	select {
	case l := <-lostc:
		if !errors.Is(l.err, sm.ErrQueueFull) || len(l.raw) != 1 || l.raw[0] != nil {
			t.Fatalf("application got %q, %v; want one stanza without bytes, ErrQueueFull", l.raw, l.err)
		}
	case <-ctx.Done():
		t.Fatal("the stanza that could not be re-sent never reached the application")
	}
	var got []string
	for range 2 {
		got = append(got, nextNamed(ctx, t, sess, "message").ID)
	}
	if fmt.Sprint(got) != "[lost1 lost2]" {
		t.Fatalf("the server received %v", got)
	}
	if err := m.Ping(ctx, c2.s); err != nil {
		t.Fatal(err)
	}
	if n := m.State().Unacknowledged(); n != 0 {
		t.Fatalf("%d stanzas unacknowledged after the server acknowledged all it got", n)
	}
}
