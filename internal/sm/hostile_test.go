package sm_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp"

	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/internal/sm"
	"github.com/psakit/psakit/psa/psatest"
)

// scripted is a fake server for one connection that offers resource
// binding and stream management and answers <enable/> and <resume/> with
// what the test scripts: a server that lies.
type scripted struct {
	enabled string // the answer to <enable/>
	resumed string // the answer to <resume/>
	got     chan string
	active  bool // stream management was active after the negotiation
}

func (sc *scripted) serve(c net.Conn) {
	defer c.Close()
	d := xml.NewDecoder(c)
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Local == "stream" {
			fmt.Fprint(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s' from='montague.lit' version='1.0'>`+
				`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>`)
			continue
		}
		var id string
		for _, a := range start.Attr {
			if a.Name.Local == "id" {
				id = a.Value
			}
		}
		if err := d.Skip(); err != nil {
			return
		}
		sc.got <- start.Name.Local
		switch start.Name.Local {
		case "iq":
			fmt.Fprintf(c, `<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>%s</jid></bind></iq>`, id, romeo)
		case "enable":
			fmt.Fprint(c, sc.enabled)
		case "resume":
			fmt.Fprint(c, sc.resumed)
		}
	}
}

// negotiateScripted negotiates one connection of m's session with a
// scripted server, and returns the names of the elements the client sent.
func negotiateScripted(ctx context.Context, t *testing.T, m *sm.Manager, sc *scripted) ([]string, error) {
	t.Helper()
	sc.got = make(chan string, 16)
	cc, sconn := net.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sc.serve(sconn) }()
	conn := m.Wrap(cc)
	_, err := xmpp.NewSession(ctx, romeo.Domain(), romeo.Bare(), conn, xmpp.Secure|xmpp.Authn,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{m.Bind()}}
		}))
	sc.active = m.State().Active()
	cc.Close()
	wg.Wait()
	m.Suspend()
	close(sc.got)
	var got []string
	for n := range sc.got {
		got = append(got, n)
	}
	return got, err
}

// A server that answers <resume/> with another session's <resumed/>, or
// with anything but <resumed/> or <failed/>, gets no second chance: the
// session cannot be resumed any more (the stanzas it did not acknowledge
// go to OnUnacked), so that the next connection binds a new session.
// Before, the client asked that server to resume the same session on every
// reconnection, for ever, and never had a session again.
func TestResumeAnsweredWrongly(t *testing.T) {
	for name, answer := range map[string]string{
		"other previd": `<resumed xmlns='urn:xmpp:sm:3' previd='other' h='0'/>`,
		"enabled":      `<enabled xmlns='urn:xmpp:sm:3' id='s2' resume='true'/>`,
		"no h":         `<resumed xmlns='urn:xmpp:sm:3' previd='s1'/>`,
	} {
		t.Run(name, func(t *testing.T) {
			leaktest.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var lost [][]byte
			var lostErr error
			m := newManager(nil, func(s [][]byte, err error) { lost, lostErr = append(lost, s...), err })
			sc := &scripted{enabled: `<enabled xmlns='urn:xmpp:sm:3' id='s1' resume='true'/>`, resumed: answer}
			if _, err := negotiateScripted(ctx, t, m, sc); err != nil {
				t.Fatal(err)
			}
			if m.Outcome() != sm.OutcomeEnabled {
				t.Fatalf("outcome %v, want enabled", m.Outcome())
			}
			// A stanza the server never acknowledged, as if sent before the drop.
			m.State().Resumed(sm.Resumed{PrevID: "s1"})
			m.State().Sent([]byte(`<message id='m1'/>`))
			m.State().Suspend()

			got, err := negotiateScripted(ctx, t, m, sc)
			if err == nil {
				t.Fatalf("negotiation succeeded after %s answered <resume/> (client sent %v)", name, got)
			}
			if _, _, ok := m.State().Resumption(); ok {
				t.Fatalf("after <resume/> was answered with %s, the client would ask to resume the same session again", name)
			}
			if len(lost) != 1 || !errors.Is(lostErr, sm.ErrFailed) {
				t.Fatalf("OnUnacked got %q (%v), want the unacknowledged stanza with ErrFailed", lost, lostErr)
			}
			// The next connection binds a new session.
			got, err = negotiateScripted(ctx, t, m, sc)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != "[iq enable]" {
				t.Fatalf("the next connection sent %v, want a bind and <enable/>", got)
			}
		})
	}
}

// A server that answers <enable/> with something the client cannot take
// gets a session all the same: an <enabled/> with attributes the client
// refuses (an id longer than MaxIDLen, resume without an id, a negative
// max) enables counting without resumption, since the server counts; any
// other answer leaves stream management off, as a refusal. Before, the
// negotiation failed, and failed again on every reconnection: the client
// never had a session.
func TestEnableAnsweredWrongly(t *testing.T) {
	for name, answer := range map[string]string{
		"huge id":   `<enabled xmlns='urn:xmpp:sm:3' id='` + strings.Repeat("x", sm.MaxIDLen+1) + `' resume='true'/>`,
		"no id":     `<enabled xmlns='urn:xmpp:sm:3' resume='true'/>`,
		"bad max":   `<enabled xmlns='urn:xmpp:sm:3' id='s1' resume='true' max='-1'/>`,
		"an ack":    `<a xmlns='urn:xmpp:sm:3' h='5'/>`,
		"a request": `<r xmlns='urn:xmpp:sm:3'/>`,
	} {
		t.Run(name, func(t *testing.T) {
			want := sm.OutcomeEnabled
			if !strings.HasPrefix(answer, "<enabled") {
				want = sm.OutcomeRefused
			}
			leaktest.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m := newManager(nil, nil)
			sc := &scripted{enabled: answer}
			got, err := negotiateScripted(ctx, t, m, sc)
			if err != nil {
				t.Fatalf("negotiation failed after <enable/> was answered with %s (client sent %v): %v", name, got, err)
			}
			if o := m.Outcome(); o != want {
				t.Fatalf("outcome %v, want %v", o, want)
			}
			if sc.active != (want == sm.OutcomeEnabled) {
				t.Fatalf("counting = %v with outcome %v", sc.active, want)
			}
			if _, _, ok := m.State().Resumption(); ok {
				t.Fatal("resumable after a wrong <enabled/>")
			}
		})
	}
}

// A server that never answers <resume/> (it closes the connection, or
// crashes, on reading it) gets it a bounded number of times: then the
// client gives the session up and binds a new one. Before, it asked again
// on every reconnection, for ever.
func TestResumeNeverAnswered(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lost := 0
	m := newManager(nil, func(s [][]byte, err error) { lost += len(s) })
	sc := &scripted{enabled: `<enabled xmlns='urn:xmpp:sm:3' id='s1' resume='true'/>`, resumed: "</stream:stream>"}
	if _, err := negotiateScripted(ctx, t, m, sc); err != nil {
		t.Fatal(err)
	}
	m.State().Resumed(sm.Resumed{PrevID: "s1"})
	m.State().Sent([]byte(`<message id='m1'/>`))
	m.State().Suspend()
	for i := 1; ; i++ {
		got, err := negotiateScripted(ctx, t, m, sc)
		if fmt.Sprint(got) == "[iq enable]" && err == nil {
			if lost != 1 {
				t.Fatalf("%d stanzas went to OnUnacked, want 1", lost)
			}
			t.Logf("a new session after %d attempts to resume", i-1)
			return
		}
		if fmt.Sprint(got) != "[resume]" || err == nil {
			t.Fatalf("attempt %d: the client sent %v (%v)", i, got, err)
		}
		if i > 10 {
			t.Fatal("the client asks to resume for ever")
		}
	}
}

// A server that resumes the session but never acknowledges anything on it
// (it cannot serve the session it says it resumed) is asked to resume a
// bounded number of times too, while one that acknowledges after resuming
// keeps its session however often the connection drops. Before, a
// <resumed/> counted as an answer, and the client resumed, waited for an
// acknowledgement in vain, dropped and resumed again, for ever.
func TestResumedButNeverAcknowledged(t *testing.T) {
	for _, acks := range []bool{false, true} {
		t.Run(fmt.Sprintf("acks=%v", acks), func(t *testing.T) {
			leaktest.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m := newManager(nil, func([][]byte, error) {})
			resumed := `<resumed xmlns='urn:xmpp:sm:3' previd='s1' h='0'/>`
			if acks {
				resumed += `<a xmlns='urn:xmpp:sm:3' h='0'/>`
			}
			sc := &scripted{enabled: `<enabled xmlns='urn:xmpp:sm:3' id='s1' resume='true'/>`, resumed: resumed}
			if _, err := negotiateScripted(ctx, t, m, sc); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 10; i++ {
				got, err := negotiateScripted(ctx, t, m, sc)
				if err != nil {
					t.Fatalf("attempt %d: %v", i, err)
				}
				switch fmt.Sprint(got) {
				case "[resume]":
				case "[iq enable]":
					if acks {
						t.Fatalf("attempt %d: a session that acknowledges was given up", i)
					}
					t.Logf("a new session after %d resumptions without an acknowledgement", i-1)
					return
				default:
					t.Fatalf("attempt %d: the client sent %v", i, got)
				}
			}
			if !acks {
				t.Fatal("the client resumes a session that never acknowledges, for ever")
			}
		})
	}
}

// Lies in <resumed/>: an h beyond what was sent acknowledges everything
// (nothing re-sent), an h behind the last acknowledged one is ignored
// (everything unacknowledged re-sent), and a <failed/> right after it
// changes nothing.
func TestResumedLies(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		resent       string
	}{
		{"h too high", `<resumed xmlns='urn:xmpp:sm:3' previd='s1' h='99'/>`, "[resume]"},
		{"h backwards", `<resumed xmlns='urn:xmpp:sm:3' previd='s1' h='0'/>`, "[resume message]"},
		{"then failed", `<resumed xmlns='urn:xmpp:sm:3' previd='s1' h='1'/><failed xmlns='urn:xmpp:sm:3' h='5'/>`, "[resume message]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaktest.Check(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			lost := 0
			m := newManager(nil, func(s [][]byte, err error) { lost += len(s) })
			sc := &scripted{enabled: `<enabled xmlns='urn:xmpp:sm:3' id='s1' resume='true'/>`, resumed: tc.answer}
			if _, err := negotiateScripted(ctx, t, m, sc); err != nil {
				t.Fatal(err)
			}
			m.State().Resumed(sm.Resumed{PrevID: "s1"})
			m.State().Sent([]byte(`<message id='m1'/>`))
			m.State().Sent([]byte(`<message id='m2'/>`))
			m.State().Ack(1)
			m.State().Suspend()
			got, err := negotiateScripted(ctx, t, m, sc)
			if err != nil {
				t.Fatal(err)
			}
			if m.Outcome() != sm.OutcomeResumed {
				t.Fatalf("outcome %v", m.Outcome())
			}
			if fmt.Sprint(got) != tc.resent {
				t.Fatalf("the client sent %v, want %s", got, tc.resent)
			}
			if _, _, ok := m.State().Resumption(); !ok || lost != 0 {
				t.Fatalf("resumable %v, %d stanzas lost", ok, lost)
			}
		})
	}
}

// A contact controls the payload of the messages she sends: a child
// element named stream (in any namespace) or named like a stanza must not
// move the inbound count, which the server checks against what it sent.
// Before, the Scanner took any start tag named stream for a stream restart,
// wherever it was: the message around it went uncounted, and a stanza-named
// child after it was counted as a stanza, so one message from anyone made
// the client acknowledge more than the server sent (Prosody then closes
// the session, and refuses to resume it).
func TestPayloadNamedStream(t *testing.T) {
	ctx, srv := setup(t, psatest.WithStreamManagement(time.Minute))
	m := newManager(nil, nil)
	c := connect(ctx, t, srv, m)
	sess, err := srv.WaitSession(ctx, romeo)
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range []string{
		`<message from='nurse@capulet.lit/x' id='p1' type='chat'><stream xmlns='urn:example:x'/><iq xmlns='urn:example:x'/><presence xmlns='urn:example:x'/></message>`,
		`<message from='nurse@capulet.lit/x' id='p2' type='chat'><x:stream xmlns:x='urn:example:x'><message/></x:stream><body>hi</body></message>`,
		`<message from='nurse@capulet.lit/x' id='p3' type='chat'><stream xmlns='urn:example:x'>text</stream></message>`,
		`<message from='nurse@capulet.lit/x' id='p4' type='chat'><body>after</body></message>`,
	} {
		if err := srv.SendRaw(ctx, romeo, raw); err != nil {
			t.Fatal(err)
		}
		c.next(ctx, t)
		if err := sess.RequestAck(ctx); err != nil {
			t.Fatal(err)
		}
		if h, want := hOf(nextNamed(ctx, t, sess, "a")), fmt.Sprint(i+1); h != want {
			t.Fatalf("client's h = %s after %s, want %s", h, raw, want)
		}
	}
}
