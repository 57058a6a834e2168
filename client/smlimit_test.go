package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa/psatest"
)

// A stanza over the limits ends the session before the client counts it
// (XEP-0198): were that session resumed, the server would send the stanza
// again, the session would end again, and so on for ever, so that anyone
// whose stanza reaches the client could keep it offline. The session ends
// with the end of its stream, which the server does not keep: the client
// binds a new session, and stays.
func TestStanzaLimitNotReplayed(t *testing.T) {
	srv, ctx := setup(t, psatest.WithStreamManagement(0))
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithMaxStanzaDepth(16), client.WithSettle(time.Millisecond))
	rec.nextConn(ctx, t, client.ConnConnected)
	deep := strings.Repeat("<a xmlns='urn:example:x'>", 20) + strings.Repeat("</a>", 20)
	if err := srv.SendPresence(ctx, c.JID(), psatest.Presence{From: juliet, Extra: deep}); err != nil {
		t.Fatal(err)
	}
	rec.nextConn(ctx, t, client.ConnDisconnected)
	for {
		var e client.ConnEvent
		select {
		case e = <-rec.conn:
		case <-ctx.Done():
			t.Fatal("the client did not come back")
		}
		switch e.Kind {
		case client.ConnDisconnected:
			t.Fatalf("the session ended again: %v", e.Err)
		case client.ConnResumed:
			t.Fatal("the session that holds the stanza over the limits was resumed")
		case client.ConnResynced:
			if err := srv.Ping(ctx, c.JID()); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}
