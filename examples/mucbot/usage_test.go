package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/psakit/psakit/client/clientflag"
)

// -h says what mucbot does and where the password comes from; a wrong
// command line is an error with the usage, exit status 2.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, []string{"joins the multi-user chat rooms", "self-ping", "PSAKIT_PASSWORD", "-room", "-admin", "that room alone"}},
		{[]string{"-jid", "bot@montague.lit", "-room", "orchard@muc.montague.lit/bot", "stray"}, 2, []string{`unexpected argument "stray"`, "Usage:"}},
		{[]string{"-jid", "bot@montague.lit"}, 2, []string{"give at least one -room", "Usage:"}},
		{[]string{"-jid", "bot@montague.lit", "-room", "muc.montague.lit/bot"}, 2, []string{"the room's name, before the @, is missing"}},
		{[]string{"-jid", "bot@montague.lit", "-room", "orchard@muc.montague.lit/"}, 2, []string{"the resource part, after the /, is empty"}},
		{[]string{"-jid", "bot@montague.lit/", "-room", "orchard@muc.montague.lit/bot"}, 2, []string{`-jid "bot@montague.lit/": the resource part, after the /, is empty`}},
		{[]string{"-jid", "bot@montague.lit", "-room", "orchard@muc.montague.lit/bot", "-admin", "verona.lit"}, 2, []string{`"verona.lit" is no account`}},
	} {
		var stderr strings.Builder
		err := run(context.Background(), tc.args, os.Stdin, &stderr)
		if got := clientflag.ExitCode(err); got != tc.code {
			t.Errorf("%q: exit status %d (%v), want %d", tc.args, got, err, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, stderr.String())
			}
		}
	}
}
