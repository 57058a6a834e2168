package prosodytest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/psakit/psakit/internal/prosodytest"
)

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		ok         bool
	}{
		{"13.0.1", "13", true},
		{"13.0.1", "13.0.1", true},
		{"13.0.1", "13.0.2", false},
		{"0.12.3", "13", false},
		{"0.12.3", "0.12", true},
		{"0.12", "0.12.0", true},
		{"0.12.3", "0.12.4", false},
		{"unknown", "0.12", false},
		{"13.0.1", "", false},
	} {
		in := prosodytest.Installation{Version: tc.have}
		if got := in.AtLeast(tc.want); got != tc.ok {
			t.Errorf("%q.AtLeast(%q) = %v, want %v", tc.have, tc.want, got, tc.ok)
		}
	}
}

// fakeLauncher writes a launcher like Debian's (CFG_SOURCEDIR names the
// sources, which hold prosody.version) and a prosodyctl beside it.
func fakeLauncher(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "usr", "lib", "prosody")
	bin := filepath.Join(dir, "usr", "bin")
	for _, d := range []string{src, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(src, "prosody.version"): version + "\n",
		filepath.Join(bin, "prosody"):         "#!/usr/bin/env lua5.4\n-- comment\nCFG_SOURCEDIR='" + src + "';\nCFG_CONFIGDIR='/etc/prosody';\n",
		filepath.Join(bin, "prosodyctl"):      "#!/usr/bin/env lua5.4\n",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(bin, "prosody")
}

func TestInstallationsByPath(t *testing.T) {
	a, b := fakeLauncher(t, "13.0.1"), fakeLauncher(t, "0.12.3")
	t.Setenv(prosodytest.EnvProsody, a+", "+b+" "+a)
	got, err := prosodytest.Installations()
	if err != nil {
		t.Fatal(err)
	}
	want := []prosodytest.Installation{
		{Prosody: a, Ctl: filepath.Join(filepath.Dir(a), "prosodyctl"), Version: "13.0.1"},
		{Prosody: b, Ctl: filepath.Join(filepath.Dir(b), "prosodyctl"), Version: "0.12.3"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Installations() = %v, want %v (in PSAKIT_PROSODY's order, once each)", got, want)
	}
}

func TestInstallationsMissing(t *testing.T) {
	a := fakeLauncher(t, "13.0.1")
	missing := filepath.Join(t.TempDir(), "prosody")
	t.Setenv(prosodytest.EnvProsody, a+" "+missing+" 99.1")
	got, err := prosodytest.Installations()
	if len(got) != 1 || got[0].Prosody != a {
		t.Errorf("Installations() = %v, want only %s", got, a)
	}
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "Prosody 99.1") {
		t.Errorf("error %v does not name both missing entries", err)
	}
}

// A version matches itself and the versions it prefixes at a dot boundary:
// "1" does not select 13.
func TestInstallationsByVersion(t *testing.T) {
	found := prosodytest.Found()
	if len(found) == 0 {
		prosodytest.Require(t) // skips, or fails in CI
		t.Fatal("Require found a Prosody that Found did not")
	}
	v := found[0].Version
	major := v[:strings.IndexByte(v+".", '.')]
	t.Setenv(prosodytest.EnvProsody, major)
	got, err := prosodytest.Installations()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range got {
		if in.Version != major && !strings.HasPrefix(in.Version, major+".") {
			t.Errorf("%q selected %v", major, in)
		}
	}
	if len(got) == 0 || got[0] != found[0] {
		t.Errorf("%q selected %v, want %v first", major, got, found[0])
	}
	t.Setenv(prosodytest.EnvProsody, major[:len(major)-1]+"9"+major[len(major)-1:])
	if got, err := prosodytest.Installations(); err == nil {
		t.Errorf("a version nobody has selected %v", got)
	}
}
