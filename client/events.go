package client

import (
	"time"

	"mellium.im/xmpp/jid"
)

//go:generate go run golang.org/x/tools/cmd/stringer@v0.51.0 -type=ConnEventKind -linecomment

// ConnEventKind says what happened to the connection.
type ConnEventKind uint8

// The kinds of connection events.
const (
	// ConnConnected: a new session is up (not a resumed one: see
	// ConnResumed) and the roster fetched; our presence
	// is sent right after, so the session's presence events follow this
	// one. JID is the bound full JID. Should sending the presence fail,
	// ConnDisconnected follows.
	ConnConnected ConnEventKind = iota + 1 // connected
	// ConnDisconnected: the session ended; Err (a *DisconnectError) says
	// why. Every roster entry is marked psa.LocalDisconnected.
	ConnDisconnected // disconnected
	// ConnReconnecting: the client waits Delay before attempt number Attempt;
	// Err (a *DisconnectError) is the previous attempt's error: why the
	// session ended, for the first attempt after it, and why the previous
	// attempt failed, for the next ones.
	ConnReconnecting // reconnecting
	// ConnResynced: the settle window after a reconnect is over; Swept
	// resources that the server did not send again were removed. After
	// ConnResumed it comes once the stanzas the server kept were applied:
	// every entry is current again, and Swept is 0.
	ConnResynced // resynced
	// ConnClosed: the client stopped, after Close or a fatal error (Err).
	// It is the last event.
	ConnClosed // closed
	// ConnResumed: the session that dropped was resumed (XEP-0198 stream
	// management) instead of a new one being bound: JID is the same full
	// JID, nothing was lost, the roster is not fetched again and no room is
	// rejoined. The stanzas the server kept while the connection was down
	// follow, then every entry the drop marked is restored (not swept),
	// then ConnResynced with Swept 0. Comes instead of ConnConnected.
	ConnResumed // resumed
)

// ConnEvent is a change of the connection.
type ConnEvent struct {
	Kind    ConnEventKind
	JID     jid.JID       // the bound full JID (ConnConnected, ConnResumed)
	Err     error         // why (ConnDisconnected, ConnReconnecting, ConnClosed); a *DisconnectError or nil
	Attempt int           // the attempt number, from 1 (ConnReconnecting)
	Delay   time.Duration // the wait before the attempt (ConnReconnecting)
	Swept   int           // resources removed (ConnResynced)
}
