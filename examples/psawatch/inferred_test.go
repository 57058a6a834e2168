package main

import (
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
)

// psakit's own mark says "inferred" and names the domain out of reach,
// beside the server's mark.
func TestTableInferred(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	var b strings.Builder
	o := newTable(&b, false)
	m := staleRoster(t, t0)
	m.MarkUnreachable(jid.MustParse("capulet.lit"), -1)
	o.attach(fakeModels{roster: m, rooms: mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))})
	o.dirty = true
	o.tick(t0.Add(time.Minute))
	for _, want := range []string{"STALE server-unavailable by montague.lit for 1m0s", "STALE server-unavailable inferred (capulet.lit out of reach) for 1m0s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}
