package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/psakit/psakit/client/clientflag"
)

// -h says what psawatch does and where the password comes from; a wrong
// command line is an error with the usage, exit status 2, before anything
// connects; a bad JID names the part that is wrong.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, []string{"live roster", "staleness", "PSAKIT_PASSWORD", "-json", "-room"}},
		{[]string{"-jid", "romeo@montague.lit", "stray"}, 2, []string{`unexpected argument "stray"`, "Usage:"}},
		{[]string{"-nosuchflag"}, 2, []string{"-nosuchflag", "Usage:"}},
		{[]string{"-tls", "none"}, 2, []string{"-jid: an account JID is required", "Usage:"}},
		{[]string{"-jid", "romeo@mon tague.lit"}, 2, []string{`the domain part "mon tague.lit" is not a valid domain name`}},
		{[]string{"-jid", "ro me@montague.lit"}, 2, []string{`the local part "ro me" is not allowed`}},
		{[]string{"-jid", "@montague.lit"}, 2, []string{"the local part, before the @, is empty"}},
		{[]string{"-jid", "montague.lit"}, 2, []string{"an account JID has a local part"}},
		{[]string{"-jid", "romeo@montague.lit", "-tls", "ssl"}, 2, []string{`-tls "ssl": want starttls, direct or none`}},
		{[]string{"-jid", "romeo@montague.lit", "-room", "orchard@muc.montague.lit"}, 2, []string{"the nick, after the /, is missing"}},
	} {
		var stdout, stderr strings.Builder
		err := run(context.Background(), tc.args, os.Stdin, &stdout, &stderr)
		if got := clientflag.ExitCode(err); got != tc.code {
			t.Errorf("%q: exit status %d (%v), want %d", tc.args, got, err, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, stderr.String())
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: printed %q", tc.args, stdout.String())
		}
	}
}
