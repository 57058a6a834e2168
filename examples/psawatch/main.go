// Command psawatch connects to an XMPP server and shows the live roster with
// the staleness of every presence: which is fresh, which is stale, why, since
// when, and by whose word (XEP-0310 Presence State Annotations).
//
// Usage:
//
//	PSAKIT_PASSWORD=secret psawatch -jid romeo@montague.lit [-addr host:port] [-tls starttls|direct|none] [-insecure] [-json] [-room room@service/nick ...]
//
// Without -json it draws a table that refreshes as presence changes. With
// -json it prints one JSON object per event, one per line, with the fields
// time, event, jid, condition, by, fresh, description, show and status, and
// room for the events of the rooms joined with -room (occupant-available,
// occupant-unavailable, occupant-stale, occupant-restored, room-joined,
// room-stale, room-restored, self-ping, rejoined, room-left, and the others
// of package mucwatch), whose jid is the occupant JID. Ctrl-C leaves the
// rooms, sends unavailable presence and exits.
//
// Everything shown comes from the network, and anyone who can send us
// presence chooses its status text. The table replaces control characters,
// line separators and bidi controls in every string with U+FFFD, so that no
// peer can draw a row or move the cursor; the JSON lines keep the strings
// exact and escape those characters (\uXXXX).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/cliconn"
)

// joinTimeout bounds the wait for a room's answer to our join.
const joinTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// The error may carry a server's text.
		fmt.Fprintln(os.Stderr, "psawatch:", clean(err.Error()))
		os.Exit(1)
	}
}

// run is psawatch until ctx ends (Ctrl-C) or the client stops for good.
func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("psawatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := cliconn.Register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per event instead of a table")
	rooms := cliconn.RegisterRooms(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	account, opts, password, err := conn.Connection(stdin, stderr)
	if err != nil {
		return err
	}

	var out output
	if *asJSON {
		out = newJSONOutput(stdout)
	} else {
		out = newTableOutput(stdout)
	}
	defer out.close()
	opts = append(opts, out.options()...)

	c, err := client.Dial(ctx, account, password, opts...)
	if err != nil {
		return err
	}
	out.attach(c)
	for _, occupant := range *rooms {
		// A refusal is shown as a room-join-failed event; go on with the others.
		jctx, cancel := context.WithTimeout(ctx, joinTimeout)
		if err := c.Join(jctx, occupant); err != nil {
			fmt.Fprintf(stderr, "psawatch: joining %s: %s\n", occupant, clean(err.Error()))
		}
		cancel()
	}
	select {
	case <-ctx.Done():
		// Ctrl-C: Close sends unavailable presence and closes the stream.
		return c.Close()
	case <-c.Done():
		return c.Err()
	}
}
