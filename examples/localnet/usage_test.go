package main

import (
	"context"
	"strings"
	"testing"

	"github.com/psakit/psakit/internal/cliconn"
)

// -h says what localnet does instead of starting servers; an argument is an
// error with the usage, exit status 2.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, []string{"two real XMPP servers", "Prosody", "PSAKIT_PASSWORD", "Usage:"}},
		{[]string{"stray"}, 2, []string{`unexpected argument "stray"`, "Usage:"}},
		{[]string{"-v"}, 2, []string{"-v", "Usage:"}},
	} {
		var stdout, stderr strings.Builder
		err := run(context.Background(), tc.args, strings.NewReader("quit\n"), &stdout, &stderr)
		if got := cliconn.ExitCode(err); got != tc.code {
			t.Errorf("%q: exit status %d (%v), want %d", tc.args, got, err, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, w, stderr.String())
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: localnet started:\n%s", tc.args, stdout.String())
		}
	}
}
