// Command psawatch connects to an XMPP server and shows the live roster with
// the staleness of every presence: which is fresh, which is stale, why, since
// when, and by whose word (XEP-0310 Presence State Annotations). With -room
// it also joins rooms and shows their occupants.
//
// Usage:
//
//	PSAKIT_PASSWORD=secret psawatch -jid romeo@montague.lit [-addr host:port] [-tls starttls|direct|none] [-insecure] [-keepalive 30s] [-remote-check 5m] [-sm=false] [-json] [-room room@service/nick ...]
//
// -keepalive sets how long the connection may stay silent before psawatch
// pings its server (and how long it then waits for the answer, at most
// 15 s): a server that does not answer is taken for dead, every entry is
// marked local-disconnected and psawatch reconnects. 0 turns it off.
//
// -remote-check sets how often psawatch pings each remote domain that has
// available contacts or rooms, to find the server-to-server outages that a
// server without XEP-0310 support never reports: while a domain is out of
// reach its entries are stale, by psakit's own word (annotator
// DOMAIN/psakit-inferred). 0 turns it off.
//
// -sm=false turns off stream management (XEP-0198), which psawatch uses
// when the server offers it: after a short drop it resumes its session, the
// server replays what it missed, and every entry is fresh again without a
// roster fetch or a rejoin ("resumed" instead of "connected").
//
// The password comes from the environment variable PSAKIT_PASSWORD, or is
// asked for on the terminal. Ctrl-C leaves the rooms, sends unavailable
// presence and exits.
//
// # The table
//
// Without -json psawatch draws a table of the roster and of the rooms. On a
// terminal it redraws it in place as presence changes, and every second
// while something is stale so that "STALE ... for 1m30s" counts up. Written
// to a file or a pipe, it prints a new table after each change, without
// terminal control codes.
//
// # JSON lines
//
// With -json psawatch prints one JSON object per event, one per line. Every
// object has "time", when psawatch saw the event (RFC 3339 with fractional
// seconds, e.g. 2026-12-01T21:00:00.123456789Z), and "event", its kind. The
// other fields depend on the kind, and are left out when empty.
//
// Where a kind has "fresh", "condition", "by" and "description", they say
// what the presence is after the event: "fresh" is true or false; when it
// is false, "condition" (a XEP-0310 condition such as server-unavailable,
// or local-disconnected while our own stream is down), "by" (the annotator:
// a server, a MUC service, or our own bare JID for local-disconnected) and
// "description" (the annotator's text, if any) describe the mark that makes
// it stale. "cleared" is an object with "condition", "by" and "description"
// of the mark a restored event removed.
//
// A mark psakit set by itself, because a remote check found the contact's
// domain or the room's service out of reach (-remote-check), has
// "inferred": true, condition server-unavailable and "by" DOMAIN/psakit-
// inferred; a server's or a room's word has no "inferred". "cleared" has
// "inferred": true when the restore took psakit's own mark away. The table
// shows such a mark as "STALE server-unavailable inferred (DOMAIN out of
// reach)". Both kinds can be on one entry at once: a server running mod_psa
// and psakit's checks each keep their own mark.
//
// Contacts (roster events):
//
//	event          fields
//	available      jid (full JID), fresh, condition, by, description, show, status
//	updated        jid, fresh, condition, by, description, show, status
//	stale          jid, fresh (false), condition, by, description, inferred: the mark set
//	restored       jid, fresh, condition, by, description, inferred, cleared, show, status
//	unavailable    jid, status (also for a resource removed after a reconnect)
//	item-added     jid (bare JID), subscription (none, to, from, both), name
//	item-updated   jid, subscription, name
//	item-removed   jid, subscription (remove), name
//	rejected       jid (the sender), error: an annotation or presence not applied
//
// Rooms (joined with -room; jid is an occupant JID, room@service/nick):
//
//	event                  fields
//	occupant-available     room, jid, fresh, condition, by, description, show, status
//	occupant-updated       room, jid, fresh, condition, by, description, show, status
//	occupant-stale         room, jid, fresh (false), condition, by, description, inferred
//	occupant-restored      room, jid, fresh, condition, by, description, inferred, cleared, show, status
//	occupant-unavailable   room, jid, status, codes (MUC status codes), actor, reason
//	nick-changed           room, jid (the new one), old_nick
//	joining, rejoining     room
//	leaving                room
//	room-joined            room, jid (ours)
//	rejoined               room, jid: room-joined after a rejoin
//	room-created           room, jid
//	room-stale             room, fresh (false), condition, by, description,
//	                       inferred; no condition when a self-ping found us
//	                       out of the room
//	room-restored          room, fresh (true), cleared (when a mark was removed)
//	room-left              room, jid, codes, actor, reason
//	room-kicked            room, jid, codes, actor, reason
//	room-dropped           room, jid, codes, actor, reason
//	room-destroyed         room, jid, reason, venue (the alternate room)
//	room-join-failed       room, jid (the one asked for), error
//	room-error             room, jid, error
//	rejected               room, jid, error
//	self-ping              room, reason (why it was sent), verdict, error
//	rejoin                 room, reason, attempt
//	gave-up                room, reason, attempt, error
//	configured             room, error
//
// The connection:
//
//	event          fields
//	connected      jid (the bound full JID)
//	resumed        jid: the session that dropped was resumed (stream management), nothing lost
//	disconnected   error
//	reconnecting   attempt, delay (e.g. "1.5s"), error (why the previous attempt ended)
//	resynced       swept: resources removed because the server did not send them again (0 after resumed)
//	closed         error, if psawatch stopped for one
//	verify-alive, verify-gone, verify-unknown, verify-probed
//	               jid, error: a restored resource checked with a ping or probe
//	overflow       dropped: events lost because psawatch fell behind
//
// # Hostile strings
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

	"golang.org/x/term"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/client/clientflag"
)

// joinTimeout bounds the wait for a room's answer to our join.
const joinTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	code := clientflag.ExitCode(err)
	if code == 1 {
		// The error may carry a server's text.
		fmt.Fprintln(os.Stderr, "psawatch:", clean(err.Error()))
	}
	os.Exit(code)
}

// about is what -h says before the flags.
const about = `psawatch shows the live roster of an XMPP account with the staleness of
every presence (XEP-0310 Presence State Annotations): which is fresh, which
is stale, why, since when, and by whose word. With -room it also joins rooms
and shows their occupants. It draws a table, or with -json prints one JSON
object per event. Ctrl-C leaves the rooms and exits.

Usage:

  PSAKIT_PASSWORD=secret psawatch -jid romeo@montague.lit [flags]

The password comes from the environment variable PSAKIT_PASSWORD, or is
asked for on the terminal.
`

// isTerminal reports whether w is a terminal, which gets a table redrawn in
// place; anything else gets one table after another.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// run is psawatch until ctx ends (Ctrl-C) or the client stops for good.
func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("psawatch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := clientflag.Register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per event instead of a table")
	rooms := clientflag.RegisterRooms(fs)
	if err := clientflag.Parse(fs, about, args); err != nil {
		return err
	}
	account, opts, password, err := conn.Connection(stdin, stderr)
	if errors.Is(err, clientflag.ErrUsage) {
		return clientflag.Usage(fs, err)
	}
	if err != nil {
		return err
	}

	var out output
	if *asJSON {
		out = newJSONOutput(stdout)
	} else {
		out = newTableOutput(stdout, isTerminal(stdout))
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
