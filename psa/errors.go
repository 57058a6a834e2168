package psa

import (
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
)

// Errors returned while decoding an annotation. They are wrapped with details;
// match them with errors.Is. Every one of them also matches ErrMalformed, which
// tells a bad annotation apart from a failing token stream.
var (
	// ErrMalformed matches every error about the annotation element itself.
	ErrMalformed = errors.New("psa: malformed state-annotation")
	// ErrNotAnnotation: the element is not a state-annotation in the psa
	// namespace.
	ErrNotAnnotation = fmt.Errorf("%w: not a state-annotation element in the urn:xmpp:psa namespace", ErrMalformed)
	// ErrNoFrom: the annotation has no from attribute, or an empty one. The
	// XEP requires it: without an annotator no one can clear the mark later.
	ErrNoFrom = fmt.Errorf("%w: no from attribute", ErrMalformed)
	// ErrInvalidFrom: from is not a valid JID, or not a bare domain JID.
	ErrInvalidFrom = fmt.Errorf("%w: from is not a bare domain JID", ErrMalformed)
	// ErrMultipleConditions: more than one condition element.
	ErrMultipleConditions = fmt.Errorf("%w: more than one condition", ErrMalformed)
	// ErrInvalidCondition: a condition element name longer than MaxConditionLen.
	ErrInvalidCondition = fmt.Errorf("%w: invalid condition element", ErrMalformed)
	// ErrUntrusted: the annotator may not speak about this presence (see
	// CheckTrust). The error returned is a *TrustError.
	ErrUntrusted = errors.New("psa: annotator not trusted for this presence")
)

// TrustError is returned by CheckTrust when an annotation must be ignored.
// errors.Is(err, ErrUntrusted) reports true for it.
type TrustError struct {
	Annotator jid.JID // the annotation's from
	Sender    jid.JID // the presence's from
	Account   jid.JID // the account that received it
	Reason    string  // why, in words
}

// Error implements error.
func (e *TrustError) Error() string {
	return "psa: untrusted annotation from " + e.Annotator.String() +
		" on presence from " + e.Sender.String() + ": " + e.Reason
}

// Unwrap returns ErrUntrusted.
func (e *TrustError) Unwrap() error { return ErrUntrusted }

// ErrExcluded reports an annotation on a presence XEP-0310 excludes:
// unavailable, error, probe and subscription presences. Such annotations are
// ignored.
var ErrExcluded = errors.New("psa: annotation on an unavailable, error or subscription presence")
