package mucwatch_test

import (
	"context"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/mucwatch"
)

func TestSelfPingVerdict(t *testing.T) {
	room := jid.MustParse("orchard@muc.montague.lit")
	e := func(cond stanza.Condition, by string) error {
		se := stanza.Error{Type: stanza.Cancel, Condition: cond}
		if by != "" {
			se.By = jid.MustParse(by)
		}
		return se
	}
	for _, tc := range []struct {
		name string
		err  error
		want mucwatch.Verdict
	}{
		{"result", nil, mucwatch.VerdictJoined},
		{"service-unavailable", e(stanza.ServiceUnavailable, ""), mucwatch.VerdictJoined},
		{"feature-not-implemented", e(stanza.FeatureNotImplemented, ""), mucwatch.VerdictJoined},
		{"item-not-found from the room: nick change in flight", e(stanza.ItemNotFound, "orchard@muc.montague.lit"), mucwatch.VerdictJoined},
		{"item-not-found without by", e(stanza.ItemNotFound, ""), mucwatch.VerdictJoined},
		{"item-not-found from the service: the room is gone", e(stanza.ItemNotFound, "muc.montague.lit"), mucwatch.VerdictNotJoined},
		{"not-acceptable", e(stanza.NotAcceptable, "orchard@muc.montague.lit"), mucwatch.VerdictNotJoined},
		{"not-allowed", e(stanza.NotAllowed, ""), mucwatch.VerdictNotJoined},
		{"bad-request", e(stanza.BadRequest, ""), mucwatch.VerdictNotJoined},
		{"remote-server-not-found", e(stanza.RemoteServerNotFound, ""), mucwatch.VerdictUndecided},
		{"remote-server-timeout", e(stanza.RemoteServerTimeout, ""), mucwatch.VerdictUndecided},
		{"timeout", context.DeadlineExceeded, mucwatch.VerdictUndecided},
	} {
		if got := mucwatch.SelfPingVerdict(room, tc.err); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
