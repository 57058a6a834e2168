package prosody_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

const (
	montague   = prosodytest.Montague
	capulet    = prosodytest.Capulet
	conference = prosodytest.Conference
	pw         = prosodytest.Password
)

// shakespeare is prosodytest.Shakespeare.
func shakespeare(t *testing.T, tweak func(mont, capu *prosodytest.Spec)) *prosodytest.Network {
	t.Helper()
	return prosodytest.Shakespeare(t, tweak)
}

// client connects user@srv.Domain/resource; features are advertised in caps.
func client(ctx context.Context, t *testing.T, srv *prosodytest.Server, user, resource string, cfg rawclient.Config) *rawclient.Client {
	t.Helper()
	cfg.Addr = srv.C2SAddr
	cfg.Domain = srv.Domain
	cfg.User = user
	cfg.Password = pw
	cfg.Resource = resource
	c, err := rawclient.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting %s@%s: %v", user, srv.Domain, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// occupant connects user, sends its presence and joins room as nick.
func occupant(ctx context.Context, t *testing.T, srv *prosodytest.Server, user, resource string, cfg rawclient.Config, room, nick string) *rawclient.Client {
	t.Helper()
	c := client(ctx, t, srv, user, resource, cfg)
	must(t, c.SendPresence(ctx, ""))
	must(t, c.JoinMUC(ctx, room, nick))
	return c
}

var psaFeatures = rawclient.Config{Features: []string{rawclient.NSPSA}}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func annotationOf(e *rawclient.Element) *rawclient.Element {
	return e.Child(rawclient.NSPSA, "state-annotation")
}

// annotated matches a presence from `from` annotated by `by` with condition
// cond ("" for the empty annotation).
func annotated(from, by, cond string) func(*rawclient.Element) bool {
	return func(e *rawclient.Element) bool {
		if !e.Is(rawclient.NSClient, "presence") || e.Attr("from") != from || e.Attr("type") != "" {
			return false
		}
		a := annotationOf(e)
		if a == nil || a.Attr("from") != by {
			return false
		}
		if cond == "" {
			return len(a.Children) == 0
		}
		return a.Child(rawclient.NSPSA, cond) != nil
	}
}

// plainPresence matches an unannotated presence from `from` of type typ.
func plainPresence(from, typ string) func(*rawclient.Element) bool {
	return func(e *rawclient.Element) bool {
		return e.Is(rawclient.NSClient, "presence") && e.Attr("from") == from && e.Attr("type") == typ && annotationOf(e) == nil
	}
}

func expect(ctx context.Context, t *testing.T, c *rawclient.Client, what string, match func(*rawclient.Element) bool) *rawclient.Element {
	t.Helper()
	e, err := c.Expect(ctx, match)
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v\nreceived:\n%s", c.JID(), what, err, dump(c.History()))
	}
	return e
}

func dump(es []*rawclient.Element) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString("  ")
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// annotations returns the annotated presences in history.
func annotations(es []*rawclient.Element) []*rawclient.Element {
	var out []*rawclient.Element
	for _, e := range es {
		if e.Is(rawclient.NSClient, "presence") && annotationOf(e) != nil {
			out = append(out, e)
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// expectEach waits until c received a stanza for every matcher, in any
// order.
func expectEach(ctx context.Context, t *testing.T, c *rawclient.Client, what string, matchers ...func(*rawclient.Element) bool) {
	t.Helper()
	left := append([]func(*rawclient.Element) bool(nil), matchers...)
	for len(left) > 0 {
		_, err := c.Expect(ctx, func(e *rawclient.Element) bool {
			for i, m := range left {
				if m(e) {
					left = append(left[:i:i], left[i+1:]...)
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatalf("%s: waiting for %s (%d left): %v\nreceived:\n%s", c.JID(), what, len(left), err, dump(c.History()))
		}
	}
}

// announcementsSent waits until srv's MUC service logged, after mark, that
// it queued its announcements of a domain's occupants ("Announcing N
// occupants " followed by what), and then that it sent them all.
func announcementsSent(ctx context.Context, t *testing.T, srv *prosodytest.Server, mark int, what string) {
	t.Helper()
	_, next, err := srv.WaitLog(ctx, mark, "occupants "+what)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.WaitLog(ctx, next, "Occupant announcements done"); err != nil {
		t.Fatal(err)
	}
}
