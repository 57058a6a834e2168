package psa_test

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

func TestCheckTrust(t *testing.T) {
	j := func(s string) jid.JID {
		if s == "" {
			return jid.JID{}
		}
		return jid.MustParse(s)
	}
	// The account is romeo@montague.lit; every case is a presence from sender
	// annotated by annotator.
	tests := []struct {
		name              string
		sender, annotator string
		ok                bool
	}{
		{"own server for a remote contact", "juliet@capulet.lit/orchard", "montague.lit", true},
		{"own server for a local contact", "benvolio@montague.lit/lane", "montague.lit", true},
		{"the sender's server", "juliet@capulet.lit/orchard", "capulet.lit", true},
		{"a MUC service for its occupant", "orchard@chats.shakespeare.lit/Juliet", "chats.shakespeare.lit", true},
		{"own server for a MUC occupant", "orchard@chats.shakespeare.lit/Juliet", "montague.lit", true},
		{"own server for the account's other resource", "", "montague.lit", true},
		{"mismatched case", "juliet@CAPULET.lit/orchard", "Capulet.LIT", true},
		{"IDNA A-label annotating U-label sender", "anna@bücher.example/x", "xn--bcher-kva.example", true},
		{"IDNA U-label annotating A-label sender", "anna@xn--bcher-kva.example/x", "bücher.example", true},
		{"a contact's bare JID", "juliet@capulet.lit/orchard", "juliet@capulet.lit", false},
		{"a contact's full JID", "juliet@capulet.lit/orchard", "juliet@capulet.lit/orchard", false},
		{"a full domain JID", "juliet@capulet.lit/orchard", "capulet.lit/psa", false},
		{"another domain", "juliet@capulet.lit/orchard", "evil.example", false},
		{"a subdomain of the sender", "juliet@capulet.lit/orchard", "muc.capulet.lit", false},
		{"the parent of a MUC service", "orchard@chats.shakespeare.lit/Juliet", "shakespeare.lit", false},
		{"the room itself", "orchard@chats.shakespeare.lit/Juliet", "orchard@chats.shakespeare.lit", false},
		{"an empty from", "juliet@capulet.lit/orchard", "", false},
		{"a remote server for the account's own resource", "", "capulet.lit", false},
		{"a remote server about a local contact", "benvolio@montague.lit/lane", "capulet.lit", false},
	}
	account := jid.MustParse("romeo@montague.lit/lane")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sender, annotator := j(tc.sender), j(tc.annotator)
			err := psa.CheckTrust(account, sender, annotator)
			if tc.ok {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var te *psa.TrustError
			if !errors.Is(err, psa.ErrUntrusted) || !errors.As(err, &te) {
				t.Fatalf("error = %v, want a *TrustError matching ErrUntrusted", err)
			}
			if !te.Annotator.Equal(annotator) || !te.Sender.Equal(sender) || te.Reason == "" {
				t.Fatalf("TrustError fields: %+v", te)
			}
		})
	}
}
