package clientflag

import (
	"flag"
	"io"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
)

// The duration flags take their default, a duration, 0 for off; a negative
// one is a usage error (exit status 2), as for every other flag.
func TestDurationFlags(t *testing.T) {
	account := jid.MustParse("romeo@montague.lit")
	for _, fl := range []struct {
		name string
		def  time.Duration
		get  func(*Flags) time.Duration
	}{
		{"keepalive", client.DefaultKeepaliveInterval, func(f *Flags) time.Duration { return f.Keepalive }},
		{"remote-check", client.DefaultRemoteCheck, func(f *Flags) time.Duration { return f.RemoteCheck }},
	} {
		for _, tc := range []struct {
			args []string
			want time.Duration
			bad  bool
		}{
			{args: nil, want: fl.def},
			{args: []string{"-" + fl.name, "5s"}, want: 5 * time.Second},
			{args: []string{"-" + fl.name, "0"}, want: 0},
			{args: []string{"-" + fl.name, "-1s"}, want: -time.Second, bad: true},
		} {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := Register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatalf("%v: %v", tc.args, err)
			}
			if got := fl.get(f); got != tc.want {
				t.Errorf("%v: -%s = %v, want %v", tc.args, fl.name, got, tc.want)
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
}

// -sm is on unless turned off.
func TestSMFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, true}, {[]string{"-sm=false"}, false}, {[]string{"-sm"}, true}} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f := Register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if f.SM != tc.want {
			t.Errorf("%v: -sm = %v", tc.args, f.SM)
		}
	}
}
