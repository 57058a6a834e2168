// Package psa is the wire codec for XEP-0310, Presence State Annotations.
//
// A server that supports XEP-0310 re-sends a presence it already delivered,
// with a state-annotation child, when it can no longer deliver updates for the
// entity that sent it:
//
//	<presence from='juliet@capulet.lit/orchard' to='romeo@montague.lit/lane'>
//	  <status>Available</status>
//	  <state-annotation xmlns='urn:xmpp:psa' from='montague.lit'>
//	    <server-unavailable/>
//	    <description>The capulet.lit server is no longer available</description>
//	  </state-annotation>
//	</presence>
//
// An empty annotation from the same annotator later means the link is back.
//
// This package decodes and encodes that element ([Annotation]), finds every
// annotation among a presence's children in one pass ([Find]), decides whether
// an annotator may speak about a presence at all ([CheckTrust]), and holds the
// staleness state that annotations leave on a presence entry ([Mark], [Marks]).
// It does no I/O. The roster and mucwatch packages build their models on it.
//
// Decoding never panics and never keeps unbounded input: descriptions are
// capped at [MaxDescriptionBytes] (cut at a rune boundary) and
// [MaxDescriptions] per annotation, unknown condition elements are kept by
// name only, and malformed annotations yield errors that match the exported
// sentinel errors with [errors.Is].
//
// The trust rule holds only because servers strip annotations their senders
// had no right to write: a client cannot tell who wrote an annotation it
// receives. SECURITY.md, at the root of the psakit module, describes the
// threat model.
package psa
