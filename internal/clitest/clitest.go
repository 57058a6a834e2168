// Package clitest checks, from an example program's tests, what its main
// does with a command line: the exit status, the usage on stderr, and that
// nothing started.
package clitest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RunMain runs main, with the words of the environment variable env as its
// arguments after name, when env is set: the test binary then stands in for
// the program. Call it first in TestMain; main must exit by itself.
func RunMain(env, name string, main func()) {
	if args, ok := os.LookupEnv(env); ok {
		os.Args = append([]string{name}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
}

// ExitStatus runs the test binary as the program (see RunMain) with each
// command line of want and checks the exit status it maps to, that stderr
// holds the usage, and that nothing was written to stdout. Standard input
// says "quit", for programs that read commands.
func ExitStatus(t *testing.T, env, name string, want map[string]int) {
	t.Helper()
	for args, code := range want {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), env+"="+args)
		cmd.Stdin = strings.NewReader("quit\n")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		got := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != code || !strings.Contains(stderr.String(), "Usage:") || stdout.Len() != 0 {
			t.Errorf("%s %s: exit status %d, want %d; stdout %q; stderr:\n%s", name, args, got, code, stdout.String(), stderr.String())
		}
	}
}
