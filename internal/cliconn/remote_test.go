package cliconn

import (
	"flag"
	"io"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
)

func TestRemoteCheckFlag(t *testing.T) {
	account := jid.MustParse("romeo@montague.lit")
	for _, tc := range []struct {
		args []string
		want time.Duration
		bad  bool
	}{
		{args: nil, want: client.DefaultRemoteCheck},
		{args: []string{"-remote-check", "5s"}, want: 5 * time.Second},
		{args: []string{"-remote-check", "0"}, want: 0},
		{args: []string{"-remote-check", "-1s"}, want: -time.Second, bad: true},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f := Register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if f.RemoteCheck != tc.want {
			t.Errorf("%v: RemoteCheck = %v, want %v", tc.args, f.RemoteCheck, tc.want)
		}
		_, err := f.Options(account)
		if (err != nil) != tc.bad {
			t.Errorf("%v: Options error %v", tc.args, err)
		}
		if tc.bad && ExitCode(err) != 2 {
			t.Errorf("%v: exit code %d for %v, want 2", tc.args, ExitCode(err), err)
		}
	}
}
