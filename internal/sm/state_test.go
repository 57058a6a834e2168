package sm

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

func enabled(t *testing.T, max int) *State {
	t.Helper()
	s := New(Config{MaxQueueBytes: max})
	if left := s.Enabled(Enabled{ID: "s1", Resume: true, Max: 300}); len(left) != 0 {
		t.Fatalf("fresh Enabled returned %d stanzas", len(left))
	}
	return s
}

func send(s *State, n int) {
	for i := 0; i < n; i++ {
		s.Sent(fmt.Appendf(nil, "<message id='%d'/>", i))
	}
}

func seqs(u []Unacked) []uint32 {
	var out []uint32
	for _, x := range u {
		out = append(out, x.Seq)
	}
	return out
}

func TestInboundCountsStanzasOnly(t *testing.T) {
	s := enabled(t, 0)
	for _, n := range []string{"message", "r", "presence", "a", "iq", "enabled", "resumed", "failed", "stream:error", "foo"} {
		s.Received(n)
	}
	if h := s.Handled(); h != 3 {
		t.Fatalf("h = %d, want 3 (message, presence, iq; never r/a or other nonzas)", h)
	}
}

func TestInboundNotCountedBeforeEnable(t *testing.T) {
	s := New(Config{})
	s.Received("message")
	s.Enabled(Enabled{})
	s.Received("message")
	if h := s.Handled(); h != 1 {
		t.Fatalf("h = %d, want 1", h)
	}
}

func TestInboundWrapsModulo2to32(t *testing.T) {
	s := enabled(t, 0)
	s.inbound = math.MaxUint32
	s.Received("iq")
	if h := s.Handled(); h != 0 {
		t.Fatalf("h = %d after 2^32-1 + 1, want 0", h)
	}
	s.Received("iq")
	if h := s.Handled(); h != 1 {
		t.Fatalf("h = %d, want 1", h)
	}
}

// stanza.io reset inbound h to 0 after <resume/>, so the server replayed
// everything: the count must go on across a resumption, and reset only on
// <enabled/>.
func TestInboundNotResetOnResume(t *testing.T) {
	s := enabled(t, 0)
	for range 5 {
		s.Received("message")
	}
	s.Suspend()
	s.Received("message") // nothing counts while the stream is gone
	r, _, ok := s.Resumption()
	if !ok || r.H != 5 || r.PrevID != "s1" {
		t.Fatalf("Resumption = %+v, %v; want previd s1, h 5", r, ok)
	}
	if _, _, err := s.Resumed(Resumed{PrevID: "s1", H: 0}); err != nil {
		t.Fatal(err)
	}
	s.Received("presence")
	if h := s.Handled(); h != 6 {
		t.Fatalf("h = %d after resume and one more stanza, want 6", h)
	}
	s.Enabled(Enabled{})
	if h := s.Handled(); h != 0 {
		t.Fatalf("h = %d after a new enable, want 0", h)
	}
}

func TestAckDropsAcknowledged(t *testing.T) {
	s := enabled(t, 0)
	send(s, 5)
	if err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	if n := s.Unacknowledged(); n != 2 {
		t.Fatalf("unacknowledged = %d, want 2", n)
	}
	if got := seqs(s.queue); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("queue = %v, want [4 5]", got)
	}
	if b := s.QueueBytes(); b != len(s.queue[0].Raw)+len(s.queue[1].Raw) {
		t.Fatalf("QueueBytes = %d, does not match the queue", b)
	}
}

// gosrc.io re-sent the whole queue on every <a/>: an ack only drops, and
// returns nothing to send.
func TestAckNeverResends(t *testing.T) {
	s := enabled(t, 0)
	send(s, 3)
	for h := uint32(0); h <= 3; h++ {
		if err := s.Ack(h); err != nil {
			t.Fatalf("Ack(%d): %v", h, err)
		}
		if got := len(s.queue); got != int(3-h) {
			t.Fatalf("after Ack(%d): %d queued, want %d", h, got, 3-h)
		}
	}
	// The same ack again is no news.
	if err := s.Ack(3); err != nil {
		t.Fatalf("repeated ack: %v", err)
	}
}

// gosrc.io computed PopN(lastSent - h) and popped nothing when the counter
// had wrapped: the queue must drain across 2^32.
func TestAckAcrossWraparound(t *testing.T) {
	s := enabled(t, 0)
	s.sent, s.acked = math.MaxUint32-2, math.MaxUint32-2
	send(s, 5) // seqs 2^32-2, 2^32-1, 0, 1, 2
	if got := seqs(s.queue); fmt.Sprint(got) != fmt.Sprint([]uint32{math.MaxUint32 - 1, math.MaxUint32, 0, 1, 2}) {
		t.Fatalf("queue = %v", got)
	}
	if err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
	if got := seqs(s.queue); fmt.Sprint(got) != "[2]" {
		t.Fatalf("after Ack(1) across the wrap: queue = %v, want [2]", got)
	}
}

// xmpp.js crashed when h exceeded its queue; Openfire once sent a wrong h:
// clamp to what was sent, report, never panic.
func TestAckTooHighIsClamped(t *testing.T) {
	s := enabled(t, 0)
	send(s, 2)
	err := s.Ack(10)
	var ae *AckError
	if !errors.Is(err, ErrAckTooHigh) || !errors.As(err, &ae) || ae.H != 10 || ae.Sent != 2 {
		t.Fatalf("Ack(10) = %v, want an *AckError matching ErrAckTooHigh", err)
	}
	if n := s.Unacknowledged(); n != 0 || len(s.queue) != 0 || s.QueueBytes() != 0 {
		t.Fatalf("after a clamped ack: %d unacknowledged, %d queued", n, len(s.queue))
	}
	// Counting goes on consistently from the clamped value.
	send(s, 1)
	if err := s.Ack(3); err != nil || len(s.queue) != 0 {
		t.Fatalf("Ack(3) after clamp: %v, %d queued", err, len(s.queue))
	}
}

func TestAckTooHighOnEmptyQueue(t *testing.T) {
	s := enabled(t, 0)
	if err := s.Ack(math.MaxUint32 / 2); !errors.Is(err, ErrAckTooHigh) {
		t.Fatalf("Ack with nothing sent = %v, want ErrAckTooHigh", err)
	}
	if n := s.Unacknowledged(); n != 0 {
		t.Fatalf("unacknowledged = %d", n)
	}
}

func TestAckBackwardsIgnored(t *testing.T) {
	s := enabled(t, 0)
	send(s, 5)
	if err := s.Ack(4); err != nil {
		t.Fatal(err)
	}
	err := s.Ack(2)
	if !errors.Is(err, ErrAckBackwards) {
		t.Fatalf("Ack(2) after Ack(4) = %v, want ErrAckBackwards", err)
	}
	if n := s.Unacknowledged(); n != 1 || len(s.queue) != 1 || s.queue[0].Seq != 5 {
		t.Fatalf("a backwards ack changed the state: %d unacknowledged, queue %v", n, seqs(s.queue))
	}
}

// Nonzas are never queued: only what the caller reports with Sent is, and
// the send path reports stanzas only; nothing is queued before enable.
func TestSentBeforeEnableNotQueued(t *testing.T) {
	s := New(Config{})
	s.Sent([]byte("<message/>"))
	if n := s.Unacknowledged(); n != 0 {
		t.Fatalf("queued before enable: %d", n)
	}
}

func TestQueueBoundedInBytes(t *testing.T) {
	s := enabled(t, 100)
	var dropped []Unacked
	for i := 0; i < 10; i++ {
		dropped = append(dropped, s.Sent(make([]byte, 30))...)
		if b := s.QueueBytes(); b > 100 {
			t.Fatalf("queue holds %d bytes, over its bound of 100", b)
		}
	}
	if len(dropped) != 7 || dropped[0].Seq != 1 || dropped[6].Seq != 7 {
		t.Fatalf("dropped %v, want seqs 1..7", seqs(dropped))
	}
	// A stanza larger than the whole queue is counted, kept without bytes.
	s.Sent(make([]byte, 1000))
	last := s.queue[len(s.queue)-1]
	if last.Seq != 11 || last.Raw != nil {
		t.Fatalf("oversized stanza queued as %+v", last)
	}
	if n := s.Unacknowledged(); n != 11 {
		t.Fatalf("unacknowledged = %d, want 11: dropping bytes must not change the count", n)
	}
	if err := s.Ack(11); err != nil {
		t.Fatalf("ack of everything after drops: %v", err)
	}
}

func TestSentCopiesBytes(t *testing.T) {
	s := enabled(t, 0)
	b := []byte("<iq/>")
	s.Sent(b)
	b[1] = 'X'
	if string(s.queue[0].Raw) != "<iq/>" {
		t.Fatalf("the queue aliases the caller's buffer: %q", s.queue[0].Raw)
	}
}

// slixmpp cleared the unacked queue when sending <resume/>: asking for the
// resumption must leave the queue, and <resumed h/> returns what the server
// did not get.
func TestResumeKeepsQueueAndReturnsUnacked(t *testing.T) {
	s := enabled(t, 0)
	send(s, 5)
	if err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
	s.Suspend()
	s.Sent([]byte("<message/>")) // written to a dead stream: not counted
	if _, _, ok := s.Resumption(); !ok {
		t.Fatal("not resumable")
	}
	if n := s.Unacknowledged(); n != 4 {
		t.Fatalf("unacknowledged after asking to resume = %d, want 4", n)
	}
	resend, ackErr, err := s.Resumed(Resumed{PrevID: "s1", H: 3})
	if err != nil || ackErr != nil {
		t.Fatalf("Resumed: %v, %v", ackErr, err)
	}
	if got := seqs(resend); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("resend = %v, want [4 5] (oldest first)", got)
	}
	if string(resend[0].Raw) != "<message id='3'/>" {
		t.Fatalf("resend[0] = %q", resend[0].Raw)
	}
	// Re-sent stanzas keep their numbers and stay queued; a new one follows.
	s.Sent([]byte("<message id='new'/>"))
	if got := seqs(s.queue); fmt.Sprint(got) != "[4 5 6]" {
		t.Fatalf("queue after resume and one new stanza = %v, want [4 5 6]", got)
	}
	if err := s.Ack(6); err != nil {
		t.Fatal(err)
	}
}

func TestResumedWrongH(t *testing.T) {
	s := enabled(t, 0)
	send(s, 2)
	s.Suspend()
	resend, ackErr, err := s.Resumed(Resumed{PrevID: "s1", H: 7})
	if err != nil || !errors.Is(ackErr, ErrAckTooHigh) || len(resend) != 0 {
		t.Fatalf("Resumed h=7 of 2: resend %v, ackErr %v, err %v", seqs(resend), ackErr, err)
	}
	s2 := enabled(t, 0)
	send(s2, 4)
	_ = s2.Ack(3)
	s2.Suspend()
	resend, ackErr, err = s2.Resumed(Resumed{PrevID: "s1", H: 1})
	if err != nil || !errors.Is(ackErr, ErrAckBackwards) || fmt.Sprint(seqs(resend)) != "[4]" {
		t.Fatalf("Resumed h=1 after ack 3: resend %v, ackErr %v, err %v", seqs(resend), ackErr, err)
	}
}

// A <resumed/> for another session is not a resumption.
func TestResumedOtherSession(t *testing.T) {
	s := enabled(t, 0)
	send(s, 2)
	s.Suspend()
	if _, _, err := s.Resumed(Resumed{PrevID: "other", H: 2}); !errors.Is(err, ErrPrevID) {
		t.Fatalf("Resumed(other) = %v, want ErrPrevID", err)
	}
	if s.Active() || s.Unacknowledged() != 2 {
		t.Fatal("a refused <resumed/> changed the state")
	}
	if _, _, err := New(Config{}).Resumed(Resumed{PrevID: "s1"}); !errors.Is(err, ErrNotResumable) {
		t.Fatalf("Resumed on a fresh state = %v, want ErrNotResumable", err)
	}
}

func TestNotResumableWithoutID(t *testing.T) {
	s := New(Config{})
	s.Enabled(Enabled{Resume: false, ID: "x"})
	if _, _, ok := s.Resumption(); ok {
		t.Fatal("resumable although the server did not allow it")
	}
	s.Enabled(Enabled{Resume: true})
	if _, _, ok := s.Resumption(); ok {
		t.Fatal("resumable without an id")
	}
	s.Enabled(Enabled{Resume: true, ID: "y", Location: "[::1]:5222", Max: 60})
	r, loc, ok := s.Resumption()
	if !ok || r.PrevID != "y" || loc != "[::1]:5222" || s.Max() != 60 {
		t.Fatalf("Resumption = %+v %q %v, max %d", r, loc, ok, s.Max())
	}
}

// A failed resumption is not a resumption (gosrc.io fell back to bind
// silently): the unacknowledged stanzas go back to the application, are not
// re-sent, and resumption is over.
func TestFailedReturnsUnacked(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Failed
		want string
	}{
		{"without h", Failed{Condition: "item-not-found"}, "[2 3 4]"},
		{"with h", Failed{H: 3, HasH: true}, "[4]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := enabled(t, 0)
			send(s, 4)
			_ = s.Ack(1)
			s.Received("message")
			s.Suspend()
			un, ackErr := s.Failed(tc.f)
			if ackErr != nil || fmt.Sprint(seqs(un)) != tc.want {
				t.Fatalf("Failed = %v, %v; want %s", seqs(un), ackErr, tc.want)
			}
			if _, _, ok := s.Resumption(); ok || s.Active() || s.Unacknowledged() != 0 || s.QueueBytes() != 0 {
				t.Fatal("still resumable or holding stanzas after <failed/>")
			}
			s.Sent([]byte("<message/>"))
			if s.Unacknowledged() != 0 {
				t.Fatal("queueing after <failed/> without a new enable")
			}
			if left := s.Enabled(Enabled{}); len(left) != 0 {
				t.Fatalf("the new session inherited %d stanzas", len(left))
			}
			if s.Handled() != 0 {
				t.Fatal("inbound count not reset by the new enable")
			}
		})
	}
}

func TestFailedWrongH(t *testing.T) {
	s := enabled(t, 0)
	send(s, 2)
	un, ackErr := s.Failed(Failed{H: 9, HasH: true})
	if !errors.Is(ackErr, ErrAckTooHigh) || len(un) != 0 {
		t.Fatalf("Failed h=9 of 2: %v, %v", seqs(un), ackErr)
	}
}

// Stanzas left from a session that was neither resumed nor failed (the
// caller went straight to a new enable) are handed back, not carried over.
func TestEnabledReturnsLeftovers(t *testing.T) {
	s := enabled(t, 0)
	send(s, 2)
	left := s.Enabled(Enabled{})
	if fmt.Sprint(seqs(left)) != "[1 2]" || s.Unacknowledged() != 0 {
		t.Fatalf("Enabled returned %v", seqs(left))
	}
}

func TestQueueMemoryReused(t *testing.T) {
	s := enabled(t, 0)
	for i := 0; i < 100000; i++ {
		s.Sent([]byte("<message/>"))
		if err := s.Ack(s.sent); err != nil {
			t.Fatal(err)
		}
	}
	if c := cap(s.queue); c > 64 {
		t.Fatalf("queue capacity %d after 100k send/ack pairs: the backing array grows", c)
	}
}

// What the queue no longer holds cannot be re-sent on a resumption: the
// stanzas dropped from the full queue and those larger than it. The server
// counts only what it gets, so the client must count the re-sent stanzas
// from the server's h as the server will; otherwise its count runs ahead:
// the server's acknowledgements then free a stanza never delivered and keep
// one delivered, which the next resumption sends again.
func TestResumedCountsOnlyWhatIsResent(t *testing.T) {
	t.Run("dropped from the full queue", func(t *testing.T) {
		s := enabled(t, 10)
		for range 3 {
			s.Sent([]byte("<iq/>")) // 5 bytes: the third drops the first
		}
		s.Suspend()
		resend, ackErr, err := s.Resumed(Resumed{PrevID: "s1", H: 0})
		if err != nil || ackErr != nil {
			t.Fatalf("Resumed: %v, %v", ackErr, err)
		}
		if len(resend) != 2 {
			t.Fatalf("resend %v, want the two kept", seqs(resend))
		}
		// The server got the two re-sent ones, as its 1 and 2.
		if err := s.Ack(2); err != nil {
			t.Fatal(err)
		}
		if n := s.Unacknowledged(); n != 0 {
			t.Fatalf("%d unacknowledged after the server acknowledged all it got (queue %v)", n, seqs(s.queue))
		}
	})
	t.Run("larger than the queue", func(t *testing.T) {
		s := enabled(t, 10)
		s.Sent([]byte("<iq/>"))
		s.Sent(make([]byte, 20)) // kept without bytes
		s.Sent([]byte("<iq/>"))
		s.Suspend()
		resend, ackErr, err := s.Resumed(Resumed{PrevID: "s1", H: 0})
		if err != nil || ackErr != nil {
			t.Fatalf("Resumed: %v, %v", ackErr, err)
		}
		var bytes, none int
		for _, u := range resend {
			if u.Raw == nil {
				none++
			} else {
				bytes++
			}
		}
		if bytes != 2 || none != 1 {
			t.Fatalf("resend %v: %d with bytes, %d without; want 2 and 1 (reported, not re-sent)", seqs(resend), bytes, none)
		}
		if err := s.Ack(2); err != nil {
			t.Fatal(err)
		}
		if n := s.Unacknowledged(); n != 0 {
			t.Fatalf("%d unacknowledged after the server acknowledged the two re-sent (queue %v)", n, seqs(s.queue))
		}
	})
}
