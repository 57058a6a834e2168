package psa

import "mellium.im/xmpp/jid"

// CheckTrust applies psakit's trust rule to an annotation by annotator on a
// presence from sender, received by account. It returns nil when the
// annotation may be applied and a *TrustError (matching ErrUntrusted)
// otherwise.
//
// An annotator is trusted only when it is a bare domain JID equal to the
// account's own domain (the user's server speaks about any presence it
// delivers), or to the domain of the presence's sender (a remote server
// speaking for its own users, a MUC service for its occupants). Everything
// else — a contact, a full JID, a third domain — could be anyone forging
// staleness and is ignored.
//
// A zero sender means the presence came from the account itself (mellium
// rewrites the account's own bare JID to an empty from). The JIDs are compared
// in their normalized form, so case and IDNA differences between A-labels and
// U-labels do not matter for JIDs made with jid.Parse or jid.New.
func CheckTrust(account, sender, annotator jid.JID) error {
	fail := func(reason string) error {
		return &TrustError{Annotator: annotator, Sender: sender, Account: account, Reason: reason}
	}
	// Equal and Domain neither allocate nor copy, unlike the part accessors:
	// this runs for every annotation in a burst.
	switch {
	case annotator.Equal(jid.JID{}):
		return fail("no annotator")
	case !annotator.Equal(annotator.Domain()):
		return fail("the annotator is not a bare domain")
	case annotator.Equal(account.Domain()):
		return nil
	case sender.Equal(jid.JID{}):
		// From the account itself: only its own server may annotate.
		return fail("the annotator is not the account's server")
	case annotator.Equal(sender.Domain()):
		return nil
	}
	return fail("the annotator is neither the account's server nor the sender's domain")
}
