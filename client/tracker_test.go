package client_test

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

// An application that owns its mellium session puts a Tracker in front of
// its own mux: the models follow presence, and with passthrough its own
// presence handler still sees every stanza.
func TestTrackerWithOwnSession(t *testing.T) {
	leaktest.Check(t)
	srv := psatest.NewServer(psatest.WithUser("romeo", password))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rec := newRecorder()
	tr, err := client.NewTracker(romeo, append(rec.trackerOptions(), client.WithPresencePassthrough())...)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	own := make(chan stanza.Presence, 10)
	m := mux.New(stanza.NSClient, append(tr.MuxOptions(),
		// mux calls this once per child element; the application's problem,
		// not the tracker's.
		mux.PresenceFunc(stanza.AvailablePresence, xml.Name{Space: stanza.NSClient, Local: "status"},
			func(p stanza.Presence, r xmlstream.TokenReadEncoder) error {
				own <- p
				return nil
			}))...)

	s, err := srv.Dial(ctx, jid.MustParse("romeo@montague.lit/own"), password)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- s.Serve(tr.Handler(m))
		s.Conn().Close()
		tr.Disconnected()
	}()
	if err := tr.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := tr.Roster().Account().String(); got != "romeo@montague.lit/own" {
		t.Fatalf("account %s", got)
	}
	sess, err := srv.WaitAvailable(ctx, s.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sess.Caps(); !ok {
		t.Fatal("Start sent presence without caps")
	}

	if err := srv.SendPresence(ctx, s.LocalAddr(), psatest.Presence{From: juliet, Status: "hi",
		Annotations: []psa.Annotation{{Condition: psa.ConnectionPaused}}}); err != nil {
		t.Fatal(err)
	}
	e := rec.nextRoster(ctx, t, "juliet stale", kindJID(roster.EventStale, juliet))
	if e.Mark.Condition != psa.ConnectionPaused || !e.Mark.By.Equal(montague) {
		t.Fatalf("event %+v", e)
	}
	select {
	case p := <-own:
		if !p.From.Equal(juliet) {
			t.Fatalf("own handler got presence from %s", p.From)
		}
	case <-ctx.Done():
		t.Fatal("the application's presence handler was not called")
	}
	// Other stanzas still reach the mux: the server's ping is answered.
	if err := srv.Ping(ctx, s.LocalAddr()); err != nil {
		t.Fatal(err)
	}

	// The driver around Serve: the session ends, everything is marked.
	sess.Drop()
	<-served
	e = rec.nextRoster(ctx, t, "local-disconnected", kindJID(roster.EventStale, juliet))
	if e.Mark.Condition != psa.LocalDisconnected {
		t.Fatalf("event %+v", e)
	}
	if n := tr.Sweep(); n != 1 {
		t.Fatalf("swept %d", n)
	}
	rec.nextRoster(ctx, t, "juliet swept", kindJID(roster.EventUnavailable, juliet))
}

// TestTrackerCloseWithBlockedCallback: Tracker.Close keeps Client.Close's
// contract: it does not wait for ever for a callback that does not return,
// but returns ErrCloseTimeout; the callbacks receive nothing more, and the
// Tracker's goroutines end once that callback returns.
func TestTrackerCloseWithBlockedCallback(t *testing.T) {
	base := leaktest.Take()
	release := make(chan struct{})
	blocked := make(chan struct{})
	after := make(chan roster.Event, 10)
	tr, err := client.NewTracker(romeo, client.OnRoster(func(e roster.Event) {
		select {
		case <-release:
			after <- e
			return
		default:
		}
		close(blocked)
		<-release
	}))
	if err != nil {
		t.Fatal(err)
	}
	h := tr.Handler(nil)
	for _, p := range []string{`<presence from='juliet@capulet.lit/balcony'/>`, `<presence from='juliet@capulet.lit/orchard'/>`} {
		d := xml.NewDecoder(strings.NewReader(p))
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		start := tok.(xml.StartElement)
		if err := h.HandleXMPP(struct {
			xml.TokenReader
			xmlstream.Encoder
		}{d, nil}, &start); err != nil {
			t.Fatal(err)
		}
	}
	<-blocked
	var cerr error
	returns(t, "Close", func() { cerr = tr.Close() })
	if !errors.Is(cerr, client.ErrCloseTimeout) {
		t.Fatalf("Close with a blocked callback: %v, want ErrCloseTimeout", cerr)
	}
	close(release)
	base.Wait(t) // every goroutine of the Tracker ends
	if len(after) != 0 {
		t.Errorf("%d callbacks after Close gave up on them", len(after))
	}
}

// TestLoggerAttributes: the client's log records carry lib=psakit as an
// attribute, not as a prefix of their message.
func TestLoggerAttributes(t *testing.T) {
	var buf strings.Builder
	tr, err := client.NewTracker(romeo, client.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// A presence whose from is no JID is dropped, with a warning.
	d := xml.NewDecoder(strings.NewReader(`<presence from='@@'/>`))
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	start := tok.(xml.StartElement)
	if err := tr.Handler(nil).HandleXMPP(struct {
		xml.TokenReader
		xmlstream.Encoder
	}{d, nil}, &start); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.Contains(got, `msg="dropped an invalid presence" lib=psakit`) {
		t.Errorf("log:\n%s\nwant the message without prefix, and lib=psakit", got)
	}
}
