package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/psakit/psakit/client/clientflag"
	"github.com/psakit/psakit/internal/clitest"
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
		if got := clientflag.ExitCode(err); got != tc.code {
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

// mainEnv, when set, makes the test binary run main with its words as
// arguments, so that a test can check main's exit status.
const mainEnv = "PSAKIT_TEST_LOCALNET_MAIN"

func TestMain(m *testing.M) {
	clitest.RunMain(mainEnv, "localnet", main)
	os.Exit(m.Run())
}

// main exits 0 for -h and 2 for a stray argument or an unknown flag,
// printing the usage, and starts nothing.
func TestMainExitStatus(t *testing.T) {
	clitest.ExitStatus(t, mainEnv, "localnet", map[string]int{"-h": 0, "stray": 2, "-nosuchflag": 2})
}
