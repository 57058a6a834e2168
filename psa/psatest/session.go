package psatest

import (
	"context"
	"encoding/xml"
	"io"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
)

// A Session is one client's bound stream on the server. It records every
// top-level element the client sends, and lets the test drop the connection.
type Session struct {
	srv        *Server
	jid        jid.JID
	c          *conn
	seq        uint64
	out        io.Writer // the client connection, TLS included
	wake       chan struct{}
	quit       chan struct{} // closed when the read loop has ended
	writerDone chan struct{}

	// Guarded by srv.mu.
	ended     bool // no longer bound: dropped, closed or replaced
	finished  bool // the read loop ended: nothing more will be recorded
	available bool // sent initial presence and no unavailable since
	outClosed bool // nothing more may be written
	queue     []*outItem
	stanzas   []Stanza
	taken     []bool
	last      *Stanza                // last broadcast presence (no to)
	delivered map[string][]xml.Token // sender -> last available presence delivered, without annotations
	pending   map[string]chan Stanza // id of a server request -> its reply
	sm        *smSession             // stream management; nil until <enable/>
	losing    bool                   // LoseInput: what the client sends is thrown away
}

// JID returns the session's full JID.
func (sess *Session) JID() jid.JID { return sess.jid }

// Available reports whether the client has sent its initial available
// presence, and no unavailable presence since.
func (sess *Session) Available() bool {
	sess.srv.mu.Lock()
	defer sess.srv.mu.Unlock()
	return sess.available
}

// Done returns a channel that is closed once the session's connection is
// closed and the server has finished with it.
// A resumed session (WithStreamManagement) has a new connection: call Done
// again after a resumption.
func (sess *Session) Done() <-chan struct{} {
	sess.srv.mu.Lock()
	defer sess.srv.mu.Unlock()
	return sess.c.done
}

// Next waits for the first element the client sent on this session that
// match accepts (nil accepts any) and that no earlier call to Next returned,
// and returns it. Elements that do not match stay available to later calls,
// so a test may wait for stanzas in an order other than the one they were
// sent in. match runs in the caller's goroutine, without locks held.
//
// It returns ErrSessionClosed when the connection has ended and no recorded
// element matches, and ctx.Err() when ctx ends first.
func (sess *Session) Next(ctx context.Context, match func(Stanza) bool) (Stanza, error) {
	s := sess.srv
	checked := 0 // the first stanzas are known not to match, or taken
	for {
		s.mu.Lock()
		candidates := sess.stanzas[checked:]
		finished, ch := sess.finished, s.changed
		s.mu.Unlock()
		for i, st := range candidates {
			if match != nil && !match(st) {
				continue
			}
			s.mu.Lock()
			taken := sess.taken[checked+i]
			sess.taken[checked+i] = true
			s.mu.Unlock()
			if !taken {
				return st, nil
			}
		}
		checked += len(candidates)
		if finished {
			return Stanza{}, ErrSessionClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Stanza{}, ctx.Err()
		}
	}
}

// Stanzas returns every element the client has sent on this session so far,
// in order, whether or not Next returned it.
func (sess *Session) Stanzas() []Stanza {
	sess.srv.mu.Lock()
	defer sess.srv.mu.Unlock()
	return append([]Stanza(nil), sess.stanzas...)
}

// LastPresence returns the last presence the client broadcast (sent without
// a to attribute), if any.
func (sess *Session) LastPresence() (Stanza, bool) {
	sess.srv.mu.Lock()
	defer sess.srv.mu.Unlock()
	if sess.last == nil {
		return Stanza{}, false
	}
	return *sess.last, true
}

// Caps returns the entity capabilities (XEP-0115 <c/>) of the client's last
// broadcast presence; ok is false when it had none. Check them with
// Server.DiscoInfo and caps.Verify.
func (sess *Session) Caps() (c presence.Caps, ok bool) {
	st, ok := sess.LastPresence()
	if !ok || st.Presence == nil || st.Presence.Caps.Ver == "" {
		return presence.Caps{}, false
	}
	return st.Presence.Caps, true
}

// Drop closes the session's TCP connection at once, with no stream error
// and no end of stream, the way a network failure looks to the client, and
// waits until the server has cleaned up after it (unavailable presence to
// the user's other resources and to the rooms the client had joined).
//
// With WithStreamManagement, a session whose client enabled resumption
// hibernates instead, once Drop returns.
func (sess *Session) Drop() {
	s := sess.srv
	s.mu.Lock()
	if sess.sm == nil || !sess.sm.resumable {
		s.endLocked(sess, nil)
	}
	c := sess.c
	s.mu.Unlock()
	c.raw.Close()
	<-c.done
}
