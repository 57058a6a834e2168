package e2e_test

import (
	"errors"
	"testing"
	"time"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// Our own server freezes (SIGSTOP): TCP stays up and nothing is answered,
// so only the client's keepalive can tell. With the keepalive at 5 s (what
// the examples' -keepalive 5s sets) the client takes the connection for
// dead, marks juliet local-disconnected, and keeps trying to reconnect;
// after the thaw it reconnects, resumes its session (the server kept it,
// XEP-0198) and juliet is restored.
func TestOwnServerFrozen(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, nil)
	ctx := testContext(t, 120*time.Second)
	mont := n.Server(montague)
	self := "romeo@montague.lit"

	juliet, rec, romeo := romeoSeesJuliet(ctx, t, n, "<status>Ay me!</status>", client.WithKeepalive(5*time.Second, 0))
	jfull := juliet.JID()
	rec.skip()

	mark := rec.mark()
	frozen := time.Now()
	must(t, mont.Freeze())
	t.Cleanup(func() { _ = mont.Thaw() })
	e := rec.expect(ctx, t, "disconnected", connEvent(client.ConnDisconnected))
	timing(t, "freeze of our server -> disconnected", e.at.Sub(frozen))
	var de *client.DisconnectError
	if !errors.As(e.conn.Err, &de) || de.Reason != client.ReasonNetwork || !errors.Is(e.conn.Err, client.ErrNoResponse) {
		t.Fatalf("disconnected with %v, want a network failure, no response", e.conn.Err)
	}
	rec.waitFrom(ctx, t, mark, "juliet local-disconnected", marked(roster.EventStale, jfull, psa.LocalDisconnected, self))
	rec.expect(ctx, t, "reconnecting", connEvent(client.ConnReconnecting))
	if romeo.Session() != nil {
		t.Error("the client has a session while its server is frozen")
	}

	mark = rec.mark()
	thawed := time.Now()
	must(t, mont.Thaw())
	// The thawed server still has the session (XEP-0198): it is resumed.
	e, _ = rec.waitFrom(ctx, t, mark, "resumed", connEvent(client.ConnResumed))
	timing(t, "thaw -> resumed", e.at.Sub(thawed))
	rec.waitFrom(ctx, t, mark, "juliet restored", marked(roster.EventRestored, jfull, psa.LocalDisconnected, self))
	if c := rec.count(mark, connEvent(client.ConnConnected)); c != 0 {
		t.Errorf("%d new sessions after the thaw, want the old one resumed", c)
	}
	if r := resource(t, romeo, jfull); !r.Fresh() || r.StatusText() != "Ay me!" {
		t.Errorf("juliet after the thaw: %+v", r)
	}
}
