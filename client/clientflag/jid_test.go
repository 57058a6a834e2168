package clientflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
)

// A JID that mellium refuses gets an error naming the flag and the part
// that is wrong, and still wraps mellium's error.
func TestParseJIDProblems(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"romeo@", "the domain part, after the @, is empty"},
		{"@montague.lit", "the local part, before the @, is empty"},
		{"romeo@montague.lit/", "the resource part, after the /, is empty"},
		{"ro me@montague.lit", `the local part "ro me" is not allowed`},
		{`ro"me@montague.lit`, `the local part "ro\"me" is not allowed`},
		{"romeo@mon tague.lit", `the domain part "mon tague.lit" is not a valid domain name`},
		{"romeo@-bad-.lit", `the domain part "-bad-.lit"`},
		{"romeo@montague.lit/a\x00b", `the resource part "a\x00b" is not allowed`},
		{"\xff@montague.lit", "not valid UTF-8"},
		{"romeo@montague.lit/" + strings.Repeat("r", 1100), "resource part"},
	} {
		_, err := parseJID("jid", tc.in)
		var fe *FlagError
		if !errors.As(err, &fe) || fe.Flag != "jid" || fe.Err == nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "-jid ") {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%q: not a usage error", tc.in)
		}
	}
	if _, err := parseJID("jid", "romeo@montague.lit/lane"); err != nil {
		t.Fatal(err)
	}
}

func TestExitCode(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{Parse(fs, "about", []string{"-h"}), 0},
		{Parse(fs, "about", []string{"stray"}), 2},
		{Parse(fs, "about", []string{"-nosuchflag"}), 2},
		{&FlagError{Flag: "jid", Problem: "required"}, 2},
		{fmt.Errorf("connecting: %w", io.EOF), 1},
	} {
		if got := ExitCode(tc.err); got != tc.code {
			t.Errorf("%v: %d, want %d", tc.err, got, tc.code)
		}
	}
}
