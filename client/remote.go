package client

import (
	"context"
	"encoding/xml"
	"errors"
	"sync"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/reach"
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

// WithRemoteCheck sets how often the client checks, by itself, that the
// remote domains it depends on are in reach, for servers that do not
// annotate presence (XEP-0310). The checks are on by default, every
// DefaultRemoteCheck; interval <= 0 turns them off.
//
// Every interval, plus up to a quarter of it at random, the client pings
// each remote domain that has available contacts or rooms the account sits
// in (XEP-0199). The jitter keeps the checks of many domains, and of many
// clients that reconnect together after their server restarts, from coming
// in step; the first check of a domain comes at a random time within its
// first interval, so that logging in with contacts on hundreds of domains
// sends no burst. A domain is also checked at once when our own server
// bounces something the client or the application sent there
// (remote-server-not-found, remote-server-timeout, recipient-unavailable),
// or a room's self-ping cannot decide. A domain that answers, with a result
// or an error of its own, is reachable; a remote-server error from our own
// server, or no answer within RemoteCheckTimeout, makes it unreachable:
// every contact's resource and every room on it then carries
// psa.InferredMark (condition server-unavailable, annotator
// DOMAIN/psakit-inferred, Mark.Inferred reports it) until a check succeeds
// again, when the mark goes and the restore policy verifies the entries.
//
// While a domain stays unreachable the checks back off, doubling up to four
// intervals: ejabberd bounces at once for 1–300 s after a failed
// server-to-server attempt (its s2s_max_retry_delay), so checks closer than
// that learn nothing, and Prosody tries the link again with every stanza,
// waiting up to its s2s_timeout (90 s) on a connection that is not
// answered. All checks together are rate-limited (4 a second), none is sent
// while the client's own stream is down, and a domain with nothing
// available is never pinged.
//
// Inferred marks and a server's annotations live side by side, one mark
// per annotator: a server running mod_psa marks an entry with its own
// domain as annotator, psakit with DOMAIN/psakit-inferred, and an entry is
// fresh only when it carries neither. Turn the checks off when the account's
// server annotates presence and its word is enough, when every ping to a
// remote domain costs (a metered link, a server that rate-limits IQs
// harshly), or when a remote server leaves IQs unanswered (RFC 6120
// forbids it, but such a domain would look unreachable).
func WithRemoteCheck(interval time.Duration) Option {
	return func(c *config) { c.remoteCheck = interval }
}

// remoteChecker is a Tracker's link to its reach.Runner: it counts the
// domains of the models' entries, passes bounces and verdicts on, and
// applies the Runner's marks to the models.
type remoteChecker struct {
	t *Tracker
	r *reach.Runner // nil when the checks are off

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

// bounce passes an error stanza from from on: a remote-server error from
// our own server makes its domain suspect.
func (rc *remoteChecker) bounce(from jid.JID, e stanza.Error) {
	if rc.r == nil {
		return
	}
	if d, ok := reach.ClassifyBounce(from, e, rc.t.roster.Account()); ok {
		rc.r.Suspect(d.Domainpart())
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
		rc.t.log.Debug("psakit: unreadable answer to a remote check", "domain", domain, "err", err)
		return reach.Undecided
	}
	v := reach.ClassifyPing(from, se, to, rc.t.roster.Account())
	rc.t.log.Debug("psakit: remote check", "domain", domain, "verdict", v.String())
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
		t.log.Info("psakit: remote domain unreachable", "domain", a.Domain)
		evs, omitted := t.roster.MarkUnreachable(domain, t.cfg.queueBytes)
		t.disp.pushRoster(evs)
		t.disp.omit(kindRoster, omitted)
		revs, omitted := t.rooms.MarkUnreachable(domain, t.cfg.queueBytes)
		t.disp.pushRoom(revs)
		t.disp.omit(kindRoom, omitted)
	case reach.ActClear:
		t.log.Info("psakit: remote domain reachable again", "domain", a.Domain)
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
