package reach

import (
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

var (
	own    = jid.MustParse("capulet.lit")
	remote = jid.MustParse("montague.lit")
	muc    = jid.MustParse("conference.montague.lit")
)

func errOf(c stanza.Condition, by string) *stanza.Error {
	e := &stanza.Error{Type: stanza.Cancel, Condition: c}
	if by != "" {
		e.By = jid.MustParse(by)
	}
	return e
}

func TestClassifyPing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		from   string
		err    *stanza.Error
		target jid.JID
		want   Verdict
	}{
		{"result from the domain", "montague.lit", nil, remote, Reachable},
		{"result from someone else", "evil.lit", nil, remote, Undecided},
		{"result from a user of the domain", "romeo@montague.lit", nil, remote, Undecided},
		{"result without from", "", nil, remote, Undecided},

		{"Prosody 0.12 bounce: by our domain", "montague.lit", errOf(stanza.RemoteServerNotFound, "capulet.lit"), remote, Unreachable},
		{"Prosody 13 and ejabberd bounce: no by", "montague.lit", errOf(stanza.RemoteServerTimeout, ""), remote, Unreachable},
		{"bounce without from, by our domain", "", errOf(stanza.RemoteServerTimeout, "capulet.lit"), remote, Unreachable},
		{"bounce of a MUC service", "conference.montague.lit", errOf(stanza.RemoteServerNotFound, "capulet.lit"), muc, Unreachable},
		{"remote-server error relayed by the domain", "montague.lit", errOf(stanza.RemoteServerNotFound, "montague.lit"), remote, Undecided},
		{"remote-server error relayed by a third server", "montague.lit", errOf(stanza.RemoteServerTimeout, "verona.lit"), remote, Undecided},
		{"remote-server error by a user of ours", "montague.lit", errOf(stanza.RemoteServerTimeout, "juliet@capulet.lit"), remote, Undecided},
		{"remote-server error from someone else", "evil.lit", errOf(stanza.RemoteServerNotFound, "capulet.lit"), remote, Undecided},

		{"Prosody 13 unacknowledged s2s: recipient-unavailable by our domain", "montague.lit", errOf(stanza.RecipientUnavailable, "capulet.lit"), remote, Unreachable},
		{"recipient-unavailable from the domain itself", "montague.lit", errOf(stanza.RecipientUnavailable, ""), remote, Reachable},
		{"recipient-unavailable by a session of ours", "montague.lit", errOf(stanza.RecipientUnavailable, "juliet@capulet.lit"), remote, Reachable},

		{"service-unavailable from the domain, no by", "montague.lit", errOf(stanza.ServiceUnavailable, ""), remote, Reachable},
		{"feature-not-implemented by the domain", "montague.lit", errOf(stanza.FeatureNotImplemented, "montague.lit"), remote, Reachable},
		{"service-unavailable by the MUC service's room", "conference.montague.lit", errOf(stanza.ServiceUnavailable, "room@conference.montague.lit"), muc, Reachable},
		{"an error by a third server behind the domain's link", "conference.montague.lit", errOf(stanza.ServiceUnavailable, "montague.lit"), muc, Reachable},
		{"not-allowed by our server (no federation)", "montague.lit", errOf(stanza.NotAllowed, "capulet.lit"), remote, Undecided},
		{"an error without from", "", errOf(stanza.ServiceUnavailable, ""), remote, Undecided},
		{"an error from someone else", "evil.lit", errOf(stanza.ServiceUnavailable, ""), remote, Undecided},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var from jid.JID
			if tc.from != "" {
				from = jid.MustParse(tc.from)
			}
			if got := ClassifyPing(from, tc.err, tc.target, own); got != tc.want {
				t.Fatalf("ClassifyPing = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClassifyBounce(t *testing.T) {
	for _, tc := range []struct {
		name string
		from string
		err  *stanza.Error
		want string // the domain, "" for none
	}{
		{"message to a contact, Prosody 0.12", "romeo@montague.lit/garden", errOf(stanza.RemoteServerNotFound, "capulet.lit"), "montague.lit"},
		{"presence to a contact, ejabberd", "romeo@montague.lit", errOf(stanza.RemoteServerTimeout, ""), "montague.lit"},
		{"message to a room", "room@conference.montague.lit", errOf(stanza.RemoteServerTimeout, ""), "conference.montague.lit"},
		{"Prosody 13 unacknowledged s2s", "romeo@montague.lit", errOf(stanza.RecipientUnavailable, "capulet.lit"), "montague.lit"},
		{"recipient-unavailable from the contact's server", "romeo@montague.lit", errOf(stanza.RecipientUnavailable, "romeo@montague.lit"), ""},
		{"recipient-unavailable without by", "romeo@montague.lit", errOf(stanza.RecipientUnavailable, ""), ""},
		{"remote-server error by the domain itself", "romeo@montague.lit", errOf(stanza.RemoteServerNotFound, "montague.lit"), ""},
		{"remote-server error by a third server", "romeo@montague.lit", errOf(stanza.RemoteServerNotFound, "verona.lit"), ""},
		{"an error from our own domain", "nurse@capulet.lit", errOf(stanza.RemoteServerNotFound, "capulet.lit"), ""},
		{"an error without from", "", errOf(stanza.RemoteServerNotFound, "capulet.lit"), ""},
		{"any other error", "romeo@montague.lit", errOf(stanza.ServiceUnavailable, "capulet.lit"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var from jid.JID
			if tc.from != "" {
				from = jid.MustParse(tc.from)
			}
			d, ok := ClassifyBounce(from, *tc.err, own)
			if ok != (tc.want != "") || ok && d.String() != tc.want {
				t.Fatalf("ClassifyBounce = %v %v, want %q", d, ok, tc.want)
			}
		})
	}
}
