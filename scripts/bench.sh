#!/usr/bin/env bash
# scripts/bench.sh measures psakit against its dependency floor and against
# the Go XMPP libraries people use (bench/, a nested module), and runs the
# package benchmarks. It prints what BENCHMARKS.md reports.
#
# Each round runs every peer once, each in a fresh process, in a rotated
# order; the ratios to the mellium drain loop are paired per round
# (bench/cmd/pairs), and benchstat summarizes the raw numbers.
#
# Environment:
#   ROUNDS    rounds of the peer comparison (default 10)
#   STANZAS   presence stanzas per run (default 200000)
#   OUT       directory for the raw results (default a new temporary one)
#   STACK_ROUNDS  rounds of the roster-size and burst benchmarks (default 6)
#   ONLY      "peers", "share", "stack", "packages" to run one part (default all)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-10}
stanzas=${STANZAS:-200000}
out=${OUT:-$(mktemp -d -t psakit-bench.XXXXXX)}
only=${ONLY:-all}
mkdir -p "$out"
benchstat="go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(go version)"
echo "# raw results in $out"

(cd bench && go test -c -o "$out/bench.test" .)
# Benchmark/peer pairs: the peers of the issue, and two rows that tell
# where psakit's time goes (its decoder alone, and mellium with reflective
# decoding).
peers=(Stream/mellium-drain Stream/xml-tokens Stream/psakit Stream/psakit-decode Stream/mellium-reflect
	Stream/go-xmpp Stream/gosrc-xmpp)

if [ "$only" = all ] || [ "$only" = peers ]; then
	echo
	echo "## Peers: $rounds rounds of $stanzas stanzas"
	(cd bench && go test -count=1 -run '^TestStreamMix$' -v . | grep 'bench_test' || true)
	: >"$out/peers.txt"
	for r in $(seq 1 "$rounds"); do
		# Rotate the order each round so that no peer always runs first.
		for i in "${!peers[@]}"; do
			p=${peers[$(((i + r) % ${#peers[@]}))]}
			"$out/bench.test" -test.run '^$' -test.bench "^Benchmark${p%%/*}/peer=${p#*/}\$" \
				-test.benchtime "${stanzas}x" -test.count 1 -test.benchmem | grep '^Benchmark' >>"$out/peers.txt"
		done
		echo "round $r done" >&2
	done
	# pairs needs the rounds in order, one line per peer and round.
	for p in "${peers[@]}"; do grep "^Benchmark${p%%/*}/peer=${p#*/}-" "$out/peers.txt"; done >"$out/peers-by-peer.txt"
	(cd bench && go run ./cmd/pairs -base 'BenchmarkStream/peer=mellium-drain' "$out/peers-by-peer.txt")
	echo
	$benchstat "$out/peers.txt"
fi

if [ "$only" = all ] || [ "$only" = share ]; then
	echo
	echo "## psakit's share of a stanza, tokens in memory"
	"$out/bench.test" -test.run '^$' -test.bench '^BenchmarkShare/' -test.benchtime 200000x \
		-test.count "${STACK_ROUNDS:-6}" -test.benchmem | grep '^Benchmark' >"$out/share.txt"
	$benchstat "$out/share.txt"
fi

if [ "$only" = all ] || [ "$only" = stack ]; then
	echo
	echo "## Client stack by roster size, burst"
	: >"$out/stack.txt"
	for r in $(seq 1 "${STACK_ROUNDS:-6}"); do
		for size in 1k 100k 1M; do
			"$out/bench.test" -test.run '^$' -test.bench "^BenchmarkClientStack/entries=$size\$" \
				-test.benchtime 200000x -test.count 1 -test.benchmem | grep '^Benchmark' >>"$out/stack.txt"
		done
		"$out/bench.test" -test.run '^$' -test.bench '^BenchmarkBurst$' -test.benchtime 1x \
			-test.count 1 -test.benchmem | grep '^Benchmark' >>"$out/stack.txt"
	done
	$benchstat "$out/stack.txt"
fi

if [ "$only" = all ] || [ "$only" = packages ]; then
	echo
	echo "## Package benchmarks"
	go test -run '^$' -bench . -benchmem -count 6 ./presence/ ./psa/ ./caps/ ./mucwatch/ ./internal/fastjid/ >"$out/packages.txt"
	go test -run '^$' -bench '^BenchmarkApplyPresence$' -benchmem -count 6 ./roster/ ./client/ >>"$out/packages.txt"
	go test -run '^$' -bench '^BenchmarkResourceMemory$' -benchtime 1x -count 3 ./roster/ >>"$out/packages.txt"
	go test -run '^$' -bench '^BenchmarkMarkModel$' -benchtime 10x -count 4 ./roster/ >>"$out/packages.txt"
	$benchstat "$out/packages.txt"
fi
