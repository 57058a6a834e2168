// Package sm is the client side of XEP-0198 Stream Management (version 1.6,
// namespace urn:xmpp:sm:3), which mellium v0.22 lacks.
//
// The package has three pure parts, which read and write nothing:
//
//   - State: the counts and the queue. The inbound count h counts the
//     stanzas received (message, presence, iq; never <r/>, <a/> or other
//     nonzas), modulo 2^32, reset only by <enabled/>, never by a
//     resumption. Sent stanzas are queued, bounded in bytes, until the
//     server acknowledges them; an acknowledgement drops them (across the
//     2^32 wrap), a count above what was sent is clamped and reported, one
//     that goes backwards is ignored and reported. <resumed h/> returns what
//     is left to re-send before anything new; <failed/> returns it to the
//     application instead, since the server may have delivered it.
//   - The element codecs: Enable, Enabled, Request, Ack, Resume, Resumed,
//     Failed and Decode, whose errors on malformed input match
//     ErrMalformed.
//   - Scanner: finds the top-level elements of a stream in its bytes, which
//     is how a session's traffic is counted: mellium has no hook on the
//     stanzas it writes (handlers, automatic IQ errors and Send all write to
//     the connection) nor on the IQ results it routes to waiting callers.
package sm
