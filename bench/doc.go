// Package bench measures psakit against its dependency floor and against
// the Go XMPP libraries people use, on the same recorded stream of presence
// stanzas over loopback TCP. It is a separate module so that the peers
// (github.com/xmppo/go-xmpp, gosrc.io/xmpp) never enter psakit's go.mod.
//
// Run everything with ../scripts/bench.sh; the results and how to read them
// are in ../BENCHMARKS.md. go test ./... only checks the harness: every
// peer logs in to the fake server and handles a short stream.
package bench
