package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/reach"
	"github.com/psakit/psakit/internal/xmltok"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

// DefaultRemoteCheck is the interval of the remote checks, which are on
// unless WithRemoteCheck(0) turns them off: a remote domain with available
// contacts or rooms is pinged about every five minutes. At that interval a
// domain costs about 11 pings an hour (one every 5 to 6¼ minutes, with the
// jitter), a few hundred bytes a minute even for a hundred domains, and an
// outage nobody tells the client about is noticed within about 6¾ minutes
// (the interval, its jitter and RemoteCheckTimeout) instead of never:
// Prosody 0.12 notices a silently broken server-to-server link only at its
// 14-minute read timeout, and a server without XEP-0310 never tells its
// clients at all. A bounce of anything the client sends brings the check
// forward, so an outage the user runs into is noticed at once.
const DefaultRemoteCheck = reach.DefaultInterval

// RemoteCheckTimeout is how long a check of a remote domain may go
// unanswered before the domain counts as unreachable: 30 s, well under the
// time servers give an unanswered server-to-server connection before they
// bounce (Prosody's s2s_timeout is 90 s), so that a blackholed link is
// noticed within the interval plus 30 s.
const RemoteCheckTimeout = reach.DefaultTimeout

// remoteChecker is a Tracker's link to its reach.Runner: it counts the
// domains of the models' entries, passes bounces and verdicts on, and
// applies the Runner's marks to the models.
type remoteChecker struct {
	t    *Tracker
	r    *reach.Runner // nil when the checks are off
	sent sentLog

	mu sync.Mutex
	// rooms holds the rooms we are in, by bare JID, and their domain.
	rooms map[string]string
}

func newRemoteChecker(t *Tracker, interval time.Duration) *remoteChecker {
	rc := &remoteChecker{t: t, rooms: make(map[string]string)}
	if interval <= 0 {
		return rc
	}
	own := t.roster.Account().Domainpart()
	rc.r = reach.NewRunner(reach.Config{Interval: interval, Timeout: t.cfg.remoteTimeout}, own, rc.check, rc.apply)
	return rc
}

func (rc *remoteChecker) close() {
	if rc.r != nil {
		rc.r.Close()
	}
}

func (rc *remoteChecker) sessionStarted() {
	if rc.r != nil {
		rc.r.StreamUp()
	}
}

func (rc *remoteChecker) sessionEnded() {
	if rc.r != nil {
		rc.r.StreamDown()
	}
}

// rosterEvents counts the resources that come and go, and notes new
// deliveries from a domain.
func (rc *remoteChecker) rosterEvents(evs []roster.Event) {
	if rc.r == nil {
		return
	}
	for i := range evs {
		e := &evs[i]
		d := e.JID.Domainpart()
		switch e.Kind {
		case roster.EventAvailable:
			rc.r.Add(d, 1)
		case roster.EventUnavailable:
			rc.r.Add(d, -1)
		}
		switch e.Kind {
		case roster.EventAvailable, roster.EventUpdated:
			if !e.Resent {
				rc.r.Heard(d)
			}
		}
	}
}

// roomEvents counts the rooms we are in: after each event, the model says
// whether we are still in its room.
func (rc *remoteChecker) roomEvents(evs []mucwatch.Event) {
	if rc.r == nil {
		return
	}
	for i := range evs {
		e := &evs[i]
		if e.Room.Domainpart() == "" {
			continue
		}
		switch e.Kind {
		case mucwatch.EventOccupantAvailable, mucwatch.EventOccupantUpdated:
			if !e.Resent {
				rc.r.Heard(e.Room.Domainpart())
			}
		}
		key := e.Room.String()
		room, ok := rc.t.rooms.Room(e.Room)
		in := ok && room.Joined()
		rc.mu.Lock()
		_, was := rc.rooms[key]
		switch {
		case in && !was:
			rc.rooms[key] = e.Room.Domainpart()
			rc.r.Add(e.Room.Domainpart(), 1)
		case !in && was:
			delete(rc.rooms, key)
			rc.r.Add(e.Room.Domainpart(), -1)
		}
		rc.mu.Unlock()
	}
}

// bounced acts on the error e that answered a message or IQ request the
// client sent to to: when it says that our own server cannot reach to's
// domain (reach.ClassifyBounce), the domain is marked at once and checked
// soon (reach.Runner.Bounced). An error that a room relays from one of its
// occupants (to is an occupant JID of a room we track) may be about the
// occupant's own server, not the room's: it only makes the room's service
// suspect.
func (rc *remoteChecker) bounced(to jid.JID, e stanza.Error) {
	d, ok := reach.ClassifyBounce(to, e, rc.t.roster.Account())
	if !ok {
		return
	}
	rc.t.log.Debug("bounce from our own server", "to", to.String(), "condition", string(e.Condition))
	if to.Resourcepart() != "" && rc.t.rooms.Tracks(to.Bare()) {
		rc.r.Suspect(d.Domainpart())
		return
	}
	rc.r.Bounced(d.Domainpart())
}

// bounce passes an error presence from from on: a remote-server error from
// our own server makes its domain suspect. Presence carries no id the
// client chose, so anyone on that domain could send it: it is never more
// than a reason to check.
func (rc *remoteChecker) bounce(from jid.JID, e stanza.Error) {
	if rc.r == nil {
		return
	}
	if d, ok := reach.ClassifyBounce(from, e, rc.t.roster.Account()); ok {
		rc.r.Suspect(d.Domainpart())
	}
}

// suspect makes domain suspect: a verification's ping bounced.
func (rc *remoteChecker) suspect(domain string) {
	if rc.r != nil {
		rc.r.Suspect(domain)
	}
}

// selfPinged makes a room's service suspect when a self-ping could not
// decide.
func (rc *remoteChecker) selfPinged(room jid.JID, v mucwatch.Verdict) {
	if rc.r != nil && v == mucwatch.VerdictUndecided {
		rc.r.Suspect(room.Domainpart())
	}
}

// check pings domain on the current session and classifies the answer.
func (rc *remoteChecker) check(ctx context.Context, domain string) reach.Verdict {
	s := rc.t.session()
	to, err := jid.Parse(domain)
	if s == nil || err != nil {
		return reach.Undecided
	}
	resp, err := s.SendIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: to}}.TokenReader())
	if err != nil {
		return reach.Undecided
	}
	defer resp.Close()
	from, se, err := readAnswer(resp)
	if err != nil {
		rc.t.log.Debug("unreadable answer to a remote check", "domain", domain, "err", err)
		return reach.Undecided
	}
	v := reach.ClassifyPing(from, se, to, rc.t.roster.Account())
	rc.t.log.Debug("remote check", "domain", domain, "verdict", v.String())
	return v
}

var errNotIQ = errors.New("client: the answer is not an IQ")

// readAnswer reads an IQ answer: its from and, for type error, its error.
func readAnswer(r xml.TokenReader) (from jid.JID, se *stanza.Error, err error) {
	d := xml.NewTokenDecoder(r)
	tok, err := d.Token()
	if err != nil {
		return jid.JID{}, nil, err
	}
	start, ok := tok.(xml.StartElement)
	if !ok || start.Name.Local != "iq" {
		return jid.JID{}, nil, errNotIQ
	}
	var typ string
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "from":
			if from, err = jid.Parse(a.Value); err != nil {
				return jid.JID{}, nil, err
			}
		case "type":
			typ = a.Value
		}
	}
	if typ != string(stanza.ErrorIQ) {
		return from, nil, nil
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return from, nil, err
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "error" {
			var e stanza.Error
			if err := d.DecodeElement(&e, &el); err != nil {
				return from, nil, err
			}
			return from, &e, nil
		}
	}
}

// apply carries out the Runner's marks on the models.
func (rc *remoteChecker) apply(a reach.Action) {
	domain, err := jid.Parse(a.Domain)
	if err != nil {
		return
	}
	t := rc.t
	switch a.Kind {
	case reach.ActMark:
		t.log.Info("remote domain unreachable", "domain", a.Domain)
		evs, omitted := t.roster.MarkUnreachable(domain, t.cfg.queueBytes)
		t.disp.pushRoster(evs)
		t.disp.omit(kindRoster, omitted)
		revs, omitted := t.rooms.MarkUnreachable(domain, t.cfg.queueBytes)
		t.disp.pushRoom(revs)
		t.disp.omit(kindRoom, omitted)
	case reach.ActClear:
		t.log.Info("remote domain reachable again", "domain", a.Domain)
		evs, omitted := t.roster.ClearUnreachable(domain, t.cfg.queueBytes)
		t.disp.pushRoster(evs)
		t.disp.omit(kindRoster, omitted)
		for i := range evs {
			if evs[i].Fresh() {
				t.verify.enqueue(evs[i].JID)
			}
		}
		revs, omitted := t.rooms.ClearUnreachable(domain, t.cfg.queueBytes)
		// The room policy self-pings the rooms that are no longer stale.
		t.applyRoomEvents(revs)
		t.disp.omit(kindRoom, omitted)
	case reach.ActVerify:
		// Done with ActClear: the roster's restored resources were queued for
		// the restore policy, the rooms' for a self-ping.
	}
}

const (
	// maxSent bounds the stanzas remembered for matching bounces; the
	// oldest are forgotten first.
	maxSent = 512
	// sentTTL is how long a stanza is remembered: a bounce comes at once
	// for a refused connection, within Prosody's s2s_timeout (90 s) for an
	// unanswered one, or after Prosody 13's acknowledgement timeout.
	sentTTL = 3 * time.Minute
)

// sentStanza is a message or IQ request the client sent to a remote entity.
type sentStanza struct {
	id string
	to jid.JID
	at time.Time
}

// sentLog remembers the messages and IQ requests the client sent to remote
// entities, by id, so that an error is taken for a bounce only when it
// answers one of them, from the JID it was sent to. It holds at most
// maxSent stanzas, none older than sentTTL.
type sentLog struct {
	mu   sync.Mutex
	byID map[string]sentStanza
	// order holds what was added, oldest first, including stanzas taken or
	// replaced (an id used twice) since: at most 2 × maxSent.
	order []sentStanza
}

func (l *sentLog) add(s sentStanza) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = make(map[string]sentStanza)
	}
	for len(l.order) > 0 {
		head := l.order[0]
		cur, live := l.byID[head.id]
		live = live && cur.at.Equal(head.at) && cur.to.Equal(head.to)
		if live && len(l.byID) < maxSent && len(l.order) < 2*maxSent && s.at.Sub(head.at) < sentTTL {
			break
		}
		if live {
			delete(l.byID, head.id)
		}
		l.order = l.order[1:]
	}
	l.byID[s.id] = s
	l.order = append(l.order, s)
}

// take returns the stanza with id when from is the JID it was sent to, and
// forgets it: one stanza gets one bounce.
func (l *sentLog) take(id string, from jid.JID, now time.Time) (sentStanza, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.byID[id]
	if !ok || !s.to.Equal(from) || now.Sub(s.at) >= sentTTL {
		return sentStanza{}, false
	}
	delete(l.byID, id)
	return s, true
}

// outgoing returns r, a stanza the client or the application sends, noting
// it when it is a message or an IQ request to a remote entity: one without
// an id gets a random one, so that its bounce can be told apart from an
// error anyone else sends.
func (rc *remoteChecker) outgoing(r xml.TokenReader) xml.TokenReader {
	if rc.r == nil {
		return r
	}
	return &noteReader{r: r, rc: rc}
}

// noteReader passes a stanza on, looking at its start element first.
type noteReader struct {
	r    xml.TokenReader
	rc   *remoteChecker
	seen bool
}

func (n *noteReader) Token() (xml.Token, error) {
	tok, err := n.r.Token()
	if n.seen || tok == nil {
		return tok, err
	}
	n.seen = true
	if start, ok := tok.(xml.StartElement); ok {
		tok = n.rc.note(start)
	}
	return tok, err
}

// note records start when it begins a message or IQ request to a remote
// entity, and returns it with an id.
func (rc *remoteChecker) note(start xml.StartElement) xml.StartElement {
	if start.Name.Space != "" && start.Name.Space != stanza.NSClient {
		return start
	}
	typ, _ := xmltok.Attr(start, "type")
	switch start.Name.Local {
	case "message":
		if typ == string(stanza.ErrorMessage) {
			return start
		}
	case "iq":
		if typ != string(stanza.GetIQ) && typ != string(stanza.SetIQ) {
			return start
		}
	default:
		return start
	}
	toAttr, _ := xmltok.Attr(start, "to")
	to, err := jid.Parse(toAttr)
	if err != nil || to.Domainpart() == "" || to.Domainpart() == rc.t.roster.Account().Domainpart() {
		return start
	}
	id, _ := xmltok.Attr(start, "id")
	if id == "" {
		id = randomID()
		attrs := make([]xml.Attr, 0, len(start.Attr)+1)
		for _, a := range start.Attr {
			if a.Name.Local != "id" || a.Name.Space != "" {
				attrs = append(attrs, a)
			}
		}
		start.Attr = append(attrs, xml.Attr{Name: xml.Name{Local: "id"}, Value: id})
	}
	rc.sent.add(sentStanza{id: id, to: to, at: time.Now()})
	return start
}

// randomID returns 16 hex digits from the operating system's random
// source: a remote entity that never saw our stanza cannot guess its id.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// answer looks at a message or IQ of type error that arrived: when it
// answers a stanza the client sent (its id, from the JID the stanza went
// to), the error is read and acted on, and the stanza is replayed to the
// caller in r's place. Anything else is returned as it is.
func (rc *remoteChecker) answer(r xmlstream.TokenReadEncoder, start *xml.StartElement) (xmlstream.TokenReadEncoder, error) {
	if rc.r == nil || (start.Name.Local != "message" && start.Name.Local != "iq") {
		return r, nil
	}
	if typ, _ := xmltok.Attr(*start, "type"); typ != "error" {
		return r, nil
	}
	id, _ := xmltok.Attr(*start, "id")
	fromAttr, _ := xmltok.Attr(*start, "from")
	from, err := jid.Parse(fromAttr)
	if id == "" || err != nil {
		return r, nil
	}
	sent, ok := rc.sent.take(id, from, time.Now())
	if !ok {
		return r, nil
	}
	toks, err := xmlstream.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var se *stanza.Error
	replay := xmltok.NewReplayer(toks)
	_ = xmltok.Children(replay, func(el xml.StartElement) error {
		if el.Name.Local != "error" || se != nil {
			return xmltok.Skip(replay)
		}
		e, err := decodeStanzaError(replay, el)
		if by, ok := xmltok.Attr(el, "by"); ok {
			e.By, _ = jid.Parse(by)
		}
		se = &e
		return err
	})
	if se != nil {
		rc.bounced(sent.to, *se)
	}
	return struct {
		xml.TokenReader
		xmlstream.Encoder
	}{xmltok.NewReplayer(toks), r}, nil
}
