package sm

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultMaxQueueBytes bounds the bytes of unacknowledged stanzas a State
// keeps when Config.MaxQueueBytes is 0.
const DefaultMaxQueueBytes = 1 << 20

// Errors a State reports. They describe the peer's mistakes or lies; none of
// them ends the session by itself.
var (
	// ErrAckTooHigh: the server acknowledged more stanzas than were sent.
	// The State takes it as acknowledging everything sent (the value is
	// clamped). Returned as an *AckError.
	ErrAckTooHigh = errors.New("sm: the server acknowledged stanzas that were never sent")
	// ErrAckBackwards: the server's count went backwards; the State ignores
	// it. Returned as an *AckError.
	ErrAckBackwards = errors.New("sm: the server's acknowledged count went backwards")
	// ErrPrevID: <resumed/> names another session than the one resumed.
	ErrPrevID = errors.New("sm: resumed another session than the one asked for")
	// ErrNotResumable: there is no session to resume.
	ErrNotResumable = errors.New("sm: no resumable session")
	// ErrQueueFull: a stanza was dropped from the unacknowledged queue to
	// keep it under its size; it can no longer be re-sent.
	ErrQueueFull = errors.New("sm: unacknowledged queue full")
	// ErrFailed: the server refused to resume; the stanzas it had not
	// acknowledged may never have been delivered.
	ErrFailed = errors.New("sm: stream resumption failed")
)

// An AckError reports an acknowledgement the State could not take as it was.
// It matches ErrAckTooHigh or ErrAckBackwards.
type AckError struct {
	H     uint32 // what the server said
	Acked uint32 // what it had acknowledged before
	Sent  uint32 // what the client had sent
	Err   error  // ErrAckTooHigh or ErrAckBackwards
}

// Error implements error.
func (e *AckError) Error() string {
	return fmt.Sprintf("%v: h=%d, acknowledged %d, sent %d", e.Err, e.H, e.Acked, e.Sent)
}

// Unwrap returns Err.
func (e *AckError) Unwrap() error { return e.Err }

// An Unacked stanza is one the server has not acknowledged: Seq is its
// number in the outbound count, Raw its bytes (nil when it was larger than
// the queue could keep).
type Unacked struct {
	Seq uint32
	Raw []byte
}

// Config configures a State.
type Config struct {
	// MaxQueueBytes bounds the bytes of the unacknowledged stanzas kept for
	// re-sending (DefaultMaxQueueBytes when 0). Past it the oldest are
	// dropped and returned by Sent.
	MaxQueueBytes int
}

// State is the client-side bookkeeping of XEP-0198 stream management for one
// session, across its resumptions: the count of stanzas handled (inbound h),
// the stanzas sent and not yet acknowledged, and what resumption needs. It is
// pure: it reads and writes nothing, the caller tells it what was sent and
// received. It is safe for concurrent use.
//
// Counts are modulo 2^32 (XEP-0198 §4). Only stanzas count (message,
// presence, iq); <r/>, <a/> and the other elements of stream management
// (nonzas) are neither counted nor queued.
type State struct {
	mu       sync.Mutex
	maxBytes int

	// inbound
	counting bool   // the inbound count runs (after <enabled/> or <resumed/>)
	inbound  uint32 // stanzas received since <enable/>

	// outbound
	enabled    bool   // outbound counting and queueing run
	sent       uint32 // stanzas sent since <enable/>
	acked      uint32 // the server's last h
	queue      []Unacked
	queueBytes int

	// resumption
	id        string
	location  string
	max       uint32
	resumable bool
}

// New returns a State for a session that has not enabled stream management.
func New(cfg Config) *State {
	if cfg.MaxQueueBytes <= 0 {
		cfg.MaxQueueBytes = DefaultMaxQueueBytes
	}
	return &State{maxBytes: cfg.MaxQueueBytes}
}

// IsStanza reports whether a top-level element with this local name is a
// stanza, which XEP-0198 counts.
func IsStanza(local string) bool {
	return local == "message" || local == "presence" || local == "iq"
}

// Enabled records the server's <enabled/>: counting starts from zero both
// ways and what resumption needs is kept. Stanzas still queued from an
// earlier session are returned: they were never acknowledged and are not
// re-sent on this one (call Failed first to get them with the reason).
func (s *State) Enabled(e Enabled) []Unacked {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := s.queue
	s.queue, s.queueBytes = nil, 0
	s.enabled, s.sent, s.acked = true, 0, 0
	s.counting, s.inbound = true, 0
	s.id, s.location, s.max, s.resumable = e.ID, e.Location, e.Max, e.Resume && e.ID != ""
	return left
}

// Received counts a top-level element received with this local name: a
// stanza adds one to the inbound count, when counting runs.
func (s *State) Received(local string) {
	if !IsStanza(local) {
		return
	}
	s.mu.Lock()
	if s.counting {
		s.inbound++
	}
	s.mu.Unlock()
}

// Handled returns the inbound count, the h of an <a/> or <resume/>.
func (s *State) Handled() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inbound
}

// Active reports whether stream management is enabled on the current
// stream (after <enabled/> or <resumed/>, until Failed or Suspend).
func (s *State) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enabled
}

// Sent records a stanza written to the stream, with its bytes: it is
// counted and queued until acknowledged. A stanza larger than the queue's
// size is counted and kept without its bytes. Stanzas dropped from the
// queue to keep it under its size are returned (oldest first): they can no
// longer be re-sent. Sent does nothing unless stream management is active.
func (s *State) Sent(raw []byte) (dropped []Unacked) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled {
		return nil
	}
	s.sent++
	if len(raw) > s.maxBytes {
		raw = nil
	} else {
		raw = append([]byte(nil), raw...)
	}
	s.queue = append(s.queue, Unacked{Seq: s.sent, Raw: raw})
	s.queueBytes += len(raw)
	i := 0
	for s.queueBytes > s.maxBytes && i < len(s.queue) {
		s.queueBytes -= len(s.queue[i].Raw)
		i++
	}
	if i > 0 {
		dropped = append(dropped, s.queue[:i]...)
		s.queue = s.compact(i)
	}
	return dropped
}

// compact returns the queue without its first n entries, copying it when
// the dropped part is large so that the backing array does not grow for
// ever.
func (s *State) compact(n int) []Unacked {
	rest := s.queue[n:]
	if cap(rest) < len(rest)*2+16 {
		return rest
	}
	return append([]Unacked(nil), rest...)
}

// Ack records the server's <a h/>. The acknowledged stanzas leave the queue.
// An h larger than the count sent is clamped to it and reported; an h
// behind the last one is ignored and reported (both as *AckError). Either
// way the State stays consistent.
func (s *State) Ack(h uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ackLocked(h)
}

func (s *State) ackLocked(h uint32) error {
	ahead := h - s.acked        // stanzas newly acknowledged, modulo 2^32
	unacked := s.sent - s.acked // stanzas in flight
	var err error
	switch {
	case ahead == 0:
		return nil
	case int32(ahead) < 0:
		// Further behind than ahead: a count that went backwards.
		return &AckError{H: h, Acked: s.acked, Sent: s.sent, Err: ErrAckBackwards}
	case ahead > unacked:
		err = &AckError{H: h, Acked: s.acked, Sent: s.sent, Err: ErrAckTooHigh}
		h = s.sent
	}
	s.acked = h
	n := 0
	for n < len(s.queue) && int32(s.queue[n].Seq-h) <= 0 {
		s.queueBytes -= len(s.queue[n].Raw)
		n++
	}
	if n > 0 {
		s.queue = s.compact(n)
	}
	return err
}

// Unacknowledged returns how many stanzas were sent and not acknowledged.
func (s *State) Unacknowledged() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent - s.acked
}

// QueueBytes returns the bytes of the queued stanzas.
func (s *State) QueueBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queueBytes
}

// Suspend records that the stream is gone (a drop, before any resumption):
// nothing more is counted or queued until Resumed or Enabled. The queue and
// the counts stay for resumption.
func (s *State) Suspend() {
	s.mu.Lock()
	s.enabled, s.counting = false, false
	s.mu.Unlock()
}

// Resumption returns what to send in <resume/>, and where to reconnect
// (empty: anywhere), when the last session can be resumed. The h is the
// inbound count, which resumption never resets.
func (s *State) Resumption() (r Resume, location string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.resumable || s.id == "" {
		return Resume{}, "", false
	}
	return Resume{PrevID: s.id, H: s.inbound}, s.location, true
}

// Max returns the maximum resumption time the server announced, in seconds
// (0: not announced).
func (s *State) Max() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// Resumed records the server's <resumed/>: what it acknowledged leaves the
// queue, and the rest is returned, oldest first, to be re-sent on the new
// stream before any new stanza. Re-sent stanzas stay queued until
// acknowledged, numbered from the server's h as the server will count
// them: stanzas the queue no longer has (dropped when it was full) or kept
// without bytes cannot be re-sent, so they are not counted again. Those
// kept without bytes are returned too (Raw nil) and leave the queue, for
// the caller to report. The inbound count goes on from where it was. A
// wrong h is clamped or ignored as by Ack, and reported in ackErr; a
// <resumed/> for another session is refused with ErrPrevID and changes
// nothing.
func (s *State) Resumed(r Resumed) (resend []Unacked, ackErr error, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.resumable || s.id == "":
		return nil, nil, ErrNotResumable
	case r.PrevID != s.id:
		return nil, nil, fmt.Errorf("%w: asked %q, got %q", ErrPrevID, trunc(s.id), trunc(r.PrevID))
	}
	ackErr = s.ackLocked(r.H)
	s.enabled, s.counting = true, true
	resend = append([]Unacked(nil), s.queue...)
	kept := s.queue[:0]
	for _, u := range s.queue {
		if u.Raw != nil {
			u.Seq = s.acked + uint32(len(kept)) + 1
			kept = append(kept, u)
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	s.sent = s.acked + uint32(len(kept))
	for i, j := 0, 0; i < len(resend); i++ {
		if resend[i].Raw != nil {
			resend[i].Seq = kept[j].Seq
			j++
		}
	}
	return resend, ackErr, nil
}

// Failed records a <failed/> answer to <resume/> (or to <enable/>): the
// session is gone. When the server said how many stanzas it handled, those
// leave the queue first (a wrong h as by Ack, reported in ackErr). The
// stanzas left are returned for the application to decide about: they are
// not re-sent, since the server may have delivered them. Resumption is no
// longer possible and counting stops until Enabled, which alone resets the
// inbound count.
func (s *State) Failed(f Failed) (unacked []Unacked, ackErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.HasH {
		ackErr = s.ackLocked(f.H)
	}
	unacked = s.queue
	s.queue, s.queueBytes = nil, 0
	s.enabled, s.counting = false, false
	s.id, s.location, s.max, s.resumable = "", "", 0, false
	s.acked = s.sent // nothing is in flight any more; the counts restart on Enabled
	return unacked, ackErr
}
