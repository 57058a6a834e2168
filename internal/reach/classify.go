package reach

import (
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// What servers send when they cannot reach a remote domain, which the
// classification below relies on:
//
//   - Prosody 0.12 bounces the stanzas queued for a failed server-to-server
//     connection with remote-server-not-found (the remote never opened a
//     stream) or remote-server-timeout, from the original recipient, with
//     by set to its own domain. Prosody 13 does the same without by.
//   - Prosody 13 also bounces the stanzas a server-to-server link did not
//     acknowledge before it closed as recipient-unavailable, by its own
//     domain.
//   - ejabberd bounces with remote-server-not-found or remote-server-timeout
//     from the original recipient, without by.
//   - Prosody leaves by out when it equals from: a domain answering for
//     itself usually sends no by at all.
//
// A stanza from a remote domain reaches the client only through our own
// server, which accepts it from a server-to-server link only when the link
// is authenticated for that domain. So an answer from D is either D's own
// or our server's; a third server cannot forge one.

// generator says who generated an error, by its by attribute.
type generator uint8

const (
	genUnknown generator = iota // no by
	genOurs                     // our own server's domain
	genTarget                   // a JID at the domain the stanza went to
	genThird                    // anyone else
)

func generatedBy(by, target, own jid.JID) generator {
	switch {
	case by.Equal(jid.JID{}):
		return genUnknown
	case by.Localpart() == "" && by.Domainpart() == own.Domainpart():
		return genOurs
	case by.Domainpart() == target.Domainpart():
		return genTarget
	}
	return genThird
}

func remoteServerError(c stanza.Condition) bool {
	return c == stanza.RemoteServerNotFound || c == stanza.RemoteServerTimeout
}

// ClassifyPing returns the verdict of the answer to a check: a XEP-0199
// ping that an account on server own (its domain) sent to domain, a bare
// domain JID. from is the answer's from; e is its error, nil for a result.
//
//   - A result from domain: Reachable.
//   - remote-server-not-found or remote-server-timeout from our own server
//     (by our domain, or no by): Unreachable. Relayed by anyone else:
//     Undecided.
//   - recipient-unavailable by our own domain (Prosody 13 giving up on an
//     unacknowledged link): Unreachable.
//   - Any other error from domain that our own server did not generate
//     (service-unavailable, feature-not-implemented...): Reachable, since
//     the domain, or something behind its link, answered. One our own
//     server generated (not-allowed when it does not federate, a full
//     queue): Undecided.
//   - An answer from anyone but domain, or without from unless it is our
//     server's bounce: Undecided.
func ClassifyPing(from jid.JID, e *stanza.Error, domain, own jid.JID) Verdict {
	fromDomain := from.Equal(domain)
	if e == nil {
		if fromDomain {
			return Reachable
		}
		return Undecided
	}
	if !fromDomain && !from.Equal(jid.JID{}) {
		return Undecided
	}
	gen := generatedBy(e.By, domain, own)
	switch {
	case remoteServerError(e.Condition):
		if gen == genOurs || gen == genUnknown {
			return Unreachable
		}
		return Undecided
	case e.Condition == stanza.RecipientUnavailable && gen == genOurs:
		return Unreachable
	case gen == genOurs || !fromDomain:
		return Undecided
	}
	return Reachable
}

// ClassifyBounce reports whether an error stanza that an account on server
// own received says that our own server could not reach the sender's
// domain: remote-server-not-found or remote-server-timeout by our own
// domain or without by, or recipient-unavailable by our own domain, from a
// JID on another domain than own. It returns that domain.
//
// Who may have sent it is the caller's question. An error that answers a
// stanza the client sent (by its id, which the client chose at random) and
// comes from the JID that stanza went to can only be our own server's, or
// the domain's speaking of itself, which harms only its own entries: the
// client marks the domain at once (Machine.Bounced) and checks it soon,
// since the bounce may concern a link that has come back since. Any other
// error (a presence bounce, which carries no id of ours) is only a reason
// to check the domain (Machine.Suspect): anyone on that domain can send it.
func ClassifyBounce(from jid.JID, e stanza.Error, own jid.JID) (domain jid.JID, ok bool) {
	if from.Equal(jid.JID{}) || from.Domainpart() == own.Domainpart() {
		return jid.JID{}, false
	}
	domain = from.Domain()
	switch gen := generatedBy(e.By, domain, own); {
	case remoteServerError(e.Condition) && (gen == genOurs || gen == genUnknown),
		e.Condition == stanza.RecipientUnavailable && gen == genOurs:
		return domain, true
	}
	return jid.JID{}, false
}
