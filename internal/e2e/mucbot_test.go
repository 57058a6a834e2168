package e2e_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// buildExample builds the example program name (examples/name) into a
// temporary directory, with the race detector when the tests have it, and
// returns the binary's path. go test puts its own go first in PATH.
func buildExample(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building %s needs the go command: %v", name, err)
	}
	bin := filepath.Join(t.TempDir(), name)
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/psakit/psakit/examples/"+name)
	out, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// program is an example program running in its own process; its standard
// error comes line by line on lines, which is closed when it ends.
type program struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	err   error // Wait's, once done is closed
	log   []string
}

// startProgram runs bin with args and PSAKIT_PASSWORD set. The test's end kills it
// if it still runs.
func startProgram(t *testing.T, bin string, args ...string) *program {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PSAKIT_PASSWORD="+pw)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &program{cmd: cmd, lines: make(chan string, 10_000), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stderr)
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = p.wait()
		if t.Failed() {
			t.Logf("%s's log:\n%s", filepath.Base(bin), strings.Join(p.log, "\n"))
		}
	})
	return p
}

// waitLine waits for a line of the program's log with every word.
func (p *program) waitLine(ctx context.Context, t *testing.T, words ...string) string {
	t.Helper()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("the program ended (%v) without a log line with %q", p.wait(), words)
			}
			p.log = append(p.log, l)
			all := true
			for _, w := range words {
				all = all && strings.Contains(l, w)
			}
			if all {
				return l
			}
		case <-ctx.Done():
			t.Fatalf("no log line with %q: %v", words, ctx.Err())
		}
	}
}

// wait waits for the program's end, reading the rest of its log, and
// returns Wait's error.
func (p *program) wait() error {
	for l := range p.lines {
		p.log = append(p.log, l)
	}
	<-p.done
	return p.err
}

// bodyOf returns the text of a message's body, "" when it has none.
func bodyOf(e *rawclient.Element) string {
	if b := e.Child(rawclient.NSClient, "body"); b != nil {
		return b.Text()
	}
	return ""
}

// answerFrom waits for the next message from `from` whose body starts
// with prefix.
func answerFrom(ctx context.Context, t *testing.T, c *rawclient.Client, from, prefix string) *rawclient.Element {
	t.Helper()
	e, err := c.Expect(ctx, func(e *rawclient.Element) bool {
		return e.Is(rawclient.NSClient, "message") && e.Attr("from") == from && strings.HasPrefix(bodyOf(e), prefix)
	})
	if err != nil {
		t.Fatalf("no answer from %s: %v", from, err)
	}
	return e
}

// mucbot, the example program, on Prosody: it answers !status in its room
// before an s2s cut (everyone fresh), during it (the nurse, whose server
// is cut off, named with condition and annotator), and after the heal; in
// direct chat it answers its admin with every room, and others with a
// refusal; Ctrl-C makes it leave and exit 0.
func TestMucbotAnswersStatus(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	bin := buildExample(ctx, t, "mucbot")
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) { mont.Users["bot"] = pw })
	mont, capu := n.Server(montague), n.Server(capulet)
	room := "orchard@" + conference
	botNick := room + "/mucbot"

	mark := mont.LogMark()
	bot := startProgram(t, bin, "-jid", "bot@montague.lit/mucbot", "-addr", mont.C2SAddr, "-tls", "none",
		"-room", botNick, "-admin", "romeo@montague.lit", "-remote-check", "0")
	bot.waitLine(ctx, t, "msg=room-joined", "room="+room)
	// The MUC service annotates for the bot once it verified its caps.
	awaitOccupantAnnotations(ctx, t, mont, mark, "bot@montague.lit/mucbot")
	benvolio := raw(ctx, t, mont, "benvolio", "street", rawclient.Config{}, "")
	must(t, benvolio.JoinMUC(ctx, room, "Benvolio"))
	nurse := raw(ctx, t, capu, "nurse", "garden", rawclient.Config{}, "")
	must(t, nurse.JoinMUC(ctx, room, "Nurse"))

	// ask sends !status to the room as c (nick in it), and returns the
	// bot's answer, a groupchat message from its nick: the first after
	// the room reflected the question to c, for every occupant hears the
	// answers to the others.
	ask := func(c *rawclient.Client, nick string) string {
		t.Helper()
		id := rawclient.NewID()
		must(t, c.Sendf(`<message to='%s' type='groupchat' id='%s'><body>!status</body></message>`, room, id))
		if _, err := c.Expect(ctx, func(e *rawclient.Element) bool {
			return e.Is(rawclient.NSClient, "message") && e.Attr("from") == room+"/"+nick && e.Attr("id") == id
		}); err != nil {
			t.Fatalf("the room did not reflect %s's question: %v", nick, err)
		}
		e := answerFrom(ctx, t, c, botNick, room+":")
		if e.Attr("type") != "groupchat" {
			t.Fatalf("the answer in the room is of type %q", e.Attr("type"))
		}
		return bodyOf(e)
	}
	want := func(when, got string, lines ...string) {
		t.Helper()
		if w := strings.Join(lines, "\n"); got != w {
			t.Fatalf("!status %s:\n%s\nwant\n%s", when, got, w)
		}
	}

	// The nurse's join reached the bot before her message: the room
	// handles her stanzas in order.
	want("before the cut", ask(nurse, "Nurse"), room+": fresh, joined as mucbot, 3 occupants, 0 stale")

	mark = mont.LogMark()
	must(t, n.Cut(montague, capulet))
	// The service has sent the annotations (in slices) before it logs that
	// its queue is empty, and the bot's stream delivers them before
	// benvolio's message.
	mucAnnounced(ctx, t, mont, mark, "occupants annotated server-unavailable for capulet.lit")
	want("during the cut", ask(benvolio, "Benvolio"),
		room+": fresh, joined as mucbot, 3 occupants, 1 stale",
		"  Nurse: server-unavailable by "+conference)

	// In direct chat, romeo (-admin) hears about every room: a chat
	// answer, to his full JID.
	romeo := raw(ctx, t, mont, "romeo", "lane", rawclient.Config{}, "")
	must(t, romeo.Sendf(`<message to='bot@montague.lit/mucbot' type='chat'><body>!status</body></message>`))
	e := answerFrom(ctx, t, romeo, "bot@montague.lit/mucbot", room+":")
	if e.Attr("type") != "chat" || e.Attr("to") != romeo.JID() {
		t.Fatalf("the direct answer: %s", e)
	}
	want("to romeo during the cut", bodyOf(e),
		room+": fresh, joined as mucbot, 3 occupants, 1 stale",
		"  Nurse: server-unavailable by "+conference)

	mark = mont.LogMark()
	must(t, n.Heal(montague, capulet))
	mucAnnounced(ctx, t, mont, mark, "occupants with an empty annotation for capulet.lit")
	want("after the heal", ask(nurse, "Nurse"), room+": fresh, joined as mucbot, 3 occupants, 0 stale")

	// The nurse is no admin: in direct chat, a refusal, not the rooms.
	must(t, nurse.Sendf(`<message to='bot@montague.lit/mucbot' type='chat'><body>!status</body></message>`))
	e = answerFrom(ctx, t, nurse, "bot@montague.lit/mucbot", "")
	if e.Attr("type") != "chat" || strings.Contains(bodyOf(e), room) {
		t.Fatalf("the answer to the nurse in direct chat: %s", e)
	}

	// Ctrl-C: mucbot leaves its room and exits 0.
	must(t, bot.cmd.Process.Signal(syscall.SIGINT))
	bot.waitLine(ctx, t, "msg=room-left", "room="+room)
	if err := bot.wait(); err != nil {
		t.Fatalf("mucbot exited with %v", err)
	}
}

// mucAnnounced waits until srv's MUC service logged, after mark, that it
// queued announcements (what), and then that it sent them all.
func mucAnnounced(ctx context.Context, t *testing.T, srv *prosodytest.Server, mark int, what string) {
	t.Helper()
	_, next, err := srv.WaitLog(ctx, mark, what)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.WaitLog(ctx, next, "Occupant announcements done"); err != nil {
		t.Fatal(err)
	}
}
