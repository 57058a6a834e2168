#!/usr/bin/env bash
# scripts/test.sh runs every check psakit's CI runs, in the order a reviewer
# would: formatting, go vet, staticcheck, the race-enabled test suite (which
# includes the end-to-end tests against real Prosody servers when Prosody is
# installed), and a short run of every fuzz target.
#
# Environment:
#   PSAKIT_FUZZTIME          the -fuzztime of every fuzz target, overriding the
#                            per-target execution counts below (e.g. 50000x, or 60s,
#                            which on Go 1.26 may fail with golang/go#75804, see
#                            fuzz_count; 0 skips fuzzing)
#   PSAKIT_REQUIRE_PROSODY=1 make a missing Prosody a test failure instead of a skip
#                            (.ci/run sets it)
#   PSAKIT_PROSODY           the Prosody versions (or launcher paths) the Prosody tests
#                            run against, e.g. "0.12 13" (.ci/run); default: every one
#                            found (see internal/prosodytest)
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${PSAKIT_FUZZTIME:-}
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

# fuzz_count TARGET (package/Fuzz name) is the number of executions a fuzz
# target gets: about 20 s on a shared two-core machine. An execution count
# and not a duration, because Go 1.26's fuzzing coordinator can fail a
# target at the end of a duration -fuzztime with a bare "context deadline
# exceeded" although nothing failed (golang/go#75804, fixed in Go 1.27); a
# count sets no deadline. The count includes the run over the seed corpus
# and the inputs cached from earlier runs.
fuzz_count() {
	case $1 in
	psa/FuzzFind) echo 200000x ;;
	presence/FuzzDecode) echo 170000x ;;
	roster/FuzzModel) echo 1200x ;;
	roster/FuzzReadItems) echo 150000x ;;
	caps/FuzzVer) echo 25000x ;;
	mucwatch/FuzzModel) echo 12000x ;;
	internal/stanzalimit/FuzzScanner) echo 350000x ;;
	internal/fastjid/FuzzFastJID) echo 150000x ;;
	internal/sm/FuzzDecode) echo 150000x ;;
	internal/sm/FuzzScanner) echo 200000x ;;
	internal/sm/FuzzScannerAgainstDecoder) echo 250000x ;;
	internal/sm/FuzzState) echo 120000x ;;
	*)
		echo "scripts/test.sh: no execution count for fuzz target $1" >&2
		return 1
		;;
	esac
}

if [ "$fuzztime" != "0" ]; then
	step "fuzz (${fuzztime:-about 20 s} per target)"
	# Each Fuzz function in the main module gets its own short run.
	grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/' | sort | while read -r f; do
		pkg=./$(dirname "${f#./}")
		for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
			t=$fuzztime
			[ -n "$t" ] || t=$(fuzz_count "${pkg#./}/$target")
			echo "-- $pkg $target ($t)"
			# Minimizing each new input for up to a minute (the default) made some
			# targets spend the whole short run on one input (mucwatch: 1.3k
			# executions in 20 s, against 30k with 2 s).
			go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" -fuzzminimizetime=2s "$pkg"
		done
	done
fi

step "all checks passed"
