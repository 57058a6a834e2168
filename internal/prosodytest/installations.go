package prosodytest

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// EnvProsody selects the Prosody installations that tests run against: a
// list, separated by spaces or commas, of versions ("0.12 13": every found
// installation whose version is that or starts with it and a dot) and paths
// of prosody launchers. Unset, every installation found is used: the
// prosody in PATH and the ones that scripts/install-prosody-13.sh unpacks
// into the user's cache directory (psakit/prosody-*/usr/bin/prosody). With
// PSAKIT_REQUIRE_PROSODY=1, an entry that matches nothing fails the tests.
const EnvProsody = "PSAKIT_PROSODY"

// envChild marks a test binary that Main started for one installation.
const envChild = "PSAKIT_PROSODY_CHILD"

// Installation is one Prosody on this machine.
type Installation struct {
	// Prosody is the path of the prosody launcher.
	Prosody string
	// Ctl is the path of its prosodyctl.
	Ctl string
	// Version is the version in the sources the launcher loads, e.g.
	// "0.12.3" or "13.0.1", or "unknown".
	Version string
}

// AtLeast reports whether the installation's version is version or newer,
// comparing numeric dotted components: "13.0.1" is at least "13" and
// "0.12.4" is not at least "13". An unknown version is never at least
// anything.
func (in Installation) AtLeast(version string) bool {
	have, ok := parseVersion(in.Version)
	want, ok2 := parseVersion(version)
	if !ok || !ok2 {
		return false
	}
	for i := range max(len(have), len(want)) {
		var h, w int
		if i < len(have) {
			h = have[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if h != w {
			return h > w
		}
	}
	return true
}

func (in Installation) String() string {
	return "Prosody " + in.Version + " (" + in.Prosody + ")"
}

func parseVersion(v string) ([]int, bool) {
	parts := strings.Split(v, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

var sourceDirLine = regexp.MustCompile(`^CFG_SOURCEDIR\s*=\s*'([^']*)'`)

// inspect returns the installation whose launcher is at path, or an error
// when it or its prosodyctl is missing.
func inspect(path string) (Installation, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return Installation{}, err
	}
	if _, err := os.Stat(path); err != nil {
		return Installation{}, err
	}
	in := Installation{Prosody: path, Version: "unknown"}
	in.Ctl = filepath.Join(filepath.Dir(path), "prosodyctl")
	if _, err := os.Stat(in.Ctl); err != nil {
		return Installation{}, fmt.Errorf("no prosodyctl next to %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return Installation{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; i < 40 && sc.Scan(); i++ {
		if m := sourceDirLine.FindStringSubmatch(sc.Text()); m != nil {
			if b, err := os.ReadFile(filepath.Join(m[1], "prosody.version")); err == nil {
				if v := strings.TrimSpace(string(b)); v != "" {
					in.Version = v
				}
			}
			break
		}
	}
	return in, nil
}

// Found returns every Prosody installation found: the prosody in PATH,
// then the ones unpacked under the user's cache directory, without
// duplicates.
func Found() []Installation {
	var paths []string
	if p, err := exec.LookPath("prosody"); err == nil {
		paths = append(paths, p)
	}
	if cache, err := os.UserCacheDir(); err == nil {
		m, _ := filepath.Glob(filepath.Join(cache, "psakit", "prosody-*", "usr", "bin", "prosody"))
		paths = append(paths, m...)
	}
	var out []Installation
	seen := make(map[string]bool)
	for _, p := range paths {
		in, err := inspect(p)
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(in.Prosody)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		out = append(out, in)
	}
	return out
}

// Installations returns the installations that PSAKIT_PROSODY selects, in
// its order, or every one found when it is unset. The error names every
// entry of PSAKIT_PROSODY that matched nothing; the installations that were
// found are returned with it.
func Installations() ([]Installation, error) {
	found := Found()
	spec := strings.Fields(strings.ReplaceAll(os.Getenv(EnvProsody), ",", " "))
	if len(spec) == 0 {
		if len(found) == 0 {
			return nil, errors.New("prosodytest: no Prosody found (Debian: apt-get install prosody; scripts/install-prosody-13.sh for 13)")
		}
		return found, nil
	}
	var out []Installation
	var errs []error
	seen := make(map[string]bool)
	add := func(in Installation) {
		if !seen[in.Prosody] {
			seen[in.Prosody] = true
			out = append(out, in)
		}
	}
	for _, item := range spec {
		if strings.Contains(item, string(filepath.Separator)) {
			in, err := inspect(item)
			if err != nil {
				errs = append(errs, fmt.Errorf("prosodytest: %s=%q: %w", EnvProsody, item, err))
				continue
			}
			add(in)
			continue
		}
		matched := false
		for _, in := range found {
			if in.Version == item || strings.HasPrefix(in.Version, item+".") {
				add(in)
				matched = true
			}
		}
		if !matched {
			errs = append(errs, fmt.Errorf("prosodytest: %s names Prosody %s, which is not installed (found: %v)", EnvProsody, item, found))
		}
	}
	return out, errors.Join(errs...)
}

// Main runs a package's tests (call it from TestMain) once for every
// installation that Installations returns, each in its own run of the test
// binary with PSAKIT_PROSODY set to that installation, and exits with a
// failure if any run failed. With a single installation, or none, it runs
// the tests once in this process.
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(envChild) == "1" {
		return m.Run()
	}
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run()
	}
	all, err := Installations()
	if len(all) <= 1 || (err != nil && os.Getenv(EnvRequire) == "1") {
		return m.Run() // the tests report what is missing
	}
	code := 0
	for _, in := range all {
		fmt.Printf("=== prosodytest: running the tests against %v\n", in)
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), EnvProsody+"="+in.Prosody, envChild+"=1")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = childProcAttr()
		if err := cmd.Run(); err != nil {
			fmt.Printf("--- prosodytest: FAIL against %v: %v\n", in, err)
			code = 1
		}
	}
	return code
}
