package sm

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/bind"
)

// maxRequests bounds the <r/> requests read ahead of the handler that
// answers them; past it the oldest are forgotten and answered with the
// current count.
const maxRequests = 1024

// maxResumeTries bounds the attempts in a row to resume a session that
// ended without an answer to <resume/> (the connection closed after it):
// past it the session is given up, as after a <failed/>, and the next
// connection binds a new one. A network that fails just then three times
// in a row is rare; a server that chokes on the request does it every time.
const maxResumeTries = 3

// Outcome says how the last negotiation ended for stream management.
type Outcome int

// Outcomes of a negotiation.
const (
	OutcomeOff     Outcome = iota // not offered by the server, or turned off
	OutcomeEnabled                // enabled on a new session (bound anew)
	OutcomeResumed                // the previous session was resumed: no bind happened
	OutcomeRefused                // the server refused <enable/>
)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	Config
	// Resource is the resource to bind (empty: the server chooses).
	Resource string
	// Disable turns stream management off: the Manager only binds.
	Disable bool
	// Max is the resumption time asked for, in seconds (0: the server's).
	Max uint32
	// OnUnacked receives the stanzas the server may not have received and
	// that will not be re-sent: those left when a resumption failed
	// (ErrFailed), those dropped from the full queue, and those too large
	// for it (no bytes) that a resumption found undelivered (ErrQueueFull).
	// It runs on the session's read or write path, with mellium's locks
	// held: it must return quickly and must not use the session.
	OnUnacked func(stanzas [][]byte, reason error)
	// Log receives reports of wrong acknowledgements and of refusals.
	Log *slog.Logger
}

// A Manager runs XEP-0198 on the successive connections of one client
// session: it wraps each connection to count and queue the stanzas that
// cross it, negotiates enabling or resumption in place of resource binding,
// and answers the server's <r/> from a handler wrapper. Use one Manager for
// every connection of the same logical session:
//
//	conn = m.Wrap(conn)
//	s, err := xmpp.NewSession(ctx, domain, origin, conn, state, xmpp.NewNegotiator(...
//		m.StartTLS(tlsConfig), xmpp.SASL(...), m.Bind()))
//	if m.Outcome() == sm.OutcomeResumed { /* nothing was lost: skip the resync */ }
//	err = s.Serve(m.Handler(handler))
//	m.Suspend()
type Manager struct {
	cfg   ManagerConfig
	state *State
	log   *slog.Logger

	mu      sync.Mutex
	cur     *Conn
	reqs    []uint32 // the inbound count at each <r/> read and not yet answered
	resend  []Unacked
	bound   jid.JID // the full JID of the last bound session
	outcome Outcome
	expect  string        // "enable" or "resume" while negotiating that: the answers accepted
	tries   int           // the <resume/> sent in a row without an answer
	acked   chan struct{} // closed and replaced on every <a/> read
	sent    chan struct{} // signalled (never blocking) on every stanza queued
}

// NewManager returns a Manager for a new logical session.
func NewManager(cfg ManagerConfig) *Manager {
	l := cfg.Log
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, state: New(cfg.Config), log: l, acked: make(chan struct{}), sent: make(chan struct{}, 1)}
}

// State returns the Manager's state.
func (m *Manager) State() *State { return m.state }

// Outcome returns how the last negotiation ended.
func (m *Manager) Outcome() Outcome {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.outcome
}

// Suspend records that the current connection is gone. Stanzas written
// after it are neither counted nor queued; the queue waits for a
// resumption.
func (m *Manager) Suspend() {
	m.mu.Lock()
	if m.cur != nil {
		m.cur.active = false
	}
	m.cur = nil
	m.reqs = m.reqs[:0]
	m.mu.Unlock()
	m.state.Suspend()
}

func (m *Manager) unacked(u []Unacked, reason error) {
	if len(u) == 0 || m.cfg.OnUnacked == nil {
		return
	}
	out := make([][]byte, len(u))
	for i, x := range u {
		out[i] = x.Raw
	}
	m.cfg.OnUnacked(out, reason)
}

// A Conn is a connection wrapped by a Manager: it scans what is read and
// written, counts stanzas and queues those written.
type Conn struct {
	net.Conn
	m      *Manager
	rmu    sync.Mutex
	rd     Scanner
	wmu    sync.Mutex
	wr     Scanner
	active bool // guarded by m.mu: the Manager's current connection
}

// Wrap returns c wrapped for counting. It becomes the Manager's current
// connection: an earlier one (the plain-text connection under TLS) is no
// longer scanned.
func (m *Manager) Wrap(c net.Conn) net.Conn {
	capture := m.cfg.MaxQueueBytes
	if capture <= 0 {
		capture = DefaultMaxQueueBytes
	}
	w := &Conn{Conn: c, m: m, wr: Scanner{Capture: capture}, active: true}
	m.mu.Lock()
	if m.cur != nil {
		m.cur.active = false
	}
	m.cur = w
	m.reqs = m.reqs[:0]
	m.mu.Unlock()
	return w
}

func (c *Conn) isActive() bool {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	return c.active
}

// NetConn returns the wrapped connection, as tls.Conn.NetConn does.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// ConnectionState returns the TLS state of the wrapped connection, so that
// mellium sees TLS (channel binding) through the wrapper.
func (c *Conn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.isActive() {
		c.rmu.Lock()
		c.rd.Feed(p[:n], c.m.received)
		c.rmu.Unlock()
	}
	return n, err
}

// Write implements net.Conn.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 && c.isActive() {
		c.wmu.Lock()
		c.wr.Feed(p[:n], c.m.written)
		c.wmu.Unlock()
	}
	return n, err
}

// smElement decodes a stream management element from its start tag; ok is
// false when the tag is not in the urn:xmpp:sm:3 namespace.
func smElement(tag []byte) (el Element, ok bool, err error) {
	if !bytes.Contains(tag, []byte(NS)) {
		return nil, false, nil
	}
	d := xml.NewDecoder(bytes.NewReader(tag))
	tok, err := d.Token()
	if err != nil {
		return nil, false, err
	}
	start, isStart := tok.(xml.StartElement)
	if !isStart || start.Name.Space != NS {
		return nil, false, nil
	}
	var rest xml.TokenReader = d
	if !bytes.HasSuffix(tag, []byte("/>")) {
		rest = xmlstream.Token(start.End())
	}
	el, err = Decode(rest, start)
	return el, true, err
}

// received handles a top-level element read from the server, at its place
// in the stream: before the session's decoder sees what follows it.
func (m *Manager) received(t Top) {
	var local string
	switch l := localName(t.Name); string(l) {
	case "message", "presence", "iq":
		m.state.Received("message") // any stanza name: it counts one
		return
	case "enabled":
		local = "enabled"
	case "resumed":
		local = "resumed"
	case "failed":
		local = "failed"
	case "r":
		local = "r"
	case "a":
		local = "a"
	default:
		return
	}
	switch local {
	case "enabled", "resumed", "failed":
		// Answers to what we asked, during negotiation only: from a server
		// later in the stream they would reset the counts or hand the
		// queue away.
		m.mu.Lock()
		ok := m.expect != ""
		m.mu.Unlock()
		if !ok {
			m.log.Warn("sm: unsolicited element from the server, ignored", "element", local)
			return
		}
	}
	el, ok, err := smElement(t.Tag)
	if !ok {
		return
	}
	if err != nil {
		m.log.Warn("sm: malformed element from the server", "element", local, "err", err)
		if local == "enabled" && m.expecting("enable") {
			// The server counts from here whatever it put in its
			// attributes: count too, without resumption.
			m.unacked(m.state.Enabled(Enabled{}), ErrFailed)
		}
		return
	}
	switch e := el.(type) {
	case Request:
		m.mu.Lock()
		if len(m.reqs) >= maxRequests {
			m.reqs = m.reqs[1:]
		}
		m.reqs = append(m.reqs, m.state.Handled())
		m.mu.Unlock()
	case Ack:
		if err := m.state.Ack(e.H); err != nil {
			m.log.Warn("sm: wrong acknowledgement from the server", "err", err)
		}
		m.mu.Lock()
		close(m.acked)
		m.acked = make(chan struct{})
		// The session answers: a resumption of it is over and done. Until
		// then, a <resumed/> whose session never acknowledges anything
		// counts as a try too.
		m.tries = 0
		m.mu.Unlock()
	case Enabled:
		if m.expecting("enable") {
			m.unacked(m.state.Enabled(e), ErrFailed)
		}
	case Resumed:
		if !m.expecting("resume") {
			return
		}
		resend, ackErr, err := m.state.Resumed(e)
		if ackErr != nil {
			m.log.Warn("sm: wrong count in <resumed/>", "err", ackErr)
		}
		if err != nil {
			m.log.Warn("sm: refusing <resumed/>", "err", err)
			return
		}
		m.mu.Lock()
		m.resend = resend
		m.mu.Unlock()
	case Failed:
		if !m.expecting("resume") {
			// A refused <enable/> leaves nothing to fail.
			return
		}
		un, ackErr := m.state.Failed(e)
		if ackErr != nil {
			m.log.Warn("sm: wrong count in <failed/>", "err", ackErr)
		}
		m.unacked(un, ErrFailed)
	}
}

// expecting reports whether the negotiation waits for an answer to what,
// and stops waiting: one answer per question.
func (m *Manager) expecting(what string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.expect != what {
		return false
	}
	m.expect = ""
	return true
}

func (m *Manager) setExpect(what string) {
	m.mu.Lock()
	m.expect = what
	m.mu.Unlock()
}

// written handles a top-level element written to the server.
func (m *Manager) written(t Top) {
	switch string(localName(t.Name)) {
	case "message", "presence", "iq":
	default:
		return
	}
	raw := t.Raw
	if t.Truncated {
		raw = nil
	}
	m.unacked(m.state.Sent(raw), ErrQueueFull)
	if m.state.Active() {
		select {
		case m.sent <- struct{}{}:
		default:
		}
	}
}

// Sent returns a channel that receives a value after stanzas were sent and
// queued for acknowledgement (at most one value waits, however many were
// sent): the moment to plan an <r/>, so that the queue empties while the
// stream is busy, which the idle keepalive alone would not do.
func (m *Manager) Sent() <-chan struct{} { return m.sent }

// Handler wraps h: the server's <r/> is answered with <a/>, its <a/> (taken
// into account as it was read) is consumed; everything else goes to h.
func (m *Manager) Handler(h xmpp.Handler) xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Space != NS {
			return h.HandleXMPP(t, start)
		}
		if start.Name.Local == "r" {
			m.mu.Lock()
			var hv uint32
			if len(m.reqs) > 0 {
				hv = m.reqs[0]
				m.reqs = m.reqs[1:]
			} else {
				hv = m.state.Handled()
			}
			m.mu.Unlock()
			if _, err := xmlstream.Copy(t, Ack{H: hv}.TokenReader()); err != nil {
				return err
			}
		}
		// <a/>, and anything else of stream management that has no business
		// after negotiation, is dropped: an error would end the session.
		return nil
	})
}

// RequestAck sends <r/> on s, asking the server for its count.
func RequestAck(ctx context.Context, s *xmpp.Session) error {
	return s.Send(ctx, Request{}.TokenReader())
}

// Ping sends <r/> on s and waits until the server's next <a/> has been read,
// or ctx ends (its error is returned): the keepalive of a stream with stream
// management, which also tells the server what we received and empties our
// queue. Any <a/> read after the request answers it. Ping must not be called
// from a handler: the answer is read by Serve.
func (m *Manager) Ping(ctx context.Context, s *xmpp.Session) error {
	m.mu.Lock()
	ch := m.acked
	m.mu.Unlock()
	if err := RequestAck(ctx, s); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StartTLS is xmpp.StartTLS with the TLS connection wrapped for counting.
func (m *Manager) StartTLS(cfg *tls.Config) xmpp.StreamFeature {
	return m.WrapStartTLS(xmpp.StartTLS(cfg))
}

// WrapStartTLS wraps a STARTTLS feature f (xmpp.StartTLS, or a wrapper of
// it) so that the connection it returns is wrapped for counting, and the
// one under TLS is no longer scanned.
func (m *Manager) WrapStartTLS(f xmpp.StreamFeature) xmpp.StreamFeature {
	inner := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		mask, rw, err := inner(ctx, s, data)
		if nc, ok := rw.(net.Conn); ok && err == nil {
			rw = m.Wrap(nc)
		}
		return mask, rw, err
	}
	return f
}

var errNoConn = errors.New("sm: the session's connection was not wrapped by this Manager")

// Bind returns the resource binding feature, extended with stream
// management: when the server offers it and the previous session can be
// resumed, it resumes it instead of binding (re-sending what the server did
// not acknowledge, before anything else); otherwise, or when resumption
// fails, it binds and then enables stream management.
func (m *Manager) Bind() xmpp.StreamFeature {
	f := bind.Feature(m.cfg.Resource)
	inner := f.Negotiate
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
		m.mu.Lock()
		m.outcome = OutcomeOff
		cur := m.cur
		m.mu.Unlock()
		_, offered := s.Feature(NS)
		if m.cfg.Disable || !offered || cur == nil {
			if !m.cfg.Disable && offered {
				m.log.Warn("sm: not negotiated", "err", errNoConn)
			}
			if _, _, ok := m.state.Resumption(); ok {
				// Binding anew without stream management: the old session
				// can never be resumed now, and what its server did not
				// acknowledge would otherwise wait for ever.
				m.abandon("the server no longer offers stream management")
			}
			return inner(ctx, s, data)
		}
		if r, _, ok := m.state.Resumption(); ok && m.try() {
			resumed, err := m.resume(s, cur, r)
			if err != nil {
				return 0, nil, err
			}
			if resumed {
				return xmpp.Ready, nil, nil
			}
		}
		mask, rw, err := inner(ctx, s, data)
		if err != nil {
			return mask, rw, err
		}
		m.mu.Lock()
		m.bound = s.LocalAddr()
		m.mu.Unlock()
		m.setExpect("enable")
		el, err := exchange(s, Enable{Resume: true, Max: m.cfg.Max})
		m.setExpect("")
		if err != nil && !errors.Is(err, ErrMalformed) {
			return mask, rw, err
		}
		active := m.state.Active()
		m.mu.Lock()
		defer m.mu.Unlock()
		switch e := el.(type) {
		case nil:
			// A malformed answer, read whole: failing the negotiation would
			// fail it again on every reconnection, and the client would
			// never have a session. An <enabled/> whose attributes could not
			// be taken enables counting without resumption (the scanner did
			// that); anything else leaves stream management off.
			if active {
				m.outcome = OutcomeEnabled
			} else {
				m.outcome = OutcomeRefused
			}
			m.log.Warn("sm: malformed answer to <enable/>", "err", err, "counting", active)
		case Enabled:
			if !active {
				// The scanner could not read the answer the session's decoder
				// accepted: counting would be wrong, so it is off.
				m.outcome = OutcomeRefused
				m.log.Warn("sm: <enabled/> could not be taken into account; stream management is off")
				break
			}
			m.outcome = OutcomeEnabled
		case Failed:
			m.outcome = OutcomeRefused
			m.log.Warn("sm: the server refused to enable stream management", "condition", e.Condition)
		default:
			// <r/>, <a/>: the server may yet enable it, but the count would
			// start at an unknown place.
			m.outcome = OutcomeRefused
			m.log.Warn("sm: <enable/> answered with another element; stream management is off", "element", fmt.Sprintf("%T", el))
		}
		return mask, rw, nil
	}
	return f
}

// resume asks to resume r. It reports whether the session was resumed; a
// <failed/> answer leaves the stream ready for binding. An answer that is
// neither a <resumed/> for r nor a <failed/> ends the negotiation and the
// session's resumability: asked again, that server would answer the same on
// every reconnection, and the client would never have a session.
func (m *Manager) resume(s *xmpp.Session, cur *Conn, r Resume) (bool, error) {
	m.setExpect("resume")
	el, err := exchange(s, r)
	m.setExpect("")
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			m.abandon("malformed answer to <resume/>")
		}
		return false, err
	}
	switch e := el.(type) {
	case Resumed:
		m.mu.Lock()
		resend := m.resend
		m.resend = nil
		bound := m.bound
		m.mu.Unlock()
		if !m.state.Active() {
			// The scanner refused it (another previd).
			m.abandon("<resumed/> for another session")
			return false, fmt.Errorf("%w: previd %q", ErrPrevID, trunc(e.PrevID))
		}
		// What the server did not get and the queue kept without bytes
		// cannot be re-sent: the application hears of it now.
		var lost []Unacked
		for _, u := range resend {
			if u.Raw == nil {
				lost = append(lost, u)
			}
		}
		m.unacked(lost, ErrQueueFull)
		// Re-send, under the counting wrapper, what the server did not get,
		// before anything new can be written: nothing else writes until
		// negotiation ends.
		for _, u := range resend {
			if u.Raw == nil {
				continue
			}
			if _, err := cur.Conn.Write(u.Raw); err != nil {
				return false, err
			}
		}
		s.UpdateAddr(bound)
		m.mu.Lock()
		m.outcome = OutcomeResumed
		m.mu.Unlock()
		return true, nil
	case Failed:
		if _, _, ok := m.state.Resumption(); ok {
			// The scanner did not see it: fail the state here.
			un, _ := m.state.Failed(e)
			m.unacked(un, ErrFailed)
		}
		m.log.Info("sm: resumption failed, binding a new session", "condition", e.Condition)
		return false, nil
	default:
		m.abandon("<resume/> answered with another element")
		return false, fmt.Errorf("%w: <resume/> answered with %T", ErrMalformed, el)
	}
}

// try counts an attempt to resume. After maxResumeTries in a row that got
// no answer, or a <resumed/> but never an acknowledgement after it (a
// server that resumes sessions it cannot serve), it gives the session up
// (abandon) and reports false.
func (m *Manager) try() bool {
	m.mu.Lock()
	m.tries++
	over := m.tries > maxResumeTries
	if over {
		m.tries = 0
	}
	m.mu.Unlock()
	if over {
		m.abandon("<resume/> unanswered too many times")
	}
	return !over
}

// abandon gives up resuming the session, as after a <failed/>: what the
// server did not acknowledge goes to OnUnacked, and the next connection
// binds a new session.
func (m *Manager) abandon(why string) {
	un, _ := m.state.Failed(Failed{})
	m.unacked(un, ErrFailed)
	m.log.Warn("sm: resumption given up; the next connection starts a new session", "why", why)
}

// exchange writes el and reads the answer, one element.
func exchange(s *xmpp.Session, el Element) (Element, error) {
	w := s.TokenWriter()
	if _, err := xmlstream.Copy(w, el.TokenReader()); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Flush(); err != nil {
		w.Close()
		return nil, err
	}
	w.Close()
	r := s.TokenReader()
	defer r.Close()
	for {
		tok, err := r.Token()
		if err != nil {
			return nil, err
		}
		if start, ok := tok.(xml.StartElement); ok {
			return Decode(r, start)
		}
	}
}
