// Command memharness measures the peak memory of a psawatch process under
// hostile peers: it starts a psatest server on loopback, runs a psawatch
// binary against it, floods it with one of the cases below, and reads the
// process's peak resident set (VmHWM in /proc/PID/status, Linux only).
//
//	go build -o /tmp/psawatch ./examples/psawatch
//	go run ./internal/memharness -bin /tmp/psawatch -case strangers
//
// The cases:
//
//	strangers: 1024 strangers × 32 resources, each presence with 60 KiB
//	           of status text (eight texts of 7.5 KiB, which the decoder
//	           cuts to 2 KiB each), then a stream error that makes psawatch
//	           disconnect (every resource marked stale) and reconnect.
//	room:      a room of 20,000 occupants with 30 KiB of status text each.
//	queue:     100,000 presence updates from a roster contact, each with
//	           16 KiB of status text, while psawatch's stdout is never read:
//	           the events queue behind its blocked callback.
//	stanza:    one message with a 64 MiB body.
//	nesting:   one message with 5,000,000 nested elements.
//
// It prints one line of a Markdown table. It is a measurement, not a test:
// it asserts nothing and is never run by go test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"

	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

const (
	password = "wherefore"
	mucHost  = "muc.montague.lit"
)

var (
	romeo   = jid.MustParse("romeo@montague.lit")
	watcher = jid.MustParse("romeo@montague.lit/watch")
	juliet  = jid.MustParse("juliet@capulet.lit")
)

func main() {
	bin := flag.String("bin", "", "the psawatch `binary` to measure (required)")
	kind := flag.String("case", "strangers", "the `case`: strangers, room or queue")
	scale := flag.Float64("scale", 1, "multiply the counts of the case by `f`, for a quick run")
	flag.Parse()
	if *bin == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := run(ctx, *bin, *kind, *scale); err != nil {
		fmt.Fprintln(os.Stderr, "memharness:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, kind string, scale float64) error {
	srv := psatest.NewServer(psatest.WithUser("romeo", password), psatest.WithMUC(mucHost))
	defer srv.Close()
	srv.SetRoster(romeo, "", roster.Item{JID: juliet, Subscription: roster.SubscriptionBoth})

	args := []string{"-jid", watcher.String(), "-addr", srv.Addr(), "-tls", "none", "-json"}
	room := "hostile@" + mucHost
	if kind == "room" {
		args = append(args, "-room", room+"/romeo")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "PSAKIT_PASSWORD="+password)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	if kind != "queue" {
		// Keep up with the output; in the queue case nobody reads it.
		go io.Copy(io.Discard, stdout)
	}
	first, err := srv.WaitAvailable(ctx, watcher)
	if err != nil {
		return err
	}
	start := time.Now()
	var sent, wire int
	var note string
	send := func(batch []string) error {
		raw := strings.Join(batch, "")
		sent += len(batch)
		wire += len(raw)
		return srv.SendRaw(ctx, watcher, raw)
	}
	n := func(base int) int { return max(int(float64(base)*scale), 1) }
	switch kind {
	case "strangers":
		status := statuses(8, 7680, "")
		var batch []string
		for s := range n(1024) {
			batch = batch[:0]
			for r := range 32 {
				batch = append(batch, fmt.Sprintf(`<presence from="s%d@evil.example/r%d">%s</presence>`, s, r, status))
			}
			if err := send(batch); err != nil {
				return err
			}
		}
		if err := srv.Ping(ctx, watcher); err != nil {
			return err
		}
		// The stream drops: every resource is marked stale at once.
		if err := srv.CloseStream(ctx, watcher, stream.SystemShutdown); err != nil {
			return err
		}
		if err := waitReconnect(ctx, srv, first); err != nil {
			return err
		}
	case "room":
		if err := waitJoined(ctx, srv, room); err != nil {
			return err
		}
		status := statuses(8, 3840, "")
		var batch []string
		for i := range n(20000) {
			batch = append(batch, fmt.Sprintf(`<presence from="%s/n%d">%s<x xmlns="http://jabber.org/protocol/muc#user"><item affiliation="none" role="participant"/></x></presence>`, room, i, status))
			if len(batch) == 32 {
				if err := send(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			if err := send(batch); err != nil {
				return err
			}
		}
	case "queue":
		var batch []string
		for i := range n(100000) {
			batch = append(batch, fmt.Sprintf(`<presence from="%s/r%d">%s</presence>`, juliet, i%32, statuses(8, 2048, strconv.Itoa(i))))
			if len(batch) == 32 {
				if err := send(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			if err := send(batch); err != nil {
				return err
			}
		}
	case "stanza", "nesting":
		raw := `<message from="juliet@capulet.lit/balcony"><body>` + strings.Repeat("x", n(64<<20)) + `</body></message>`
		if kind == "nesting" {
			raw = `<message from="juliet@capulet.lit/balcony">` + strings.Repeat("<a>", n(5_000_000)) + strings.Repeat("</a>", n(5_000_000)) + `</message>`
		}
		// The server may find the session closed before it has written it all.
		err := send([]string{raw})
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			err = srv.Ping(pctx, watcher)
			cancel()
		}
		if err != nil {
			// The limit ended the session: wait for the reconnect.
			note = "session ended, reconnected; "
			if err := waitReconnect(ctx, srv, first); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown case %q", kind)
	}
	// A ping answered: psawatch has read and applied everything before it.
	if err := srv.Ping(ctx, watcher); err != nil {
		return err
	}
	elapsed := time.Since(start)
	hwm, rss, err := memory(cmd.Process.Pid)
	if err != nil {
		return err
	}
	// Ctrl-C: does psawatch end, with its callback blocked or not?
	cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan error, 1)
	go func() {
		// Not cmd.Wait, which waits for the output to be read: in the queue
		// case nobody reads it.
		_, err := cmd.Process.Wait()
		exited <- err
	}()
	exit := note + "exited on SIGINT"
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		exit = note + "still running 10 s after SIGINT"
		cmd.Process.Kill()
	}
	fmt.Printf("| %s | %d stanzas, %d MiB on the wire | %d MiB | %d MiB | %.1f s | %s |\n",
		kind, sent, wire>>20, hwm>>10, rss>>10, elapsed.Seconds(), exit)
	return nil
}

// statuses returns n status elements of size bytes each, tagged.
func statuses(n, size int, tag string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `<status xml:lang="l%d">%s%s</status>`, i, tag, strings.Repeat("x", size-len(tag)))
	}
	return b.String()
}

// waitReconnect waits for a session of psawatch other than old.
func waitReconnect(ctx context.Context, srv *psatest.Server, old *psatest.Session) error {
	for {
		s, err := srv.WaitAvailable(ctx, watcher)
		if err != nil {
			return err
		}
		if s != old {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitJoined waits until psawatch is an occupant of room.
func waitJoined(ctx context.Context, srv *psatest.Server, room string) error {
	r := srv.Room(strings.TrimSuffix(room, "@"+mucHost))
	for {
		for _, o := range r.Occupants() {
			if o.JID.Equal(watcher) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("psawatch did not join the room")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// memory returns VmHWM and VmRSS of process pid, in KiB.
func memory(pid int) (hwm, rss int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmHWM:":
			hwm, _ = strconv.Atoi(f[1])
		case "VmRSS:":
			rss, _ = strconv.Atoi(f[1])
		}
	}
	return hwm, rss, nil
}
