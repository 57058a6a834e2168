package client

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"mellium.im/xmpp/stream"

	"github.com/psakit/psakit/internal/bind"
)

// Errors returned by Dial and Err, and carried by ConnEvent.Err. They wrap
// the underlying error; match them with errors.Is.
var (
	// ErrAuth: the server refused our credentials (or offered no SASL
	// mechanism we accept). The client does not retry: retrying a wrong
	// password only locks accounts.
	ErrAuth = errors.New("client: authentication failed")
	// ErrAccount: the account JID given to Dial is no account: it is zero,
	// or a domain without a local part. Dial returns it at once, without
	// connecting.
	ErrAccount = errors.New("client: not an account JID (want user@domain)")
	// ErrInsecure: plain text was asked for a connection that is not on a
	// loopback address.
	ErrInsecure = errors.New("client: plain text allowed on loopback addresses only")
	// ErrNoService: the account domain's SRV records say that it offers no
	// client service here (a single record with target ".", RFC 6120
	// §3.2.1).
	ErrNoService = errors.New("client: no XMPP client service")
	// ErrConflict: the server closed the stream with a conflict stream error,
	// because another session bound the same resource. The client does not
	// reconnect, which would only make the two sessions take turns.
	ErrConflict = errors.New("client: resource conflict")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrBindMismatch: the server bound the session to a JID whose bare part
	// is not the account's (the error is a *BindError). The server may choose
	// the resource, nothing else. Such a session is refused, and the client
	// does not reconnect.
	ErrBindMismatch = bind.ErrMismatch
	// ErrTemporaryAuth: the server could not authenticate us for now (the
	// SASL failures temporary-auth-failure, aborted and malformed-request,
	// as when the server restarts). It is not ErrAuth: after a successful
	// Dial the client retries with its reconnect backoff; Dial itself does
	// not retry and returns it, so that the caller may try again later.
	ErrTemporaryAuth = errors.New("client: authentication failed for now")
	// ErrNoResponse: the server did not answer a keepalive ping in time
	// (see WithKeepalive), so the connection is taken for dead. The client
	// reconnects.
	ErrNoResponse = errors.New("client: the server did not answer")
	// ErrCloseTimeout: Close returned before a callback did (see
	// Client.Close).
	ErrCloseTimeout = errors.New("client: a callback did not return before the close timeout")
	// ErrNotInRoom: a groupchat message was not sent because the room,
	// stale in the model, said to a self-ping that we are not in it. The
	// room policy rejoins it; send again once EventRoomJoined came.
	ErrNotInRoom = errors.New("client: not in the room")
)

// A BindError says that the server bound a session to Bound, which is not a
// resource of Account: a misconfigured or hostile server. It matches
// ErrBindMismatch. Believing such a server would be dangerous: the bound JID's
// domain would become the account's own server, whose annotations are
// trusted on every presence.
type BindError = bind.MismatchError

//go:generate go run golang.org/x/tools/cmd/stringer@v0.51.0 -type=DisconnectReason -linecomment

// DisconnectReason classifies how a session ended.
type DisconnectReason uint8

// The reasons a session ends.
const (
	// ReasonClosed: the server closed the stream cleanly (</stream:stream>),
	// for example when it shuts down.
	ReasonClosed DisconnectReason = iota + 1 // closed
	// ReasonStreamError: the server sent a stream error (Err is a
	// stream.Error).
	ReasonStreamError // stream-error
	// ReasonNetwork: the connection failed: reset, timeout, end of file.
	ReasonNetwork // network
	// ReasonAuth: authentication failed (ErrAuth), or failed for now
	// (ErrTemporaryAuth), or the server bound the session to another
	// account's JID (ErrBindMismatch).
	ReasonAuth // auth
	// ReasonLocal: we closed the session: Close was called.
	ReasonLocal // local
)

// DisconnectError says why a session ended or could not start.
type DisconnectError struct {
	Reason DisconnectReason
	Err    error // the underlying error; nil for ReasonClosed
}

// Error implements error.
func (e *DisconnectError) Error() string {
	if e.Err == nil {
		return "client: disconnected: " + e.Reason.String()
	}
	return fmt.Sprintf("client: disconnected (%s): %v", e.Reason, e.Err)
}

// Unwrap returns the underlying error.
func (e *DisconnectError) Unwrap() error { return e.Err }

// Fatal reports whether reconnecting is pointless: authentication failed
// (not only for now), the server bound another account's JID, or another
// session took our resource.
func (e *DisconnectError) Fatal() bool {
	if e.Reason == ReasonAuth {
		return !errors.Is(e.Err, ErrTemporaryAuth)
	}
	return errors.Is(e.Err, ErrConflict) || e.Reason == ReasonLocal
}

// classify turns what Session.Serve (or connecting) returned into a
// DisconnectError. mellium reports a clean close as nil, a stream error as
// stream.Error, and a network failure as whatever the read or write failed
// with.
func classify(err error) *DisconnectError {
	var se stream.Error
	var de *DisconnectError
	switch {
	case err == nil:
		return &DisconnectError{Reason: ReasonClosed}
	case errors.As(err, &de):
		return de
	case errors.Is(err, ErrAuth), errors.Is(err, ErrTemporaryAuth), errors.Is(err, ErrBindMismatch):
		return &DisconnectError{Reason: ReasonAuth, Err: err}
	case errors.As(err, &se):
		if errors.Is(err, stream.Conflict) {
			return &DisconnectError{Reason: ReasonStreamError, Err: fmt.Errorf("%w: %w", ErrConflict, err)}
		}
		return &DisconnectError{Reason: ReasonStreamError, Err: err}
	case errors.Is(err, ErrClosed):
		return &DisconnectError{Reason: ReasonLocal, Err: err}
	case isClosed(err):
		return &DisconnectError{Reason: ReasonNetwork, Err: closedError{err}}
	}
	return &DisconnectError{Reason: ReasonNetwork, Err: err}
}

// closedError is a connection that ended in the middle of the stream: the
// peer closed it, or the network broke it. It reads "connection closed",
// not as what noticed it ("XML syntax error on line 1: unexpected EOF",
// "write: broken pipe"), and matches io.ErrUnexpectedEOF and the error
// that noticed it.
type closedError struct{ err error }

func (e closedError) Error() string   { return "connection closed" }
func (e closedError) Unwrap() []error { return []error{io.ErrUnexpectedEOF, e.err} }

// isClosed reports whether err says that the connection ended: the end of
// the input in the middle of the stream, or a write or read on a connection
// the peer closed.
func isClosed(err error) bool {
	var syntaxErr *xml.SyntaxError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		(errors.As(err, &syntaxErr) && syntaxErr.Msg == "unexpected EOF") ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// isTransport reports whether err comes from the connection rather than from
// the peer's answer: what tells a failed authentication from a failed
// network during SASL.
func isTransport(err error) bool {
	var netErr net.Error
	var syntaxErr *xml.SyntaxError
	var tlsErr tls.RecordHeaderError
	return errors.As(err, &netErr) || errors.As(err, &syntaxErr) || errors.As(err, &tlsErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrStanzaLimit)
}
