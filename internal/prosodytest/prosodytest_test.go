package prosodytest_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

func dial(ctx context.Context, t *testing.T, s *prosodytest.Server, user string, tlsOn bool) *rawclient.Client {
	t.Helper()
	cfg := rawclient.Config{Addr: s.C2SAddr, Domain: s.Domain, User: user, Password: "secret", Resource: "test"}
	if tlsOn {
		cfg.TLS = s.TLSConfig()
	}
	c, err := rawclient.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %s@%s (TLS %v): %v", user, s.Domain, tlsOn, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestPlainAndStartTLS(t *testing.T) {
	start := time.Now()
	n := prosodytest.Start(t, prosodytest.Spec{Domain: "verona.lit", Users: map[string]string{"friar": "secret"}})
	t.Logf("one server started in %v", time.Since(start))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := n.Server("verona.lit")
	for _, tlsOn := range []bool{false, true} {
		c := dial(ctx, t, s, "friar", tlsOn)
		if c.JID() != "friar@verona.lit/test" {
			t.Errorf("bound %q", c.JID())
		}
		if err := c.Ping(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Accounts can be added while the server runs.
	if err := s.Register("balthasar", "secret"); err != nil {
		t.Fatal(err)
	}
	dial(ctx, t, s, "balthasar", false)
	if _, err := rawclient.Dial(ctx, rawclient.Config{Addr: s.C2SAddr, Domain: s.Domain, User: "friar", Password: "wrong"}); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
}

func message(to, body string) string {
	return "<message type='chat' to='" + to + "'><body>" + body + "</body></message>"
}

func isMessage(body string) func(*rawclient.Element) bool {
	return func(e *rawclient.Element) bool {
		b := e.Child(rawclient.NSClient, "body")
		return e.Is(rawclient.NSClient, "message") && b != nil && b.Text() == body
	}
}

// Federation over the forwarders, Cut and Heal, Kill and Restart, without
// mod_psa.
func TestNetwork(t *testing.T) {
	start := time.Now()
	n := prosodytest.Start(t,
		prosodytest.Spec{Domain: "montague.lit", MUC: "conference.montague.lit", Users: map[string]string{"romeo": "secret"}, WithoutPSA: true},
		prosodytest.Spec{Domain: "capulet.lit", Users: map[string]string{"juliet": "secret"}, WithoutPSA: true},
	)
	t.Logf("two servers started in %v", time.Since(start))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	mont, capu := n.Server("montague.lit"), n.Server("capulet.lit")
	if n.Server("conference.montague.lit") != mont || n.Server("nowhere.lit") != nil {
		t.Fatal("Server lookup is wrong")
	}
	romeo := dial(ctx, t, mont, "romeo", false)
	juliet := dial(ctx, t, capu, "juliet", true)

	send := func(body string) {
		t.Helper()
		if err := romeo.Send(message("juliet@capulet.lit/test", body)); err != nil {
			t.Fatal(err)
		}
	}
	send("one")
	if _, err := juliet.Expect(ctx, isMessage("one")); err != nil {
		t.Fatal(err)
	}

	mark := mont.LogMark()
	if err := n.Cut("montague.lit", "capulet.lit"); err != nil {
		t.Fatal(err)
	}
	// Prosody notices the reset asynchronously: a message sent before that
	// would be written into the dead connection.
	if _, _, err := mont.WaitLog(ctx, mark, "Destroying outgoing session montague.lit->capulet.lit"); err != nil {
		t.Fatal(err)
	}
	send("two")
	e, err := romeo.Expect(ctx, func(e *rawclient.Element) bool {
		return e.Is(rawclient.NSClient, "message") && e.Attr("type") == "error"
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Child("", "error").Child("", "remote-server-not-found") == nil {
		t.Errorf("expected remote-server-not-found while cut, got %s", e)
	}
	if err := n.Heal("montague.lit", "capulet.lit"); err != nil {
		t.Fatal(err)
	}
	send("three")
	if _, err := juliet.Expect(ctx, isMessage("three")); err != nil {
		t.Fatal(err)
	}

	// Kill: the client's stream dies; Restart: same ports, same accounts.
	if err := capu.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := juliet.Next(ctx); err == nil {
		t.Fatal("stream survived SIGKILL")
	}
	restart := time.Now()
	if err := capu.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %v", time.Since(restart))
	juliet = dial(ctx, t, capu, "juliet", false)
	send("four")
	if _, err := juliet.Expect(ctx, isMessage("four")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(capu.LogTail(1000), "prosodytest: process exited") {
		t.Error("log does not show the killed process")
	}

	// The admin console works.
	out, err := mont.Shell(ctx, `s2s:show()`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("s2s:show(): %s", strings.TrimSpace(out))
}

// noProsody hides every Prosody installation from the test: none in PATH,
// none in the cache directory, none named by PSAKIT_PROSODY.
func noProsody(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv(prosodytest.EnvProsody, "")
}

func TestRequireSkipsWithoutProsody(t *testing.T) {
	noProsody(t)
	t.Setenv(prosodytest.EnvRequire, "")
	reached := false
	t.Run("missing", func(t *testing.T) {
		prosodytest.Require(t)
		reached = true
	})
	if reached {
		t.Fatal("Require did not skip without any Prosody")
	}
}

// NewNetwork runs servers outside a test's lifetime: Close stops them and
// removes their directory, and may be called twice.
func TestNewNetworkAndClose(t *testing.T) {
	prosodytest.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n, err := prosodytest.NewNetwork(ctx, t.Logf, prosodytest.Spec{Domain: "verona.lit", Users: map[string]string{"friar": "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	s := n.Server("verona.lit")
	if !s.Running() {
		t.Fatal("the server does not run")
	}
	c := dial(ctx, t, s, "friar", false)
	if err := c.Ping(ctx, ""); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	dir := n.Dir()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Error("the server runs after Close")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists after Close (%v)", dir, err)
	}
}

func TestNewNetworkWithoutProsody(t *testing.T) {
	noProsody(t)
	if _, err := prosodytest.NewNetwork(t.Context(), nil, prosodytest.Spec{Domain: "verona.lit"}); err == nil {
		t.Fatal("NewNetwork without any Prosody did not fail")
	}
}
