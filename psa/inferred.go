package psa

import (
	"time"

	"mellium.im/xmpp/jid"
)

// InferredResource is the resourcepart of the annotator of an inferred mark
// (see InferredMark). No annotation can carry such an annotator, since
// decoding accepts only bare domain JIDs, so an inferred mark never collides
// with a server's, and no empty annotation can remove one.
const InferredResource = "psakit-inferred"

// InferredBy returns the annotator of the marks psakit infers for domain:
// the domain's JID with InferredResource as its resourcepart. Only the zero
// JID, which has no domain, gives the zero JID.
func InferredBy(domain jid.JID) jid.JID {
	if domain.Domainpart() == "" {
		return jid.JID{}
	}
	by, err := domain.Domain().WithResource(InferredResource)
	if err != nil {
		return jid.JID{}
	}
	return by
}

// InferredMark returns the mark psakit sets on the entries of a remote
// domain when it finds, without any word from a server, that the domain is
// out of reach: its own server bounces what the client sends there, or the
// domain does not answer a ping. Its condition is ServerUnavailable, its
// annotator InferredBy(domain), and it has no description.
func InferredMark(domain jid.JID, now time.Time) Mark {
	return Mark{Condition: ServerUnavailable, By: InferredBy(domain), Since: now}
}

// Inferred reports whether m is a mark psakit inferred (InferredMark)
// rather than an annotator's word.
func (m Mark) Inferred() bool {
	return m.By.Localpart() == "" && m.By.Resourcepart() == InferredResource
}

// InferredDomain returns the domain an inferred mark is about; ok is false
// when m is not inferred.
func (m Mark) InferredDomain() (domain jid.JID, ok bool) {
	if !m.Inferred() {
		return jid.JID{}, false
	}
	return m.By.Domain(), true
}
