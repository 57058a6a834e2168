package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client/clientflag"
	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
)

// mucbot joins its rooms, comes back after a technical removal, and leaves
// on Ctrl-C, logging each step.
func TestMucbot(t *testing.T) {
	leaktest.Check(t)
	srv := psatest.NewServer(psatest.WithUser("bot", "pw"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, name := range []string{"orchard", "garden"} {
		r := srv.Room(name)
		r.SetPersistent(true)
	}
	t.Setenv("PSAKIT_PASSWORD", "pw")
	pr, pw := io.Pipe()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"-jid", "bot@montague.lit", "-addr", srv.Addr(), "-tls", "none",
			"-room", "orchard@muc.montague.lit/bot", "-room", "garden@muc.montague.lit/bot", "-rejoin-delay", "10ms"}, os.Stdin, pw)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	var seen []string
	// expect reads log lines until one contains every word.
	expect := func(words ...string) {
		t.Helper()
		for lines.Scan() {
			seen = append(seen, lines.Text())
			ok := true
			for _, w := range words {
				ok = ok && strings.Contains(lines.Text(), w)
			}
			if ok {
				return
			}
		}
		t.Fatalf("no log line with %q (run: %v):\n%s", words, <-done, strings.Join(seen, "\n"))
	}
	expect(`msg=connected `)
	expect("msg=room-joined", "orchard@muc.montague.lit")
	expect("msg=room-joined", "garden@muc.montague.lit")

	if err := srv.Room("orchard").Kick(ctx, "bot", 332); err != nil {
		t.Fatal(err)
	}
	expect("msg=room-dropped", "orchard@muc.montague.lit", "codes=")
	expect("msg=rejoin", "orchard@muc.montague.lit", "reason=removed")
	expect("msg=room-joined", "orchard@muc.montague.lit")

	stop() // Ctrl-C
	expect("msg=room-left")
	expect("msg=room-left")
	expect("msg=closed")
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	io.Copy(io.Discard, pr)
	for _, name := range []string{"orchard", "garden"} {
		for _, o := range srv.Room(name).Occupants() {
			if o.JID.Equal(jid.MustParse("bot@montague.lit")) || o.Nick == "bot" {
				t.Errorf("still in %s", name)
			}
		}
	}
}

// startBot runs mucbot in the background with the flags extra, for the rooms
// given; its log lines come on the returned channel, which is closed when
// run returned, with its error on done.
func startBot(ctx context.Context, t *testing.T, srv *psatest.Server, extra []string, rooms ...string) (lines chan string, done chan error) {
	t.Helper()
	t.Setenv("PSAKIT_PASSWORD", "pw")
	args := append([]string{"-jid", "bot@montague.lit", "-addr", srv.Addr(), "-tls", "none", "-rejoin-delay", "10ms"}, extra...)
	for _, r := range rooms {
		args = append(args, "-room", r)
	}
	pr, pw := io.Pipe()
	done = make(chan error, 1)
	go func() {
		done <- run(ctx, args, os.Stdin, pw)
		pw.Close()
	}()
	lines = make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, pr)
	}()
	return lines, done
}

// waitLine waits for a log line with every word.
func waitLine(ctx context.Context, t *testing.T, lines chan string, words ...string) {
	t.Helper()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("mucbot ended without a log line with %q", words)
			}
			all := true
			for _, w := range words {
				all = all && strings.Contains(l, w)
			}
			if all {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no log line with %q", words)
		}
	}
}

// nextMessage waits for the next message the bot sent, and returns its
// type and body.
func nextMessage(ctx context.Context, t *testing.T, sess *psatest.Session, to string) (string, string) {
	t.Helper()
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" && st.To.String() == to })
	if err != nil {
		t.Fatalf("no message to %s: %v", to, err)
	}
	var v struct {
		Body string `xml:"body"`
	}
	if err := st.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return st.Type, v.Body
}

// mucbot answers !status and !help in its rooms and in direct chat. In a
// room, !status tells about that room alone: fresh or stale, and the stale
// occupants with who said so. In direct chat the admins get every room,
// the failed joins included; others get a refusal.
func TestMucbotCommands(t *testing.T) {
	leaktest.Check(t)
	srv := psatest.NewServer(psatest.WithUser("bot", "pw"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	orchard, garden := srv.Room("orchard"), srv.Room("garden")
	orchard.SetPersistent(true)
	garden.SetPersistent(true)
	garden.RefuseJoins(stanza.Forbidden)
	if err := orchard.AddOccupant(ctx, "Juliet", jid.MustParse("juliet@capulet.lit/balcony"), "", ""); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	lines, done := startBot(runCtx, t, srv, []string{"-admin", "friar@verona.lit, romeo@montague.lit/lane"},
		"orchard@muc.montague.lit/bot", "garden@muc.montague.lit/bot")
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitLine(ctx, t, lines, "msg=room-joined", "orchard@muc.montague.lit")
	waitLine(ctx, t, lines, "msg=room-join-failed", "garden@muc.montague.lit")
	sess, err := srv.WaitAvailable(ctx, jid.MustParse("bot@montague.lit"))
	if err != nil {
		t.Fatal(err)
	}
	// The room's service says Juliet's server is unreachable.
	if err := orchard.Annotate(ctx, "Juliet", psa.Annotation{Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	// The annotation comes before the command on the bot's stream, and the
	// model applies it as it is read: the answer sees it.
	const orchardStatus = "orchard@muc.montague.lit: fresh, joined as bot, 2 occupants, 1 stale\n  Juliet: server-unavailable by muc.montague.lit"

	// In the room: a groupchat answer, to the room, about the room alone.
	if err := orchard.Say(ctx, "Juliet", psatest.Message{Body: "!status"}); err != nil {
		t.Fatal(err)
	}
	if typ, body := nextMessage(ctx, t, sess, "orchard@muc.montague.lit"); typ != "groupchat" || body != orchardStatus {
		t.Fatalf("answer in the room (%s):\n%s\nwant\n%s", typ, body, orchardStatus)
	}
	waitLine(ctx, t, lines, "msg=answered", "command=!status", "type=groupchat")
	// A private message through the room: a chat answer to the occupant,
	// about the room alone.
	julietInRoom := jid.MustParse("orchard@muc.montague.lit/Juliet")
	if err := srv.SendMessage(ctx, sess.JID(), psatest.Message{From: julietInRoom, Body: "!status"}); err != nil {
		t.Fatal(err)
	}
	if typ, body := nextMessage(ctx, t, sess, julietInRoom.String()); typ != "chat" || body != orchardStatus {
		t.Fatalf("answer through the room (%s):\n%s\nwant\n%s", typ, body, orchardStatus)
	}

	// In direct chat: every room for an admin, a full JID of -admin and a
	// bare one admitting every resource.
	for _, admin := range []string{"romeo@montague.lit/lane", "friar@verona.lit/cell"} {
		from := jid.MustParse(admin)
		if err := srv.SendMessage(ctx, sess.JID(), psatest.Message{From: from, Body: "!status"}); err != nil {
			t.Fatal(err)
		}
		typ, body := nextMessage(ctx, t, sess, admin)
		for _, want := range []string{orchardStatus, "garden@muc.montague.lit: not joined:"} {
			if typ != "chat" || !strings.Contains(body, want) {
				t.Fatalf("answer to %s (%s) lacks %q:\n%s", admin, typ, want, body)
			}
		}
	}
	// Anyone else gets a refusal, and help.
	romeo := jid.MustParse("romeo@montague.lit/other")
	for _, tc := range []struct{ cmd, want string }{{"!status", refusal}, {" !help ", helpText}} {
		if err := srv.SendMessage(ctx, sess.JID(), psatest.Message{From: romeo, Body: tc.cmd}); err != nil {
			t.Fatal(err)
		}
		if typ, body := nextMessage(ctx, t, sess, romeo.String()); typ != "chat" || body != tc.want {
			t.Fatalf("%s from a stranger (%s):\n%s", tc.cmd, typ, body)
		}
	}

	// What is no command, bounces, groupchat from outside our rooms, and
	// private messages through a room from no occupant get no answer: the
	// answer to the last !help is the next message the bot sends.
	for _, m := range []psatest.Message{
		{From: romeo, Body: "hello"},
		{From: romeo, Type: stanza.ErrorMessage, Body: "!help"},
		{From: romeo, Type: stanza.GroupChatMessage, Body: "!status"},
		{From: jid.MustParse("garden@muc.montague.lit/Juliet"), Type: stanza.GroupChatMessage, Body: "!status"},
		{From: jid.MustParse("orchard@muc.montague.lit/Ghost"), Body: "!status"},
		{From: jid.MustParse("orchard@muc.montague.lit"), Body: "!status"},
		{From: jid.MustParse("tybalt@capulet.lit/street"), Body: "!help"},
	} {
		if err := srv.SendMessage(ctx, sess.JID(), m); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" })
	if err != nil || st.To.String() != "tybalt@capulet.lit/street" {
		t.Fatalf("the bot sent %s (%v)", st.Raw, err)
	}
}

// A conversation gets answerBurst answers at once, then no more until time
// passes: a room repeating a command does not make the bot flood it.
func TestAllow(t *testing.T) {
	b := newBot(nil, jid.MustParse("bot@montague.lit"), nil, nil)
	for i := range answerBurst {
		if !b.allow("orchard@muc.montague.lit") {
			t.Fatalf("answer %d refused", i+1)
		}
	}
	if b.allow("orchard@muc.montague.lit") {
		t.Fatal("answered beyond the burst")
	}
	if !b.allow("garden@muc.montague.lit") {
		t.Fatal("another conversation refused")
	}
	// An answer comes back after answerEvery.
	b.answered["orchard@muc.montague.lit"].last = time.Now().Add(-answerEvery)
	if !b.allow("orchard@muc.montague.lit") || b.allow("orchard@muc.montague.lit") {
		t.Fatal("not one more answer after answerEvery")
	}
}

// -admin takes accounts, bare or full, in lists and repeated; no domain.
func TestAdmins(t *testing.T) {
	var a admins
	for _, v := range []string{"friar@verona.lit, romeo@montague.lit/lane", "balthasar@montague.lit"} {
		if err := a.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	self := jid.MustParse("bot@montague.lit/bot")
	for from, want := range map[string]bool{
		"bot@montague.lit/phone":       true, // the bot's own account
		"friar@verona.lit/cell":        true,
		"friar@verona.lit":             true,
		"romeo@montague.lit/lane":      true,
		"romeo@montague.lit/balcony":   false,
		"balthasar@montague.lit/horse": true,
		"verona.lit":                   false,
		"verona.lit/friar@verona.lit":  false,
		"friar@capulet.lit/cell":       false,
		"orchard@muc.montague.lit/bot": false,
	} {
		if got := a.admits(self, jid.MustParse(from)); got != want {
			t.Errorf("admits(%s) = %v, want %v", from, got, want)
		}
	}
	for _, bad := range []string{"verona.lit", "friar@", ",", "friar@verona.lit/"} {
		var a admins
		if err := a.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted %v", bad, a)
		}
	}
}

// mucbot exits with an error when every join failed, and logs each
// failure once.
func TestMucbotEveryJoinFailed(t *testing.T) {
	leaktest.Check(t)
	srv := psatest.NewServer(psatest.WithUser("bot", "pw"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv.Room("orchard").RefuseJoins(stanza.Forbidden)
	srv.Room("garden").RefuseJoins(stanza.RegistrationRequired)
	lines, done := startBot(ctx, t, srv, nil, "orchard@muc.montague.lit/bot", "garden@muc.montague.lit/bot")
	var all []string
	for l := range lines {
		all = append(all, l)
	}
	err := <-done
	if err == nil || clientflag.ExitCode(err) != 1 {
		t.Fatalf("run: %v", err)
	}
	for _, room := range []string{"orchard@muc.montague.lit", "garden@muc.montague.lit"} {
		n := 0
		for _, l := range all {
			if strings.Contains(l, room) && (strings.Contains(l, "failed") || strings.Contains(l, "level=ERROR")) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d lines about the failure, want 1:\n%s", room, n, strings.Join(all, "\n"))
		}
	}
}

// mucbot logs each thing once: a dropped connection, the reconnection, the
// rejoin and a spoofed annotation each make one line, not one from the
// client's logger and one from mucbot's callbacks, or one for the room
// event and one for the action.
func TestMucbotLogsOnce(t *testing.T) {
	leaktest.Check(t)
	srv := psatest.NewServer(psatest.WithUser("bot", "pw"), psatest.WithMUC("muc.montague.lit"))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	orchard := srv.Room("orchard")
	orchard.SetPersistent(true)
	if err := orchard.AddOccupant(ctx, "Juliet", jid.MustParse("juliet@capulet.lit/balcony"), "", ""); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	lines, done := startBot(runCtx, t, srv, nil, "orchard@muc.montague.lit/bot")
	var all []string
	// wait collects the log until a line with every word.
	wait := func(words ...string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("mucbot ended without a log line with %q:\n%s", words, strings.Join(all, "\n"))
				}
				all = append(all, l)
				ok = true
				for _, w := range words {
					ok = ok && strings.Contains(l, w)
				}
				if ok {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no log line with %q:\n%s", words, strings.Join(all, "\n"))
			}
		}
	}
	wait("room-joined", "orchard@muc.montague.lit")
	// A third domain's annotation about Juliet is rejected.
	if err := orchard.Annotate(ctx, "Juliet", psa.Annotation{From: jid.MustParse("verona.lit"), Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	wait("rejected", "orchard@muc.montague.lit/Juliet")
	srv.DropAll()
	wait("rejoin", "orchard@muc.montague.lit", "reason=reconnect")
	wait("room-joined", "orchard@muc.montague.lit")
	stop()
	for l := range lines {
		all = append(all, l)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, tc := range []struct {
		what string
		n    int
		is   func(string) bool
	}{
		{"connected", 2, func(l string) bool { return strings.Contains(l, "msg=connected ") }},
		{"disconnected", 1, func(l string) bool {
			return strings.Contains(l, "disconnected") && !strings.Contains(l, "local-disconnected")
		}},
		// Once per presence: the room sends Juliet's again on the rejoin.
		{"rejected", 2, func(l string) bool { return strings.Contains(l, "rejected") }},
		{"rejoin", 1, func(l string) bool { return strings.Contains(l, "rejoin") }},
	} {
		n := 0
		for _, l := range all {
			if tc.is(l) {
				n++
			}
		}
		if n != tc.n {
			t.Errorf("%d lines say %s, want %d:\n%s", n, tc.what, tc.n, strings.Join(all, "\n"))
		}
	}
}
