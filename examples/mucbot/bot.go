package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
)

const (
	// replyTimeout bounds sending one answer.
	replyTimeout = 10 * time.Second
	// maxListed is how many stale occupants a room's status lists: the
	// answer to one command stays a message, not a flood.
	maxListed = 20
	// answerBurst answers a conversation (a room, a sender) gets at once,
	// and answerEvery how often it gets one more: someone repeating a
	// command in a room must not make the bot flood it, and someone who
	// asks !help then !status gets both.
	answerBurst = 3
	answerEvery = 2 * time.Second
	// maxConversations bounds the memory of the answers given.
	maxConversations = 1024
)

const helpText = `commands:
!status  in a room: that room, fresh or stale and why, and its stale occupants;
         in direct chat, for the bot's admins: every room
!help    this text`

// refusal answers !status in direct chat from someone who is no admin.
const refusal = "!status in direct chat is for the bot's admins; in a room we share, !status tells about that room"

// bot answers the commands sent to mucbot.
//
// What it tells whom: a room's occupants see the room's occupants and,
// when the service annotates them, their staleness, so !status in a room
// (groupchat, or a private message through it) answers with that room
// alone, naming occupants by nick as the room shows them. Every room, and
// why joins failed, goes in direct chat to the bot's own account and to
// -admin only: which rooms a bot sits in is not for whoever can message it.
type bot struct {
	log    *slog.Logger
	self   jid.JID   // the bot's account
	admins admins    // who else gets every room
	rooms  []jid.JID // the rooms of -room, bare
	c      atomic.Pointer[client.Client]

	mu       sync.Mutex
	failures map[string]string // room -> why its join failed
	answered map[string]*bucket
}

// bucket is a conversation's answers left, as of last.
type bucket struct {
	left float64
	last time.Time
}

func newBot(log *slog.Logger, self jid.JID, occupants []jid.JID, admins admins) *bot {
	b := &bot{log: log, self: self, admins: admins, failures: make(map[string]string), answered: make(map[string]*bucket)}
	for _, o := range occupants {
		b.rooms = append(b.rooms, o.Bare())
	}
	return b
}

// setClient gives the bot its client once Dial returned: until then it
// sits in no room, and answers direct chat without the rooms.
func (b *bot) setClient(c *client.Client) { b.c.Store(c) }

func (b *bot) joinFailed(room jid.JID, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures[room.String()] = err.Error()
}

// reportedByEvent reports whether a Join error was already logged by the
// room event that carried it (room-join-failed, rejected).
func reportedByEvent(err error) bool {
	var je *mucwatch.JoinError
	return errors.As(err, &je) || errors.Is(err, mucwatch.ErrLimit) ||
		errors.Is(err, mucwatch.ErrNotOccupantJID) || errors.Is(err, mucwatch.ErrAlreadyJoined)
}

// handle runs on the client's callback goroutine: it may block while it
// answers, the stream keeps being read.
func (b *bot) handle(ctx context.Context, m client.Message) {
	// History from before we joined, bounces, and what is no command are
	// not answered, nor what has no sender to answer.
	if !m.Delay.IsZero() || m.Type == stanza.ErrorMessage || m.Type == stanza.HeadlineMessage || m.From.Equal(jid.JID{}) {
		return
	}
	cmd := strings.TrimSpace(m.Body)
	if cmd != "!status" && cmd != "!help" {
		return
	}
	c := b.c.Load()
	// room is the room the message came through, if any: then the answer
	// tells about it alone.
	var room *mucwatch.Room
	if c != nil {
		if r, ok := c.Rooms().Room(m.From.Bare()); ok {
			room = &r
		}
	}
	conversation := m.From.String()
	switch {
	case m.Type == stanza.GroupChatMessage:
		// Groupchat comes from an occupant of a room we are in, never from
		// the room itself or from us (the room reflects our answers).
		if room == nil || m.From.Resourcepart() == "" || room.Nick == m.From.Resourcepart() {
			return
		}
		conversation = room.JID.String()
	case room != nil:
		// A private message through the room: from one of its occupants.
		if _, ok := c.Rooms().Occupant(m.From); !ok || room.Nick == m.From.Resourcepart() {
			return
		}
	}
	if !b.allow(conversation) {
		return
	}
	var answer string
	switch {
	case cmd == "!help":
		answer = helpText
	case room != nil:
		var sb strings.Builder
		describeRoom(&sb, c.Rooms(), *room)
		answer = strings.TrimSuffix(sb.String(), "\n")
	case !b.admins.admits(b.self, m.From):
		answer = refusal
	case c == nil:
		answer = "starting up, ask again in a moment"
	default:
		answer = b.status(c.Rooms())
	}
	rctx, cancel := context.WithTimeout(ctx, replyTimeout)
	defer cancel()
	if err := m.Reply(rctx, answer); err != nil {
		b.log.Warn("answer failed", "command", cmd, "to", m.From, "err", err)
		return
	}
	b.log.Info("answered", "command", cmd, "to", m.From, "type", m.Type)
}

// allow reports whether the conversation may get an answer now, and takes
// it from its bucket.
func (b *bot) allow(conversation string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	k, ok := b.answered[conversation]
	if !ok {
		if len(b.answered) >= maxConversations {
			clear(b.answered)
		}
		k = &bucket{left: answerBurst, last: now}
		b.answered[conversation] = k
	}
	k.left = min(answerBurst, k.left+float64(now.Sub(k.last))/float64(answerEvery))
	k.last = now
	if k.left < 1 {
		return false
	}
	k.left--
	return true
}

// status describes every room of -room and every room the model tracks.
func (b *bot) status(model mucwatch.View) string {
	var sb strings.Builder
	seen := make(map[string]bool)
	for _, room := range b.rooms {
		seen[room.String()] = true
		r, ok := model.Room(room)
		if !ok {
			b.mu.Lock()
			why := b.failures[room.String()]
			b.mu.Unlock()
			if why == "" {
				why = "not joined"
			} else {
				why = "not joined: " + why
			}
			fmt.Fprintf(&sb, "%s: %s\n", room, why)
			continue
		}
		describeRoom(&sb, model, r)
	}
	for r := range model.Rooms() {
		if !seen[r.JID.String()] {
			describeRoom(&sb, model, r)
		}
	}
	if sb.Len() == 0 {
		return "no rooms"
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

func describeRoom(sb *strings.Builder, model mucwatch.View, r mucwatch.Room) {
	fmt.Fprintf(sb, "%s: ", r.JID)
	if r.Stale {
		sb.WriteString("stale")
	} else {
		sb.WriteString("fresh")
	}
	fmt.Fprintf(sb, ", %s as %s, %d occupants, %d stale", r.State, r.Nick, r.Occupants, r.StaleOccupants)
	var why []string
	for _, m := range r.Marks {
		why = append(why, markText(m))
	}
	if self, ok := model.Self(r.JID); ok {
		for _, m := range self.Marks {
			why = append(why, "our occupant: "+markText(m))
		}
	}
	if len(why) > 0 {
		fmt.Fprintf(sb, " (%s)", strings.Join(why, "; "))
	}
	if len(r.Removal.Codes) > 0 || r.Removal.Reason != "" {
		fmt.Fprintf(sb, ", removed: codes %v %s", r.Removal.Codes, r.Removal.Reason)
	}
	sb.WriteByte('\n')
	listed, more := 0, 0
	for o := range model.Occupants(r.JID) {
		if o.Fresh() || o.Self {
			continue
		}
		if listed == maxListed {
			more++
			continue
		}
		listed++
		var marks []string
		for _, m := range o.Marks {
			marks = append(marks, markText(m))
		}
		fmt.Fprintf(sb, "  %s: %s\n", o.Nick, strings.Join(marks, "; "))
	}
	if more > 0 {
		fmt.Fprintf(sb, "  and %d more\n", more)
	}
}

// markText says why an entry is stale and who says so: an annotator, or
// psakit's own remote checks ("inferred").
func markText(m psa.Mark) string {
	if d, ok := m.InferredDomain(); ok {
		return fmt.Sprintf("%s inferred (%s out of reach)", m.Condition, d)
	}
	return fmt.Sprintf("%s by %s", m.Condition, m.By)
}
