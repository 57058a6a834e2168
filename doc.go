// Package psakit is the reference implementation of XEP-0310, Presence State
// Annotations, for Go XMPP clients and bots built on mellium.im/xmpp.
//
// An XMPP client shows the last presence it received from each contact and
// room occupant until a newer one arrives. When a server-to-server link goes
// down, or a contact's session is paused, no newer one can arrive: the client
// goes on showing stale presence, and a bot goes on believing it sits in a
// room that dropped it long ago. XEP-0310 lets the server say so: it re-sends
// the presence it delivered, annotated with a state-annotation element, and
// an empty annotation once the link is back.
//
// psakit is organized as a functional core with an imperative shell:
//
//   - [github.com/psakit/psakit/psa] is the wire codec: annotations, the trust
//     rule that decides who may annotate what, and staleness marks.
//   - [github.com/psakit/psakit/presence] decodes each presence stanza once,
//     annotations, MUC user data, caps and delay included.
//   - [github.com/psakit/psakit/caps] computes XEP-0115 verification strings
//     correctly and advertises urn:xmpp:psa, which is how a server learns that
//     the client wants annotations.
//   - roster and mucwatch are pure models of contacts and rooms that take
//     decoded presences and return events; client is the shell that owns the
//     connection, reconnects, and runs the rejoin and verify policies.
//   - psa/psatest is an in-process XMPP server for tests, like
//     net/http/httptest.
//   - prosody holds mod_psa, the server half, for Prosody 0.12.
//
// This package itself only documents the project; import the packages above.
package psakit
