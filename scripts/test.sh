#!/usr/bin/env bash
# scripts/test.sh runs every check psakit's CI runs, in the order a reviewer
# would: formatting, go vet, staticcheck, the race-enabled test suite (which
# includes the end-to-end tests against real Prosody servers when Prosody is
# installed), and a short run of every fuzz target.
#
# Environment:
#   PSAKIT_FUZZTIME          how long each fuzz target runs (default 20s; 0 skips fuzzing)
#   PSAKIT_REQUIRE_PROSODY=1 make a missing Prosody a test failure instead of a skip
#                            (.ci/run sets it)
#   PSAKIT_PROSODY           the Prosody versions (or launcher paths) the Prosody tests
#                            run against, e.g. "0.12 13" (.ci/run); default: every one
#                            found (see internal/prosodytest)
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${PSAKIT_FUZZTIME:-20s}
staticcheck_version=v0.8.2

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"
	echo "$unformatted"
	exit 1
fi

# Every Go module in the repository: the main one and the nested ones (bench/).
modules=$(find . -name go.mod -not -path './.git/*' -exec dirname {} \; | sort)

# Generated files (stringer's enum names) must match their sources: the
# generators are pinned in the //go:generate lines, so this is reproducible.
step "go generate is current"
generated() { find . -name '*_string.go' -not -path './.git/*' -print0 | sort -z | xargs -0 -r sha256sum; }
before=$(generated)
go generate ./...
if [ "$(generated)" != "$before" ]; then
	echo "go generate changed generated files; commit its output:"
	diff <(echo "$before") <(generated) || true
	exit 1
fi

step "go vet"
for m in $modules; do (cd "$m" && go vet ./...); done

step "staticcheck $staticcheck_version"
for m in $modules; do (cd "$m" && go run "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version" ./...); done

step "go test -race"
go test -race -count=1 -timeout 40m ./...
for m in $modules; do
	[ "$m" = "." ] && continue
	# Nested modules (benchmarks of peers) are compiled and their tests run once,
	# without -bench: their figures come from scripts/bench.sh, never from CI timing.
	(cd "$m" && go test -count=1 ./...)
done

# fuzz_target PKG TARGET gives one fuzz target its short run.
fuzz_target() {
	local pkg=$1 target=$2 out status
	out=$(mktemp)
	# Minimizing each new input for up to a minute (the default) made some
	# targets spend the whole short run on one input (mucwatch: 1.3k
	# executions in 20 s, against 30k with 2 s).
	set +e
	go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime=2s "$pkg" 2>&1 | tee "$out"
	status=${PIPESTATUS[0]}
	set -e
	# Go 1.26's fuzzing coordinator can fail a target at the end of a
	# duration -fuzztime with a bare "context deadline exceeded" although
	# nothing failed (golang/go#75804, fixed in Go 1.27). That, and only that,
	# is not a finding: no failing input was written, and the failure is
	# exactly that message. Any other failure fails the run.
	if [ "$status" -ne 0 ] && ! grep -q 'Failing input written' "$out" &&
		[ -z "$(git status --porcelain -- "$pkg/testdata/fuzz/$target" 2>/dev/null)" ] &&
		[ "$(grep -v '^fuzz: ' "$out" | grep -v -x -e '--- FAIL: '"$target"' ([0-9.]*s)' -e '    context deadline exceeded' \
			-e 'FAIL' -e 'exit status 1' -e "FAIL	github.com/psakit/psakit/${pkg#./}	[0-9.]*s" | grep -c .)" = 0 ] &&
		grep -q -x '    context deadline exceeded' "$out"; then
		echo "-- $target: Go's fuzztime deadline race (golang/go#75804), no input failed: not a finding"
		status=0
	fi
	rm -f "$out"
	return "$status"
}

if [ "$fuzztime" != "0" ]; then
	step "fuzz ($fuzztime per target)"
	# Each Fuzz function in the main module gets its own short run.
	grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/' | sort | while read -r f; do
		pkg=./$(dirname "${f#./}")
		for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
			echo "-- $pkg $target"
			fuzz_target "$pkg" "$target"
		done
	done
fi

step "all checks passed"
