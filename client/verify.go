package client

import (
	"context"
	"encoding/xml"
	"errors"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
)

//go:generate go run golang.org/x/tools/cmd/stringer@v0.51.0 -type=VerifyPolicy -linecomment

// VerifyPolicy says what the client does when a mark clears with an empty
// annotation. The presence the model shows then is the one delivered before
// the outage, re-sent by the annotator: the contact may have changed it, or
// gone, in the meantime.
//
// The default, VerifyPing, asks the contact's resource directly: a cheap IQ
// whose answer tells a live session apart from a vanished or unreachable
// one. A client without XEP-0199 answers it with service-unavailable, as
// its server answers for a resource that is gone; only then a second IQ, a
// disco#info query (XEP-0030, which every client that sends caps answers),
// tells the two apart. VerifyProbe asks the server instead, whose answer
// (the current presence, or unavailable) then updates the model by itself;
// RFC 6121 §4.3 says clients SHOULD NOT send probes, and servers differ in
// what they do with them, so it is opt-in. Either way verifications are
// rate-limited (WithVerify), never sent while the account is disconnected,
// and reported through OnVerify; the model is only changed by the presence
// that answers a probe.
type VerifyPolicy uint8

// The restore policies.
const (
	// VerifyOff sends nothing.
	VerifyOff VerifyPolicy = iota // off
	// VerifyPing sends a XEP-0199 ping to the full JID.
	VerifyPing // ping
	// VerifyProbe sends a presence probe to the bare JID.
	VerifyProbe // probe
)

//go:generate go run golang.org/x/tools/cmd/stringer@v0.51.0 -type=VerifyOutcome -linecomment

// VerifyOutcome is what a verification found.
type VerifyOutcome uint8

// The outcomes.
const (
	// VerifyAlive: the resource answered: the ping (a result, or
	// feature-not-implemented from a client without ping support), or the
	// disco#info query that follows a ping answered service-unavailable.
	VerifyAlive VerifyOutcome = iota + 1 // alive
	// VerifyGone: the contact's server says the resource is not there:
	// item-not-found, recipient-unavailable or gone in answer to the ping,
	// or service-unavailable to both the ping and the disco#info query (a
	// client that implements neither would look the same, but a client that
	// advertises caps must answer disco#info).
	VerifyGone // gone
	// VerifyUnknown: no answer could be had (timeout, remote server
	// unreachable, another error).
	VerifyUnknown // unknown
	// VerifyProbed: the probe was sent; the answer arrives as presence.
	VerifyProbed // probed
)

// VerifyResult is the outcome of one verification.
type VerifyResult struct {
	JID     jid.JID // the full JID whose mark cleared
	Policy  VerifyPolicy
	Outcome VerifyOutcome
	Err     error // the error answer that decided, or the failure; nil when alive
}

const (
	maxPendingVerifications = 1024
	verifyTimeout           = 15 * time.Second
)

// verifier runs the restore policy on its own goroutine.
type verifier struct {
	t        *Tracker
	policy   VerifyPolicy
	interval time.Duration

	mu      sync.Mutex
	pending []jid.JID
	queued  map[string]struct{}

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
	// ctx ends on close: it bounds the verification in flight.
	ctx    context.Context
	cancel context.CancelFunc
}

func newVerifier(t *Tracker, policy VerifyPolicy, perSecond float64) *verifier {
	v := &verifier{
		t:        t,
		policy:   policy,
		interval: time.Duration(float64(time.Second) / perSecond),
		queued:   make(map[string]struct{}),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	if policy == VerifyOff {
		close(v.done)
		return v
	}
	go v.run()
	return v
}

// enqueue asks to verify j, unless it is already waiting or too many are.
func (v *verifier) enqueue(j jid.JID) {
	if v.policy == VerifyOff {
		return
	}
	key := j.String()
	v.mu.Lock()
	_, dup := v.queued[key]
	if !dup && len(v.pending) < maxPendingVerifications {
		v.pending = append(v.pending, j)
		v.queued[key] = struct{}{}
	}
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// reset forgets the pending verifications: the session they were for ended.
func (v *verifier) reset() {
	v.mu.Lock()
	v.pending = nil
	clear(v.queued)
	v.mu.Unlock()
}

func (v *verifier) close() {
	v.cancel()
	if v.policy != VerifyOff {
		close(v.quit)
	}
	<-v.done
}

func (v *verifier) next() (jid.JID, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.pending) == 0 {
		return jid.JID{}, false
	}
	j := v.pending[0]
	v.pending = v.pending[1:]
	delete(v.queued, j.String())
	return j, true
}

func (v *verifier) run() {
	defer close(v.done)
	ctx := v.ctx
	for {
		j, ok := v.next()
		if !ok {
			select {
			case <-v.wake:
				continue
			case <-v.quit:
				return
			}
		}
		if res, ok := v.check(ctx, j); ok {
			v.t.disp.pushVerify(res)
		}
		// The rate limit: one verification per interval.
		timer := time.NewTimer(v.interval)
		select {
		case <-timer.C:
		case <-v.quit:
			timer.Stop()
			return
		}
	}
}

// check verifies j on the current session; ok is false when there is none.
func (v *verifier) check(ctx context.Context, j jid.JID) (VerifyResult, bool) {
	s := v.t.session()
	if s == nil {
		return VerifyResult{}, false
	}
	res := VerifyResult{JID: j, Policy: v.policy}
	ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	switch v.policy {
	case VerifyProbe:
		res.Err = s.Send(ctx, stanza.Presence{To: j.Bare(), Type: stanza.ProbePresence}.Wrap(nil))
		res.Outcome = VerifyProbed
		if res.Err != nil {
			res.Outcome = VerifyUnknown
		}
	default:
		// mellium's ping.Send turns service-unavailable into nil: send the
		// IQ ourselves.
		err := s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: j}}.TokenReader(), nil)
		if condition(err) == stanza.ServiceUnavailable {
			// The resource's server, or a client without XEP-0199: ask what any
			// client answers.
			query := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: disco.NSInfo, Local: "query"}})
			err = s.UnmarshalIQ(ctx, stanza.IQ{Type: stanza.GetIQ, To: j}.Wrap(query), nil)
		}
		if c := condition(err); c == stanza.RemoteServerNotFound || c == stanza.RemoteServerTimeout {
			// Our own server may have lost the domain again: check it.
			v.t.remote.suspect(j.Domainpart())
		}
		res.Outcome, res.Err = verifyOutcome(err), err
		if res.Outcome == VerifyAlive {
			res.Err = nil
		}
	}
	return res, true
}

// condition returns the condition of a stanza error, "" for other errors.
func condition(err error) stanza.Condition {
	var se stanza.Error
	if errors.As(err, &se) {
		return se.Condition
	}
	return ""
}

// verifyOutcome is what the answer to the last IQ of a verification says.
func verifyOutcome(err error) VerifyOutcome {
	if err == nil {
		return VerifyAlive
	}
	switch condition(err) {
	case stanza.FeatureNotImplemented:
		return VerifyAlive
	case stanza.ServiceUnavailable, stanza.ItemNotFound, stanza.RecipientUnavailable, stanza.Gone:
		return VerifyGone
	}
	return VerifyUnknown
}
