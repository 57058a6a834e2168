package psatest

import (
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// request is an IQ the server sent to a client, waiting for its answer.
type request struct {
	sess *Session
	id   string
	ch   chan Stanza
	sent *outItem
}

// requestLocked sends an IQ of type typ with payload from the server to
// the session, with the attribute from ("" for none).
func (sess *Session) requestLocked(typ stanza.IQType, from string, payload []xml.Token) *request {
	req := &request{sess: sess, id: newID(), ch: make(chan Stanza, 1)}
	if sess.ended {
		close(req.ch)
	} else {
		sess.pending[req.id] = req.ch
	}
	req.sent = sess.sendLocked(el("", "iq", []xml.Attr{
		attr("type", string(typ)), attr("id", req.id),
		attr("from", from), attr("to", sess.jid.String()),
	}, payload))
	return req
}

// wait waits for the answer; an error answer is returned as a stanza.Error.
func (req *request) wait(ctx context.Context) (Stanza, error) {
	select {
	case st, ok := <-req.ch:
		if !ok {
			return Stanza{}, fmt.Errorf("%w: %s", ErrSessionClosed, req.sess.jid)
		}
		if st.Type == string(stanza.ErrorIQ) {
			return st, stanzaErr(st)
		}
		return st, nil
	case <-ctx.Done():
		s := req.sess.srv
		s.mu.Lock()
		delete(req.sess.pending, req.id)
		s.mu.Unlock()
		return Stanza{}, ctx.Err()
	}
}

// ask sends an IQ get with payload to the session full and waits for the
// answer.
func (s *Server) ask(ctx context.Context, full jid.JID, payload []xml.Token) (Stanza, error) {
	s.mu.Lock()
	if full.Resourcepart() == "" {
		s.mu.Unlock()
		return Stanza{}, fmt.Errorf("%w: %s is not a full JID", ErrNoSession, full)
	}
	targets, err := s.targetsLocked(full)
	if err != nil {
		s.mu.Unlock()
		return Stanza{}, err
	}
	req := targets[0].requestLocked(stanza.GetIQ, s.domain.String(), payload)
	s.mu.Unlock()
	return req.wait(ctx)
}

// DiscoInfo asks the session full for its service discovery information
// (XEP-0030) at node, as a peer checking its entity capabilities does (the
// node is then NODE#VER; check the answer with caps.Verify). An error answer
// is returned as a stanza.Error.
func (s *Server) DiscoInfo(ctx context.Context, full jid.JID, node string) (disco.Info, error) {
	st, err := s.ask(ctx, full, el(nsDiscoInfo, "query", []xml.Attr{attr("node", node)}))
	if err != nil {
		return disco.Info{}, err
	}
	var v struct {
		Info disco.Info `xml:"http://jabber.org/protocol/disco#info query"`
	}
	if err := st.Decode(&v); err != nil {
		return disco.Info{}, fmt.Errorf("psatest: decoding disco#info answer: %w", err)
	}
	return v.Info, nil
}

// Ping sends a XEP-0199 ping from the server to the session full, and
// returns nil when the client answers with a result, or the error answer as
// a stanza.Error.
func (s *Server) Ping(ctx context.Context, full jid.JID) error {
	_, err := s.ask(ctx, full, el(nsPing, "ping", nil))
	return err
}

// serverIQLocked answers a get or set addressed to the server (or to the
// account, which the server answers for).
func (s *Server) serverIQLocked(sess *Session, st Stanza) {
	payload := payloadName(st.toks)
	switch {
	case payload == xml.Name{Space: nsRoster, Local: "query"}:
		s.rosterIQLocked(sess, st)
	case payload == xml.Name{Space: nsPing, Local: "ping"} && st.Type == string(stanza.GetIQ):
		s.replyLocked(sess, st, nil)
	case payload == xml.Name{Space: nsDiscoInfo, Local: "query"} && st.Type == string(stanza.GetIQ) && !st.To.Equal(sess.jid.Bare()):
		if node := payloadAttr(st.toks, "node"); node != "" {
			s.replyErrorLocked(sess, st, stanza.ItemNotFound, "")
			return
		}
		s.replyLocked(sess, st, el(nsDiscoInfo, "query", nil,
			el("", "identity", []xml.Attr{attr("category", "server"), attr("type", "im"), attr("name", "psatest")}),
			feature(nsDiscoInfo), feature(nsDiscoItems), feature(nsRoster), feature(nsPing)))
	case payload == xml.Name{Space: nsDiscoItems, Local: "query"} && st.Type == string(stanza.GetIQ) && !st.To.Equal(sess.jid.Bare()):
		var items [][]xml.Token
		if s.mucDomain.String() != "" {
			items = append(items, el("", "item", []xml.Attr{attr("jid", s.mucDomain.String())}))
		}
		s.replyLocked(sess, st, el(nsDiscoItems, "query", nil, items...))
	default:
		s.replyErrorLocked(sess, st, stanza.ServiceUnavailable, "")
	}
}

// replyLocked answers the request st with a result carrying payload, from
// the JID it was sent to.
func (s *Server) replyLocked(sess *Session, st Stanza, payload []xml.Token) {
	sess.sendLocked(el("", "iq", []xml.Attr{
		attr("type", "result"), attr("id", st.ID),
		attr("from", attrValue(st.Attr, "to")), attr("to", sess.jid.String()),
	}, payload))
}

// replyErrorLocked answers the request st with an error of condition cond,
// and type typ (the usual one for cond when "").
func (s *Server) replyErrorLocked(sess *Session, st Stanza, cond stanza.Condition, typ stanza.ErrorType) {
	sess.sendLocked(el("", st.Name, []xml.Attr{
		attr("type", "error"), attr("id", st.ID),
		attr("from", attrValue(st.Attr, "to")), attr("to", sess.jid.String()),
	}, errorEl(cond, typ, "")))
}
