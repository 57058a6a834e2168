package client

import (
	"time"

	"mellium.im/xmpp/jid"
)

// ConnEventKind says what happened to the connection.
type ConnEventKind uint8

// The kinds of connection events.
const (
	// ConnConnected: a session is up and the roster fetched; our presence
	// is sent right after, so the session's presence events follow this
	// one. JID is the bound full JID. Should sending the presence fail,
	// ConnDisconnected follows.
	ConnConnected ConnEventKind = iota + 1
	// ConnDisconnected: the session ended; Err (a *DisconnectError) says
	// why. Every roster entry is marked psa.LocalDisconnected.
	ConnDisconnected
	// ConnReconnecting: the client waits Delay before attempt number Attempt.
	ConnReconnecting
	// ConnResynced: the settle window after a reconnect is over; Swept
	// resources that the server did not send again were removed.
	ConnResynced
	// ConnClosed: the client stopped, after Close or a fatal error (Err).
	// It is the last event.
	ConnClosed
)

var connNames = [...]string{
	ConnConnected:    "connected",
	ConnDisconnected: "disconnected",
	ConnReconnecting: "reconnecting",
	ConnResynced:     "resynced",
	ConnClosed:       "closed",
}

// String returns the lower-case name of the kind.
func (k ConnEventKind) String() string {
	if int(k) < len(connNames) && connNames[k] != "" {
		return connNames[k]
	}
	return "unknown"
}

// ConnEvent is a change of the connection.
type ConnEvent struct {
	Kind    ConnEventKind
	JID     jid.JID       // the bound full JID (ConnConnected)
	Err     error         // why (ConnDisconnected, ConnClosed); a *DisconnectError or nil
	Attempt int           // the attempt number, from 1 (ConnReconnecting)
	Delay   time.Duration // the wait before the attempt (ConnReconnecting)
	Swept   int           // resources removed (ConnResynced)
}
