package psatest_test

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	mroster "mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/caps"
	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa/psatest"
)

// testTimeout bounds every wait of a test. Nothing waits for it to pass:
// it only turns a hang into a failure.
const testTimeout = 20 * time.Second

// newServer starts a server that logs into the test's output and, when the
// test ends, closes it and checks that every goroutine the test started
// (server and clients) has ended.
func newServer(t *testing.T, opts ...psatest.Option) *psatest.Server {
	t.Helper()
	leaktest.Check(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := psatest.NewServer(append([]psatest.Option{psatest.WithLogger(log)}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// client is a mellium client session served in a goroutine. It records
// every stanza it receives, and answers disco#info (through a caps
// Advertiser), pings and roster pushes.
type client struct {
	t    *testing.T
	s    *xmpp.Session
	adv  *caps.Advertiser
	mux  *mux.ServeMux
	done chan struct{}
	err  error // what Serve returned, once done is closed

	mu      sync.Mutex
	changed chan struct{}
	got     []received
	pushes  []string // versions of the roster pushes received
}

// received is a stanza the client received.
type received struct {
	name string
	from string
	typ  string
	raw  string
	toks []xml.Token
}

// presence decodes a received presence.
func (r received) presence(t *testing.T) presence.Presence {
	t.Helper()
	p, err := presence.Unmarshal([]byte(r.raw))
	if err != nil {
		t.Fatalf("decoding %s: %v", r.raw, err)
	}
	return p
}

var testAdvertiser = func() *caps.Advertiser {
	adv, err := caps.NewAdvertiser("https://example.net/psatest-client",
		caps.WithIdentity("client", "bot", "psatest client", ""),
		caps.WithFeatures("http://jabber.org/protocol/muc"))
	if err != nil {
		panic(err)
	}
	return adv
}()

// dial logs user in with Server.Dial and serves the session until the test
// ends.
func dial(t *testing.T, srv *psatest.Server, user jid.JID, pass string) *client {
	t.Helper()
	s, err := srv.Dial(testContext(t), user, pass)
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	return serve(t, s)
}

// serve serves s until the test ends.
func serve(t *testing.T, s *xmpp.Session) *client {
	c := &client{t: t, s: s, adv: testAdvertiser, done: make(chan struct{}), changed: make(chan struct{})}
	c.mux = mux.New(stanza.NSClient,
		c.adv.HandleDiscoInfo(),
		ping.Handle(),
		mroster.Handle(mroster.Handler{Push: func(ver string, _ mroster.Item) error {
			c.mu.Lock()
			c.pushes = append(c.pushes, ver)
			c.mu.Unlock()
			return nil
		}}),
	)
	go func() {
		c.err = s.Serve(c)
		s.Conn().Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		s.Close()
		s.Conn().Close()
		<-c.done
	})
	return c
}

// HandleXMPP records the stanza, then hands it to the mux.
func (c *client) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	toks, err := xmlstream.ReadAll(t)
	if err != nil {
		return err
	}
	all := append([]xml.Token{start.Copy()}, toks...)
	var b strings.Builder
	e := xml.NewEncoder(&b)
	for _, tok := range all {
		if err := e.EncodeToken(tok); err != nil {
			return err
		}
	}
	if err := e.Flush(); err != nil {
		return err
	}
	get := func(name string) string {
		for _, a := range start.Attr {
			if a.Name.Local == name && a.Name.Space == "" {
				return a.Value
			}
		}
		return ""
	}
	c.mu.Lock()
	c.got = append(c.got, received{name: start.Name.Local, from: get("from"), typ: get("type"), raw: b.String(), toks: all})
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	replay := struct {
		xml.TokenReader
		xmlstream.Encoder
	}{replayReader(toks), t}
	return c.mux.HandleXMPP(replay, start)
}

type tokenSlice []xml.Token

func (s *tokenSlice) Token() (xml.Token, error) {
	if len(*s) == 0 {
		return nil, io.EOF
	}
	tok := (*s)[0]
	*s = (*s)[1:]
	return tok, nil
}

func replayReader(toks []xml.Token) xml.TokenReader {
	s := tokenSlice(toks)
	return &s
}

// next waits for the first received stanza after index *from that match
// accepts, and moves *from past it.
func (c *client) next(from *int, match func(received) bool) received {
	c.t.Helper()
	ctx := testContext(c.t)
	for {
		c.mu.Lock()
		got, ch := c.got, c.changed
		c.mu.Unlock()
		for i := *from; i < len(got); i++ {
			if match(got[i]) {
				*from = i + 1
				return got[i]
			}
		}
		select {
		case <-ch:
		case <-c.done:
			c.t.Fatalf("client session ended (%v) while waiting", c.err)
		case <-ctx.Done():
			c.t.Fatalf("timeout waiting for a stanza; received:\n%s", c.dump())
		}
	}
}

func (c *client) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, r := range c.got {
		b.WriteString(r.raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// wait waits for the client session to end and returns what Serve returned.
func (c *client) wait() error {
	c.t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-testContext(c.t).Done():
		c.t.Fatal("client session did not end")
		return nil
	}
}

// send sends raw XML from the client.
func (c *client) send(raw string) {
	c.t.Helper()
	d := xml.NewDecoder(strings.NewReader(raw))
	if err := c.s.Send(testContext(c.t), d); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// isPresenceFrom matches presences from from.
func isPresenceFrom(from string) func(received) bool {
	return func(r received) bool { return r.name == "presence" && r.from == from }
}
