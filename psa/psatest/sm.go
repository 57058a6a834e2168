package psatest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"

	"github.com/psakit/psakit/internal/sm"
	"github.com/psakit/psakit/internal/xmltok"
)

// WithStreamManagement makes the server offer XEP-0198 Stream Management
// (urn:xmpp:sm:3) after authentication, as Prosody and ejabberd do:
//
//   - <enable/> after binding is answered with <enabled/>, resumable when
//     asked, with max set to the hibernation time in seconds. The server then
//     counts the stanzas each way: it answers the client's <r/> with <a h/>,
//     drops what the client's <a h/> acknowledges, and keeps the rest for
//     resumption (stanzas written with SendRaw are neither counted nor
//     kept).
//   - A resumable session whose connection ends without the end of its
//     stream (Session.Drop, a network failure) hibernates instead of ending:
//     it stays bound and available, its rooms keep it, and stanzas to it are
//     counted and kept. Its client may resume it with <resume previd h/>
//     before binding (recorded, for Session.Next, as the first element of
//     the resumed stream): the server answers <resumed h/>, then writes what
//     the client had not acknowledged, oldest first, before anything new. While
//     it hibernates, Session.Next returns ErrSessionClosed once nothing
//     recorded matches. A resumption of a session whose connection the
//     server has not seen fail (a client that gave up on a silent link)
//     takes it over, as Prosody does: the old connection is closed first.
//   - After hibernate (0: until Session.Expire, Restart or Close) the session
//     ends as a dropped one does; a later <resume/> is answered with
//     <failed h/> and <item-not-found/>, and the client binds anew. Expire
//     ends a hibernating session at once, without waiting.
func WithStreamManagement(hibernate time.Duration) Option {
	return func(c *config) { c.sm, c.smHibernate = true, hibernate }
}

// smServer is the server's stream management bookkeeping.
type smServer struct {
	hibernate time.Duration
	byID      map[string]*Session // resumable sessions, hibernating or not, and expired ones
}

// smSession is a session's stream management state. Guarded by Server.mu.
type smSession struct {
	id          string
	resumable   bool
	in          uint32 // stanzas received from the client since <enable/>
	out         uint32 // stanzas sent to the client since <enable/>
	acked       uint32 // the client's last h
	queue       []smItem
	hibernating bool
	timer       *time.Timer
}

type smItem struct {
	seq  uint32
	data []byte
}

// smFeature is the server side of <resume/>, offered with resource binding.
// It is listed as required so that mellium's negotiation ends after it: a
// client either resumes or binds (answered by bindF), never both.
func (s *Server) smFeature(c *conn, user func() string, bindF xmpp.StreamFeature, resumed func(*Session)) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: sm.NS, Local: "sm"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		List: func(_ context.Context, e xmlstream.TokenWriter, start xml.StartElement) (bool, error) {
			if err := e.EncodeToken(start); err != nil {
				return true, err
			}
			return true, e.EncodeToken(start.End())
		},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return false, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, ms *xmpp.Session, data any) (xmpp.SessionState, io.ReadWriter, error) {
			r := ms.TokenReader()
			tok, err := r.Token()
			if err != nil {
				r.Close()
				return 0, nil, err
			}
			start, ok := tok.(xml.StartElement)
			if !ok {
				r.Close()
				return 0, nil, fmt.Errorf("psatest: expected <resume/>, got %T", tok)
			}
			el, err := sm.Decode(r, start)
			r.Close()
			if err != nil {
				return 0, nil, err
			}
			req, ok := el.(sm.Resume)
			if !ok {
				return 0, nil, fmt.Errorf("psatest: expected <resume/>, got %T", el)
			}
			s.detach(c, user(), req.PrevID)
			answer, sess := s.resume(c, user(), req)
			w := ms.TokenWriter()
			_, err = xmlstream.Copy(w, answer.TokenReader())
			if err == nil {
				err = w.Flush()
			}
			w.Close()
			if err != nil {
				return 0, nil, err
			}
			if sess == nil {
				// Failed: the client binds a new session.
				return bindF.Negotiate(ctx, ms, nil)
			}
			resumed(sess)
			return xmpp.Ready, nil, nil
		},
	}
}

// detach closes the connection of the session previd of user when it still
// has one, as Prosody does when a client resumes a session whose old
// connection the server has not seen fail, and waits until the session
// hibernates (or ends).
func (s *Server) detach(c *conn, user, previd string) {
	s.mu.Lock()
	var old *conn
	if sess := s.sm.byID[previd]; sess != nil && sess.jid.Localpart() == user && !sess.ended && sess.sm != nil && !sess.sm.hibernating && sess.c != c {
		old = sess.c
	}
	s.mu.Unlock()
	if old != nil {
		s.log.Info("psatest: resumption takes over a connection", "previd", previd)
		old.raw.Close()
		<-old.done
	}
}

// resume attaches the hibernating session previd of user to c, with what the
// client has not acknowledged queued for writing, and returns <resumed/>; or
// returns <failed/> and no session.
func (s *Server) resume(c *conn, user string, req sm.Resume) (sm.Element, *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sm.byID[req.PrevID]
	switch {
	case sess == nil || sess.jid.Localpart() != user || s.closed:
		s.log.Info("psatest: resumption of an unknown session", "previd", req.PrevID)
		return sm.Failed{Condition: "item-not-found"}, nil
	case !sess.sm.hibernating || sess.ended:
		s.log.Info("psatest: resumption of a session that is not hibernating", "jid", sess.jid.String())
		return sm.Failed{Condition: "item-not-found", H: sess.sm.in, HasH: true}, nil
	}
	st := sess.sm
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	st.hibernating = false
	s.smAckLocked(sess, req.H)
	sess.c = c
	c.sess = sess
	sess.finished, sess.outClosed, sess.losing = false, false, false
	sess.wake = make(chan struct{}, 1)
	sess.quit = make(chan struct{})
	sess.writerDone = make(chan struct{})
	sess.queue = nil
	if toks, err := collect(req.TokenReader()); err == nil {
		// Recorded like what the client sends after negotiation.
		sess.stanzas = append(sess.stanzas, newStanza(toks))
		sess.taken = append(sess.taken, false)
	}
	for _, it := range st.queue {
		sess.enqueueLocked(it.data)
	}
	s.log.Info("psatest: session resumed", "jid", sess.jid.String(), "h", req.H, "resent", len(st.queue))
	s.notifyLocked()
	return sm.Resumed{PrevID: st.id, H: st.in}, sess
}

// smAckLocked drops what the client's h acknowledges.
func (s *Server) smAckLocked(sess *Session, h uint32) {
	st := sess.sm
	ahead, unacked := h-st.acked, st.out-st.acked
	if ahead == 0 || int32(ahead) < 0 {
		return
	}
	if ahead > unacked {
		s.log.Warn("psatest: the client acknowledged more than was sent", "jid", sess.jid.String(), "h", h, "sent", st.out)
		h = st.out
	}
	st.acked = h
	n := 0
	for n < len(st.queue) && int32(st.queue[n].seq-h) <= 0 {
		n++
	}
	st.queue = append([]smItem(nil), st.queue[n:]...)
}

// smHandleLocked counts a stanza received from the client, or handles a
// stream management element. It reports whether st was one.
func (s *Server) smHandleLocked(sess *Session, st Stanza) bool {
	start := st.toks[0].(xml.StartElement)
	if start.Name.Space != sm.NS {
		if sess.sm != nil && sm.IsStanza(st.Name) {
			sess.sm.in++
		}
		return false
	}
	el, err := sm.Decode(xmltok.NewReplayer(st.toks[1:]), start)
	if err != nil {
		s.log.Info("psatest: malformed stream management element", "jid", sess.jid.String(), "err", err)
		return true
	}
	switch e := el.(type) {
	case sm.Enable:
		if s.sm == nil || sess.sm != nil {
			sess.enqueueLocked(smBytes(sm.Failed{Condition: "unexpected-request"}))
			return true
		}
		st := &smSession{id: newID() + newID(), resumable: e.Resume}
		sess.sm = st
		ans := sm.Enabled{}
		if e.Resume {
			s.sm.byID[st.id] = sess
			ans = sm.Enabled{ID: st.id, Resume: true, Max: uint32(s.sm.hibernate / time.Second)}
		}
		sess.enqueueLocked(smBytes(ans))
	case sm.Request:
		if sess.sm != nil {
			sess.enqueueLocked(smBytes(sm.Ack{H: sess.sm.in}))
		}
	case sm.Ack:
		if sess.sm != nil {
			s.smAckLocked(sess, e.H)
		}
	}
	return true
}

// smSentLocked counts and keeps a stanza sent to sess. For a hibernating
// session it returns a finished item: the stanza waits for resumption.
func (sess *Session) smSentLocked(data []byte) *outItem {
	st := sess.sm
	if st == nil {
		return nil
	}
	st.out++
	if st.resumable {
		st.queue = append(st.queue, smItem{seq: st.out, data: data})
	}
	if st.hibernating {
		it := &outItem{data: data, done: make(chan struct{})}
		it.finish(nil)
		return it
	}
	return nil
}

// smHibernateLocked reports whether sess, whose connection ended without
// the end of its stream, hibernates instead of ending, and makes it so.
func (s *Server) smHibernateLocked(sess *Session) bool {
	st := sess.sm
	if st == nil || !st.resumable || sess.ended || s.closed {
		return false
	}
	st.hibernating = true
	if s.sm.hibernate > 0 {
		st.timer = time.AfterFunc(s.sm.hibernate, func() { sess.Expire() })
	}
	s.log.Info("psatest: session hibernating", "jid", sess.jid.String())
	return true
}

// smExpireAllLocked ends every hibernating session, for Close and Restart.
func (s *Server) smExpireAllLocked() {
	if s.sm == nil {
		return
	}
	for _, sess := range s.sm.byID {
		s.smExpireLocked(sess)
	}
}

func (s *Server) smExpireLocked(sess *Session) {
	st := sess.sm
	if st == nil || !st.hibernating {
		return
	}
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	st.hibernating = false
	s.log.Info("psatest: hibernation over", "jid", sess.jid.String())
	s.endLocked(sess, nil)
}

// Expire ends the session now if it hibernates (see WithStreamManagement),
// as when its hibernation time is over: its presence goes away and a later
// resumption fails. It does nothing to other sessions.
func (sess *Session) Expire() {
	s := sess.srv
	s.mu.Lock()
	s.smExpireLocked(sess)
	s.mu.Unlock()
}

// Hibernating reports whether the session waits for its client to resume
// it (see WithStreamManagement).
func (sess *Session) Hibernating() bool {
	sess.srv.mu.Lock()
	defer sess.srv.mu.Unlock()
	return sess.sm != nil && sess.sm.hibernating
}

// Unacknowledged returns how many stanzas the server sent on the session
// that its client has not acknowledged (0 without stream management).
func (sess *Session) Unacknowledged() int {
	sess.srv.mu.Lock()
	defer sess.srv.mu.Unlock()
	if sess.sm == nil {
		return 0
	}
	return int(sess.sm.out - sess.sm.acked)
}

// Handled returns how many stanzas the server counted from the session's
// client since it enabled stream management: the h of its <a/>.
func (sess *Session) Handled() uint32 {
	sess.srv.mu.Lock()
	defer sess.srv.mu.Unlock()
	if sess.sm == nil {
		return 0
	}
	return sess.sm.in
}

// RequestAck sends <r/> to the session's client. Its answer, <a h/>, is
// recorded like any element the client sends (Session.Next).
func (sess *Session) RequestAck(ctx context.Context) error {
	s := sess.srv
	s.mu.Lock()
	if sess.sm == nil || sess.ended {
		s.mu.Unlock()
		return ErrNoSession
	}
	it := sess.enqueueLocked(smBytes(sm.Request{}))
	s.mu.Unlock()
	return waitWritten(ctx, []*outItem{it})
}

func smBytes(e sm.Element) []byte {
	toks, err := collect(e.TokenReader())
	if err != nil {
		panic("psatest: encoding a stream management element: " + err.Error())
	}
	return encode(toks, "")
}

// LoseInput makes the server read and throw away everything the session's
// client sends from now on, unrecorded and uncounted, as a link that fails
// silently loses it, until the connection ends (Drop). With stream
// management the client's stanzas sent meanwhile stay unacknowledged: a
// resumption re-sends them, a failed one hands them back to the client's
// application.
func (sess *Session) LoseInput() {
	sess.srv.mu.Lock()
	sess.losing = true
	sess.srv.mu.Unlock()
}
