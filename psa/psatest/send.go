package psatest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/psa"
)

// SendRaw writes raw to the stream of the session to (a full JID), or of
// every session of the user to (a bare JID), exactly as given: nothing is
// checked or added, so raw may be any text, hostile or malformed included
// (a malformed stream makes the client end it). It returns once raw is
// written, or ErrNoSession when there is no such session.
//
// When raw is a well-formed presence with a from attribute, the server
// remembers it as delivered, as with SendPresence, for Annotate.
func (s *Server) SendRaw(ctx context.Context, to jid.JID, raw string) error {
	toks, perr := parseElement(raw)
	s.mu.Lock()
	targets, err := s.targetsLocked(to)
	var items []*outItem
	for _, sess := range targets {
		if perr == nil {
			sess.rememberLocked(toks)
		}
		s.log.Debug("psatest: sent raw", "jid", sess.jid.String(), "xml", raw)
		items = append(items, sess.enqueueLocked([]byte(raw)))
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return waitWritten(ctx, items)
}

// Presence describes a presence stanza for SendPresence.
type Presence struct {
	// From is the sender, usually a contact's full JID. It is required.
	From jid.JID
	// Type is the presence type; the zero value is available presence.
	Type stanza.PresenceType
	// Show and Status are the RFC 6121 children, left out when empty.
	Show, Status string
	// Annotations are XEP-0310 state annotations to include. An annotation
	// with a zero From gets the server's domain.
	Annotations []psa.Annotation
	// Delay, when not zero, adds a XEP-0203 delay element with this stamp.
	Delay time.Time
	// Extra is raw XML added as further children, such as a <c/> element.
	// It must be well-formed.
	Extra string
}

// tokens builds the presence to the session to, with the server's domain
// as the default annotator.
func (p Presence) tokens(to, domain jid.JID) ([]xml.Token, error) {
	if p.From.String() == "" {
		return nil, errors.New("psatest: Presence.From is required")
	}
	var children [][]xml.Token
	if p.Show != "" {
		children = append(children, textEl("show", p.Show))
	}
	if p.Status != "" {
		children = append(children, textEl("status", p.Status))
	}
	if p.Extra != "" {
		extra, err := parseChildren(p.Extra)
		if err != nil {
			return nil, fmt.Errorf("psatest: Presence.Extra: %w", err)
		}
		children = append(children, extra)
	}
	if !p.Delay.IsZero() {
		children = append(children, el(nsDelay, "delay", []xml.Attr{
			attr("from", domain.String()),
			attr("stamp", p.Delay.UTC().Format("2006-01-02T15:04:05.999999999Z")),
		}))
	}
	for _, a := range p.Annotations {
		toks, err := annotationTokens(a, domain)
		if err != nil {
			return nil, err
		}
		children = append(children, toks)
	}
	return el("", "presence", []xml.Attr{
		attr("from", p.From.String()), attr("to", to.String()), attr("type", string(p.Type)),
	}, children...), nil
}

// annotationTokens returns the tokens of a, with annotator def when a.From
// is zero.
func annotationTokens(a psa.Annotation, def jid.JID) ([]xml.Token, error) {
	if a.From.String() == "" {
		a.From = def
	}
	toks, err := collect(a.TokenReader())
	if err != nil {
		return nil, fmt.Errorf("psatest: annotation: %w", err)
	}
	return toks, nil
}

// SendPresence sends the presence p to the session to (a full JID), or to
// every session of the user to (a bare JID), with to set to each session's
// full JID. It returns once the presence is written, or ErrNoSession when
// there is no such session.
func (s *Server) SendPresence(ctx context.Context, to jid.JID, p Presence) error {
	s.mu.Lock()
	targets, err := s.targetsLocked(to)
	var items []*outItem
	for _, sess := range targets {
		var toks []xml.Token
		toks, err = p.tokens(sess.jid, s.domain)
		if err != nil {
			break
		}
		items = append(items, sess.sendLocked(toks))
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return waitWritten(ctx, items)
}

// Annotate does what a XEP-0310 server does when it can no longer deliver
// presence updates from from: it re-sends to the session to (full JID), or
// to each session of the user to (bare JID), the last available presence it
// delivered there from from, with the annotation ann added. ann.From, the
// annotator, defaults to the server's domain; an annotation with no
// Condition says the link is back.
//
// from may be a full JID (one sender), a bare JID (every resource of that
// entity), or a domain JID (every sender at that domain, such as a remote
// server whose link is down). Presences from any source count: SendRaw,
// SendPresence, SetContactPresence, room occupants. Annotations on the
// remembered presence are replaced, not accumulated.
//
// It returns ErrNoPresence when no such presence was delivered (or it was
// followed by unavailable presence), and ErrNoSession when to has no session.
func (s *Server) Annotate(ctx context.Context, to, from jid.JID, ann psa.Annotation) error {
	annToks, err := annotationTokens(ann, s.domain)
	if err != nil {
		return err
	}
	s.mu.Lock()
	targets, err := s.targetsLocked(to)
	var items []*outItem
	for _, sess := range targets {
		senders := make([]string, 0, len(sess.delivered))
		for key := range sess.delivered {
			sender, _ := jid.Parse(key)
			if matchSender(sender, from) {
				senders = append(senders, key)
			}
		}
		sort.Strings(senders)
		for _, key := range senders {
			base := sess.delivered[key]
			toks := append(append(append([]xml.Token(nil), base[:len(base)-1]...), annToks...), base[len(base)-1])
			items = append(items, sess.sendLocked(toks))
		}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return fmt.Errorf("%w: from %s to %s", ErrNoPresence, from, to)
	}
	return waitWritten(ctx, items)
}

// waitWritten waits until every item is written, and returns the first
// error.
func waitWritten(ctx context.Context, items []*outItem) error {
	var first error
	for _, it := range items {
		select {
		case <-it.done:
			if it.err != nil && first == nil {
				first = it.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

// outItem is one write to the session's connection.
type outItem struct {
	data []byte
	done chan struct{}
	err  error // set before done is closed
}

func (it *outItem) finish(err error) {
	it.err = err
	close(it.done)
}

// enqueueLocked queues data for the writer goroutine. The returned item is
// done when data is written, or failed with ErrSessionClosed if the stream
// is already closed.
func (sess *Session) enqueueLocked(data []byte) *outItem {
	it := &outItem{data: data, done: make(chan struct{})}
	if sess.outClosed {
		it.finish(ErrSessionClosed)
		return it
	}
	sess.queue = append(sess.queue, it)
	select {
	case sess.wake <- struct{}{}:
	default:
	}
	return it
}

// failQueueLocked closes the output and fails what is queued, for a
// session whose writer never started.
func (sess *Session) failQueueLocked() {
	sess.outClosed = true
	for _, it := range sess.queue {
		it.finish(ErrSessionClosed)
	}
	sess.queue = nil
}

// sendLocked writes the stanza toks to the session, and remembers the
// presences it delivers, for Annotate.
func (sess *Session) sendLocked(toks []xml.Token) *outItem {
	sess.rememberLocked(toks)
	data := encode(toks, nsClient)
	sess.srv.log.Debug("psatest: sent", "jid", sess.jid.String(), "xml", string(data))
	if it := sess.smSentLocked(data); it != nil {
		return it
	}
	return sess.enqueueLocked(data)
}

// rememberLocked records the last available presence delivered from each
// sender, without its annotations: the presence a XEP-0310 server re-sends
// with an annotation.
func (sess *Session) rememberLocked(toks []xml.Token) {
	start, ok := toks[0].(xml.StartElement)
	if !ok || start.Name.Local != "presence" || (start.Name.Space != "" && start.Name.Space != nsClient) {
		return
	}
	from, err := jid.Parse(attrValue(start.Attr, "from"))
	if err != nil || from.String() == "" {
		return
	}
	switch attrValue(start.Attr, "type") {
	case "":
		sess.delivered[from.String()] = filterChildren(toks, isAnnotation)
	case "unavailable":
		delete(sess.delivered, from.String())
	}
}

func isAnnotation(start xml.StartElement) bool {
	return start.Name.Space == psa.NS && start.Name.Local == "state-annotation"
}

// writeLoop writes queued items until the read loop has ended.
func (sess *Session) writeLoop() {
	s := sess.srv
	defer s.wg.Done()
	defer close(sess.writerDone)
	var werr error
	for {
		s.mu.Lock()
		q := sess.queue
		sess.queue = nil
		s.mu.Unlock()
		if len(q) == 0 {
			select {
			case <-sess.wake:
				continue
			case <-sess.quit:
			}
			s.mu.Lock()
			sess.outClosed = true
			q = sess.queue
			sess.queue = nil
			s.mu.Unlock()
			for _, it := range q {
				it.finish(ErrSessionClosed)
			}
			return
		}
		for _, it := range q {
			if werr != nil {
				it.finish(ErrSessionClosed)
				continue
			}
			if _, werr = sess.out.Write(it.data); werr != nil {
				s.log.Info("psatest: write failed", "jid", sess.jid.String(), "err", werr)
				sess.c.raw.Close() // ends the read loop
				it.finish(ErrSessionClosed)
				continue
			}
			it.finish(nil)
		}
	}
}
