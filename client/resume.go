package client

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"

	"github.com/psakit/psakit/internal/sm"
)

// Stream management (XEP-0198): the client enables it, with resumption,
// whenever the server offers it, and after a drop resumes the session
// instead of binding a new one. A resumed session lost nothing: the server
// re-sends what it sent while the connection was down and the client
// re-sends what the server did not acknowledge, before anything new.

// UnackedStanza is a stanza the client sent that the server never
// acknowledged (XEP-0198): it may or may not have been delivered.
type UnackedStanza struct {
	// Raw is the stanza as it was written, or nil when it was larger than
	// what the client keeps for re-sending (WithUnackedBytes), or when the
	// OnUnacked callback fell so far behind that the batches waiting for it
	// reached the event queue's byte budget (WithQueueBytes): the stanza
	// is still counted, only its bytes are gone.
	Raw []byte
}

// The reasons OnUnacked gives.
var (
	// ErrResumeFailed: the server could not resume the session (its
	// hibernation time was over, or it restarted), answered the request
	// wrongly or three times not at all, or no longer offered stream
	// management; the client started a new session. The stanzas were not
	// re-sent: the server may have delivered them before the connection
	// dropped.
	ErrResumeFailed = errors.New("client: stream resumption failed")
	// ErrUnackedOverflow: more stanzas waited for the server's
	// acknowledgement than WithUnackedBytes allows, and the oldest can no
	// longer be re-sent after a drop; or a stanza larger than that, kept
	// without its bytes, had not reached the server when a resumption
	// found it missing (it is not re-sent).
	ErrUnackedOverflow = errors.New("client: too many unacknowledged stanzas to keep")
)

// unackedBatch is one call of the OnUnacked callback, queued.
type unackedBatch struct {
	stanzas []UnackedStanza
	reason  error
}

// dropRaw lets the stanzas' bytes go, keeping their number.
func (b *unackedBatch) dropRaw() {
	for i := range b.stanzas {
		b.stanzas[i].Raw = nil
	}
}

func (b *unackedBatch) size() int {
	n := otherSize
	for _, s := range b.stanzas {
		n += len(s.Raw) + 24
	}
	return n
}

// ackDelay is how long after a stanza is sent the client asks the server
// for its acknowledgement: the stanzas sent meanwhile share one <r/>, and
// the client asks at most about four times a second.
const ackDelay = 250 * time.Millisecond

// newManager returns the stream management of the client's logical
// session, shared by its successive connections.
func newManager(cfg *config, disp *dispatcher) *sm.Manager {
	return sm.NewManager(sm.ManagerConfig{
		Config:   sm.Config{MaxQueueBytes: cfg.unackedBytes},
		Resource: cfg.resource,
		Disable:  cfg.noSM,
		Log:      cfg.log,
		OnUnacked: func(stanzas [][]byte, reason error) {
			// On the stream's read or write path, locks held: queue only.
			if cfg.onUnacked == nil {
				return
			}
			b := &unackedBatch{stanzas: make([]UnackedStanza, len(stanzas)), reason: ErrResumeFailed}
			if errors.Is(reason, sm.ErrQueueFull) {
				b.reason = ErrUnackedOverflow
			}
			for i, s := range stanzas {
				b.stanzas[i] = UnackedStanza{Raw: s}
			}
			disp.push(rareEvent{unacked: b}, true)
		},
	})
}

// ackWatch wraps the session's handler and tells when a <a/> from the
// server has been handled: every stanza the server sent before it has then
// been applied to the models, which is how the client knows that what a
// resumed session re-sent is in.
type ackWatch struct {
	mu sync.Mutex
	ch chan struct{} // closed and replaced after each <a/>
}

func newAckWatch() *ackWatch { return &ackWatch{ch: make(chan struct{})} }

func (w *ackWatch) wrap(h xmpp.Handler) xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		err := h.HandleXMPP(t, start)
		if start.Name.Space == sm.NS && start.Name.Local == "a" {
			w.mu.Lock()
			close(w.ch)
			w.ch = make(chan struct{})
			w.mu.Unlock()
		}
		return err
	})
}

// next returns a channel closed once the next <a/> has been handled.
func (w *ackWatch) next() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

// resumed brings a resumed session in step (see ConnResumed): the server
// re-sent what it kept right after <resumed/>, so once the answer to an
// <r/> of ours is handled it has all been applied; then the marks of the
// drop are cleared, without a sweep. Nothing is fetched and no presence is
// sent: the server still has ours.
func (c *Client) resumed(ctx context.Context, sess *session) error {
	done := c.acks.next()
	if err := sendCtx(ctx, sess.s, sm.Request{}.TokenReader()); err != nil {
		return fmt.Errorf("client: asking for the acknowledgement after resuming: %w", err)
	}
	select {
	case <-done:
	case <-sess.done:
		return errors.New("client: the resumed session ended")
	case <-ctx.Done():
		return fmt.Errorf("%w: no acknowledgement after resuming: %w", ErrNoResponse, ctx.Err())
	}
	c.t.clearDisconnected()
	c.t.disp.pushConn(ConnEvent{Kind: ConnResynced})
	return nil
}

// requestAcks asks the server for its acknowledgement ackDelay after
// stanzas were sent, until the session ends, so that the queue kept for
// re-sending empties while the stream is busy (the keepalive asks only
// when it is idle).
func (c *Client) requestAcks(sess *session) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := false
	for {
		select {
		case <-sess.ctx.Done():
			return
		case <-c.sm.Sent():
			if !armed {
				armed = true
				timer.Reset(ackDelay)
			}
		case <-timer.C:
			armed = false
			if c.sm.State().Unacknowledged() == 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(sess.ctx, c.cfg.writeTimeout)
			err := sendCtx(ctx, sess.s, sm.Request{}.TokenReader())
			cancel()
			if err != nil && sess.ctx.Err() == nil {
				c.cfg.log.Debug("asking for an acknowledgement", "err", err)
			}
		}
	}
}

// resumed puts the Tracker back on a resumed session: the policies go on
// where they stopped, and nothing is fetched or sent.
func (t *Tracker) resumed(s *xmpp.Session) {
	t.mu.Lock()
	t.sess = s
	t.mu.Unlock()
	t.policy.sessionResumed(s)
	t.remote.sessionStarted()
}

// clearDisconnected removes the marks of the drop from every entry, once
// what the server kept was applied.
func (t *Tracker) clearDisconnected() {
	evs, omitted := t.roster.ClearDisconnected(t.cfg.queueBytes)
	t.disp.pushRoster(evs)
	t.disp.omit(kindRoster, omitted)
	revs, omitted := t.rooms.ClearDisconnected(t.cfg.queueBytes)
	t.applyRoomEvents(revs)
	t.disp.omit(kindRoom, omitted)
}

// sessionResumed lets the policy act on s again after a resumption
// (roomPlanner.streamResumed says what it does).
func (rp *roomPolicy) sessionResumed(s *xmpp.Session) {
	rp.useSession(s, func(now time.Time) { rp.plan.streamResumed(now, rp.t.rooms.Room) })
}
