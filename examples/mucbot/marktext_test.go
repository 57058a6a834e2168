package main

import (
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/psa"
)

// !status tells psakit's own finding from an annotator's word.
func TestMarkText(t *testing.T) {
	now := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		m    psa.Mark
		want string
	}{
		{psa.Mark{Condition: psa.ServerUnavailable, By: jid.MustParse("muc.montague.lit"), Since: now}, "server-unavailable by muc.montague.lit"},
		{psa.InferredMark(jid.MustParse("chat.capulet.lit"), now), "server-unavailable inferred (chat.capulet.lit out of reach)"},
	} {
		if got := markText(tc.m); got != tc.want {
			t.Errorf("markText(%+v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}
