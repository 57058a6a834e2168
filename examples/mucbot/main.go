// Command mucbot joins the multi-user chat rooms it is given and stays in
// them through outages: when its own connection drops it reconnects and
// rejoins; when a server says (with XEP-0310 annotations) that the room or
// the bot's own occupant may be stale, it checks with a XEP-0410 self-ping
// once the link is back, and rejoins if the room dropped it. It logs every
// state change and every action.
//
// Usage:
//
//	PSAKIT_PASSWORD=secret mucbot -jid bot@montague.lit -room orchard@conference.montague.lit/bot [-room ...] [-admin romeo@montague.lit,...] [-addr host:port] [-tls starttls|direct|none] [-insecure] [-keepalive 30s] [-remote-check 5m] [-sm=false] [-silence 15m] [-rejoin-delay 30s]
//
// It answers !help, and !status: in a room (or in a private message through
// it) with that room alone, fresh or stale and why, and its stale occupants
// by nick, with condition and annotator, which the room's occupants see
// anyway; in direct chat with every room, and why joins failed, but only to
// the bot's own account and to the accounts of -admin (a bare JID admits
// each of its resources). Others get a refusal: which rooms a bot sits in
// is not for whoever can send it a message.
//
// -keepalive sets how long the connection may stay silent before mucbot
// pings its server (and how long it then waits for the answer, at most
// 15 s): a server that does not answer is taken for dead and mucbot
// reconnects and rejoins. 0 turns it off.
//
// -remote-check sets how often mucbot pings the MUC service of each room it
// sits in: while a service is out of reach (our own server bounces the
// ping, or nobody answers within 30 s) its rooms are stale, and when it
// answers again mucbot self-pings them. 0 turns it off.
//
// -sm=false turns off stream management (XEP-0198), which mucbot uses when
// the server offers it: after a short drop it resumes its session and stays
// in its rooms without rejoining them.
//
// Ctrl-C leaves the rooms and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/client/clientflag"
	"github.com/psakit/psakit/mucwatch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stderr)
	stop()
	code := clientflag.ExitCode(err)
	if code == 1 {
		fmt.Fprintln(os.Stderr, "mucbot:", err)
	}
	os.Exit(code)
}

// about is what -h says before the flags.
const about = `mucbot joins the multi-user chat rooms it is given and stays in them through
outages: it reconnects and rejoins when its connection drops, and when a
server says (XEP-0310) that a room may be stale it checks with a XEP-0410
self-ping and rejoins if the room dropped it. It logs every state change
and every action. It answers !status (its view of the rooms: fresh or
stale and why, and the stale occupants) and !help, in its rooms and in
direct chat. Ctrl-C leaves the rooms and exits; it exits with status 1 when
every join failed.

Who learns what: !status in a room (or in a private message through it)
answers with that room alone, what its occupants see anyway. In direct
chat it tells about every room, and only to the bot's own account and to
the accounts of -admin (none by default): the rooms a bot sits in and who
in them is unreachable are not for whoever can send it a message.

Usage:

  PSAKIT_PASSWORD=secret mucbot -jid bot@montague.lit -room orchard@conference.montague.lit/bot [-room ...] [flags]

The password comes from the environment variable PSAKIT_PASSWORD, or is
asked for on the terminal.
`

const joinTimeout = 30 * time.Second

// run is mucbot until ctx ends (Ctrl-C) or the client stops for good.
func run(ctx context.Context, args []string, stdin *os.File, stderr io.Writer) error {
	fs := flag.NewFlagSet("mucbot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conn := clientflag.Register(fs)
	rooms := clientflag.RegisterRooms(fs)
	silence := fs.Duration("silence", client.DefaultSilence, "self-ping a room after this long without traffic from it")
	rejoinDelay := fs.Duration("rejoin-delay", client.DefaultRejoinDelay, "wait this long before rejoining a room that removed us for technical reasons")
	var admin admins
	fs.Var(&admin, "admin", "`JID,...` that get !status about every room in direct chat, besides the bot's own account (repeatable)")
	if err := clientflag.Parse(fs, about, args); err != nil {
		return err
	}
	if len(*rooms) == 0 {
		return clientflag.Usage(fs, errors.New("give at least one -room room@service/nick"))
	}
	account, opts, password, err := conn.Connection(stdin, stderr)
	if errors.Is(err, clientflag.ErrUsage) {
		return clientflag.Usage(fs, err)
	}
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	policy := client.DefaultRoomPolicy()
	policy.Silence = *silence
	policy.RejoinDelay = *rejoinDelay
	opts = append(opts,
		client.WithLogger(log),
		client.WithRoomPolicy(policy),
		client.OnConnection(func(e client.ConnEvent) { logConn(log, e) }),
		client.OnRoomAction(func(a client.RoomAction) { logAction(log, a) }),
	)

	b := newBot(log, account, *rooms, admin)
	opts = append(opts,
		client.OnRoom(func(e mucwatch.Event) {
			if e.Kind == mucwatch.EventRoomJoinFailed {
				// Before the log line: who reads it and asks finds it.
				b.joinFailed(e.Room, e.Err)
			}
			logRoom(log, e)
		}),
		client.OnMessage(func(m client.Message) { b.handle(ctx, m) }),
	)

	c, err := client.Dial(ctx, account, password, opts...)
	if err != nil {
		return err
	}
	b.setClient(c)
	var failed []error
	for _, occupant := range *rooms {
		jctx, cancel := context.WithTimeout(ctx, joinTimeout)
		err := c.Join(jctx, occupant)
		cancel()
		if err != nil {
			b.joinFailed(occupant.Bare(), err)
			failed = append(failed, fmt.Errorf("%s: %w", occupant.Bare(), err))
			if !reportedByEvent(err) {
				log.Error("join failed", "room", occupant.Bare(), "err", err)
			}
		}
	}
	if len(failed) == len(*rooms) && ctx.Err() == nil {
		c.Close()
		return fmt.Errorf("every join failed: %w", errors.Join(failed...))
	}

	select {
	case <-ctx.Done():
		for _, occupant := range *rooms {
			lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := c.Leave(lctx, occupant.Bare(), "bye"); err != nil {
				log.Warn("leave", "room", occupant.Bare(), "err", err)
			}
			cancel()
		}
		return c.Close()
	case <-c.Done():
		return c.Err()
	}
}

// logConn logs what the client's own log (client.WithLogger) does not
// say: connections, disconnections and failed attempts are there already,
// with their errors, so the reconnecting line says only when.
func logConn(log *slog.Logger, e client.ConnEvent) {
	switch e.Kind {
	case client.ConnConnected, client.ConnResumed, client.ConnDisconnected:
	case client.ConnReconnecting:
		log.Info("reconnecting", "attempt", e.Attempt, "in", e.Delay.Round(time.Millisecond))
	case client.ConnResynced:
		log.Info("resynced", "swept", e.Swept)
	default:
		log.Info(e.Kind.String(), "err", e.Err)
	}
}

// logRoom logs what concerns the rooms themselves and our place in them;
// occupant comings and goings are left to debug level. Rejected
// annotations are in the client's own log, and rejoins in logAction's,
// with their reason and attempt.
func logRoom(log *slog.Logger, e mucwatch.Event) {
	attrs := []any{"room", e.Room}
	switch e.Kind {
	case mucwatch.EventRoomStale, mucwatch.EventRoomRestored:
		attrs = append(attrs, "fresh", e.Fresh(), "condition", e.Mark.Condition, "by", e.Mark.By)
	case mucwatch.EventRoomKicked, mucwatch.EventRoomDropped, mucwatch.EventRoomDestroyed:
		attrs = append(attrs, "codes", e.Removal.Codes, "reason", e.Removal.Reason)
		if e.Removal.Venue.String() != "" {
			attrs = append(attrs, "venue", e.Removal.Venue)
		}
	case mucwatch.EventRejected, mucwatch.EventRejoining:
		return
	case mucwatch.EventRoomJoinFailed, mucwatch.EventRoomError:
		attrs = append(attrs, "err", e.Err)
	case mucwatch.EventNickChanged:
		attrs = append(attrs, "from", e.OldNick, "to", e.JID.Resourcepart())
	case mucwatch.EventRoomJoined, mucwatch.EventRoomCreated, mucwatch.EventJoining,
		mucwatch.EventLeaving, mucwatch.EventRoomLeft:
	default:
		log.Debug(e.Kind.String(), "room", e.Room, "occupant", e.JID, "fresh", e.Fresh())
		return
	}
	log.Info(e.Kind.String(), attrs...)
}

func logAction(log *slog.Logger, a client.RoomAction) {
	attrs := []any{"room", a.Room, "reason", a.Reason}
	switch a.Kind {
	case client.ActionSelfPing:
		attrs = append(attrs, "verdict", a.Verdict)
	case client.ActionRejoin, client.ActionGaveUp:
		attrs = append(attrs, "attempt", a.Attempt)
	}
	if a.Err != nil {
		attrs = append(attrs, "err", a.Err)
	}
	log.Info(a.Kind.String(), attrs...)
}
