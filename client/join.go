package client

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/mucwatch"
)

// This file is joining and leaving a room: the join presence, Join and
// Leave, and the waiters that hand them the service's answer from the read
// goroutine. What keeps us in a room afterwards is the room policy
// (roomplan.go decides, rooms.go acts).

// joinPresence returns the presence that joins (or rejoins) occupant: our
// usual presence with caps, and the MUC payload.
func (t *Tracker) joinPresence(occupant jid.JID, p joinParams) xml.TokenReader {
	var x []xml.TokenReader
	x = append(x, xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Local: "history"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "maxstanzas"}, Value: strconv.Itoa(p.history)}},
	}))
	if p.password != "" {
		x = append(x, textElement("password", p.password))
	}
	return t.presenceReader(occupant, xmlstream.Wrap(xmlstream.MultiReader(x...),
		xml.StartElement{Name: xml.Name{Space: nsMUC, Local: "x"}}))
}

// Join joins a room: occupant is room@service/nick. It sends the join
// presence (with caps, the password if given, and no history unless asked)
// and waits until the service lets us in or refuses. A refusal is a
// *mucwatch.JoinError: errors.Is matches mucwatch.ErrNickInUse,
// ErrPasswordRequired, ErrMembersOnly, ErrBanned and the others. The
// service may give us another nick (the room's Nick says which).
//
// Once joined, the room policy keeps us in the room until Leave. If ctx ends
// before the answer (a JID that is no room does not answer), the room is
// forgotten and an error naming it and wrapping ctx's error returned.
func (t *Tracker) Join(ctx context.Context, occupant jid.JID, opts ...JoinOption) error {
	var p joinParams
	for _, o := range opts {
		o(&p)
	}
	s := t.session()
	if s == nil {
		return ErrNotConnected
	}
	room := occupant.Bare()
	evs := t.rooms.Joining(occupant)
	t.disp.pushRoom(evs)
	for _, e := range evs {
		if e.Kind == mucwatch.EventRejected {
			return e.Err
		}
	}
	w := t.waitRoom(room, mucwatch.EventRoomJoined)
	defer t.stopWaiting(room, w)
	t.policy.want(occupant, p)
	if err := sendCtx(ctx, s, t.joinPresence(occupant, p)); err != nil {
		t.policy.forget(room)
		t.disp.pushRoom(t.rooms.Forget(room))
		return err
	}
	select {
	case err := <-w.ch:
		if err != nil {
			t.policy.forget(room)
		}
		return err
	case <-ctx.Done():
		t.policy.forget(room)
		t.disp.pushRoom(t.rooms.Forget(room))
		return fmt.Errorf("client: joining %s: no answer (is it a room?): %w", room, ctx.Err())
	}
}

// Leave leaves a room with an optional status message, and waits for the
// service to confirm. The room policy stops at once. If ctx ends first the
// room is forgotten anyway and ctx's error returned.
func (t *Tracker) Leave(ctx context.Context, room jid.JID, status string) error {
	room = room.Bare()
	t.policy.forget(room)
	r, ok := t.rooms.Room(room)
	if !ok {
		return nil
	}
	w := t.waitRoom(room, mucwatch.EventRoomLeft)
	defer t.stopWaiting(room, w)
	evs := t.rooms.Leaving(room)
	t.disp.pushRoom(evs)
	for _, e := range evs {
		if e.Kind == mucwatch.EventRoomLeft {
			return nil // we were not in it any more
		}
	}
	s := t.session()
	if s == nil {
		t.disp.pushRoom(t.rooms.Forget(room))
		return nil
	}
	occupant, err := room.WithResource(r.Nick)
	if err != nil {
		return err
	}
	var body xml.TokenReader
	if status != "" {
		body = textElement("status", status)
	}
	if err := sendCtx(ctx, s, stanza.Presence{To: occupant, Type: stanza.UnavailablePresence}.Wrap(body)); err != nil {
		t.disp.pushRoom(t.rooms.Forget(room))
		return err
	}
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		t.disp.pushRoom(t.rooms.Forget(room))
		return ctx.Err()
	}
}

// roomWaiter is someone waiting for a room event of one kind.
type roomWaiter struct {
	room string
	kind mucwatch.EventKind
	ch   chan error // buffered: one result
}

func (t *Tracker) waitRoom(room jid.JID, kind mucwatch.EventKind) *roomWaiter {
	w := &roomWaiter{room: room.String(), kind: kind, ch: make(chan error, 1)}
	t.mu.Lock()
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()
	return w
}

func (t *Tracker) stopWaiting(room jid.JID, w *roomWaiter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, x := range t.waiters {
		if x == w {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			return
		}
	}
}

// wake answers the waiters an event concerns: a join is answered by
// EventRoomJoined, or by EventRoomJoinFailed with its error; a leave by
// EventRoomLeft.
func (t *Tracker) wake(e *mucwatch.Event) {
	var kind mucwatch.EventKind
	var err error
	switch e.Kind {
	case mucwatch.EventRoomJoined, mucwatch.EventRoomLeft:
		kind = e.Kind
	case mucwatch.EventRoomJoinFailed:
		kind, err = mucwatch.EventRoomJoined, e.Err
	default:
		return
	}
	room := e.Room.String()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.waiters {
		if w.room == room && w.kind == kind {
			select {
			case w.ch <- err:
			default:
			}
		}
	}
}
