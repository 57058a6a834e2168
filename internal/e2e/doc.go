// Package e2e holds psakit's end-to-end tests: psakit's client (package
// client, with its roster and mucwatch models) against real, federating
// Prosody 0.12 servers that run psakit's mod_psa, started on loopback by
// internal/prosodytest.
//
// The tests play XEP-0310's three cases as an application sees them, through
// the client's callbacks and models: a contact on another domain whose
// server becomes unreachable (a cut link, a killed server), a contact whose
// session hibernates (XEP-0198), and a MUC occupant on an unreachable domain;
// and what psakit adds on top: its own server killed and restarted, rooms it
// must stay in, a flapping link, clients without urn:xmpp:psa that must see
// nothing, and the three ways to connect (plain text on loopback, StartTLS,
// direct TLS). The example program mucbot is built and run as its users run
// it, answering in its room and in direct chat. remote_test.go runs the
// servers without mod_psa, where only psakit's own remote checks find an
// outage (a refused link, a blackholed one); every other test turns those
// checks off, as they are about what mod_psa says. They log how long each
// change took to reach the client
// (grep the -v output for "timing:"), but never assert durations.
//
// Without Prosody the tests skip, unless PSAKIT_REQUIRE_PROSODY=1.
//
//	go test -race -v ./internal/e2e/
//	go test -run '^$' -bench ThousandContacts -benchtime 20x ./internal/e2e/  # BENCHMARKS.md
package e2e
