// Package client is psakit's imperative shell: it connects an account,
// advertises urn:xmpp:psa in its entity capabilities so that the server
// sends presence state annotations (XEP-0310), feeds every presence to the
// staleness-aware models, reconnects when the connection drops, and
// delivers events to callbacks.
//
// The simplest use is Dial:
//
//	c, err := client.Dial(ctx, jid.MustParse("bot@example.org"), password,
//		client.WithResource("bot"),
//		client.OnRoster(func(e roster.Event) {
//			log.Printf("%s %s fresh=%v %s", e.Kind, e.JID, e.Fresh(), e.Mark.Condition)
//		}),
//	)
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	for contact := range c.Roster().Contacts() { ... }
//
// A bot that answers adds OnMessage:
//
//	client.OnMessage(func(m client.Message) {
//		if m.Body == "ping" && m.Delay.IsZero() {
//			_ = m.Reply(ctx, "pong")
//		}
//	}),
//
// # What happens on the wire
//
// On every session the client fetches the roster (only the changes, when
// the server supports roster versioning), sends available presence carrying
// XEP-0115 caps whose disco#info lists urn:xmpp:psa, answers disco#info and
// XEP-0199 pings, and decodes each presence stanza once. Servers that
// implement XEP-0310 (psakit's mod_psa for Prosody does) enable annotations
// for a session when they see that feature in its caps.
//
// # Threads of control
//
// mellium calls handlers one at a time on the session's read goroutine, and
// a slow handler stalls the whole stream. So the models are updated on that
// goroutine (they are pure and O(1) per presence), and everything slow runs
// elsewhere: events go through an ordered, bounded queue to one dispatcher
// goroutine that calls the callbacks; verifications run on their own
// goroutine. Callbacks are called one at a time, in order. To serve bursts
// with few wake-ups, an event may wait up to 200µs before the callbacks run
// (at once when many wait). If they fall behind by more than WithQueueSize
// events, model events are dropped and counted, and OnOverflow is told how
// many; connection events and room policy actions are never dropped. The
// models are always current: after an overflow, read their snapshots again.
//
// Messages take the same path: OnMessage is a callback like the others,
// called on the callback goroutine in order with them, so it may block,
// answer with Reply or SendMessage, or Join a room, without stalling the
// stream. Mux handlers added with WithMux are the exception: mellium calls
// them on the read goroutine, so they must return quickly and never wait
// for an answer the stream brings (an IQ result, a join): they would wait
// until their context ends, with the stream stalled.
//
// Close ends every goroutine the client started.
//
// # Messages
//
// A bot receives messages with OnMessage, decoded into a Message (sender,
// type, body, thread, the delay of history, the error of a bounce), and
// answers with its Reply method: to the room for a groupchat message, to the
// sender otherwise. (The first messages may arrive before Dial returns:
// those the server kept while the account was offline.) SendMessage starts a conversation. A room reflects our own
// groupchat messages back to us, and sends its history, marked with Delay,
// on join: a bot that answers commands skips both. For other payloads and
// for IQs of its own, an application registers mellium mux handlers with
// WithMux.
//
// Rooms and messages meet in two places (XEP-0310's business rule: check
// that we are still in a room): a groupchat message to a room the model
// holds stale is preceded by a XEP-0410 self-ping, and not sent
// (ErrNotInRoom) when the room says we are not in it; and a room that
// answers a message of ours with an error is self-pinged. Either way the
// room policy rejoins a room that dropped us.
//
// # Bounds
//
// Every call returns within a bound whatever the server does: answers
// nothing, one byte a second, stops reading, or freezes with its TCP
// connection up.
//
//   - Dial, and each reconnection attempt, honour their context during
//     stream negotiation too: the connection is cut when it ends. An
//     attempt takes at most 30 s.
//   - Every write has a deadline of WriteTimeout (15 s); a write that misses
//     it ends the connection as a network failure. Send and SetPresence
//     also return when their context ends.
//   - Close returns within CloseTimeout (8 s): the session is given 5 s to
//     end politely, then the connection is cut; the callbacks get what is
//     left. A callback still running then makes Close return
//     ErrCloseTimeout; the client's last goroutine ends when that callback
//     returns, and no callback is called after it.
//   - A connection that has received nothing for 30 s is checked with a
//     XEP-0199 ping to the server (with stream management, an <r/>); no
//     answer within 15 s counts as a network failure (ErrNoResponse). So a
//     frozen server is noticed within 45 s by default (WithKeepalive).
//
// What a peer sends can cost this process only so much memory. The client
// reads stanzas of at most WithMaxStanzaSize bytes (4 MiB by default)
// nested at most WithMaxStanzaDepth deep (64), checked on the bytes before
// they are decoded: a larger or deeper one ends the session with
// ErrStanzaLimit, and the client reconnects. The queue of events holds at
// most WithQueueSize events and WithQueueBytes bytes (32 MiB, estimated from
// the strings the events hold), a disconnect's stale events included. The
// roster bounds the presence of strangers and of everyone in bytes
// (roster.WithMaxStrangerBytes, 8 MiB; roster.WithMaxBytes, 256 MiB), each
// room the bytes of its occupants (mucwatch.WithMaxRoomBytes, 32 MiB); past
// a budget, presence is rejected with an ErrLimit event, never stored.
//
// # When the connection drops
//
// Every roster entry is marked psa.LocalDisconnected (one batch of stale
// events): from then on nothing the client shows can be trusted to be
// current. The client reconnects with exponential backoff and full jitter.
//
// When the server offers XEP-0198 stream management, which the client then
// enabled with resumption (WithStreamManagement), it first asks to resume
// the session. Resumed (ConnResumed), nothing was lost: the client re-sends
// what the server had not acknowledged, before anything new; the server
// re-sends what it sent meanwhile, which updates the models; then every
// entry is restored at once, without a sweep (ConnResynced, Swept 0). The
// roster is not fetched, no presence is sent, no room is rejoined. When the
// server no longer has the session, the client says so with ConnConnected
// instead, hands the stanzas never acknowledged to OnUnacked, and takes the
// full path below.
//
// Without a resumption the client re-fetches the roster by version, sends
// its presence again, rejoins its rooms, and after a settle window
// (WithSettle) removes, with unavailable events, the entries the server did
// not send again. Refused credentials, resource conflicts
// and a server that binds the session to another account's JID
// (ErrBindMismatch) are final: the client stops and Err says why. A server
// that cannot authenticate us for now (temporary-auth-failure, as while it
// restarts) is retried with the same backoff (ErrTemporaryAuth).
//
// # Restore policy
//
// When an annotator clears its mark with an empty annotation, the presence
// the model shows is the one delivered before the outage. The restore policy
// (WithVerify) checks it: by default a XEP-0199 ping to the full JID,
// rate-limited, whose outcome is reported through OnVerify (a ping answered
// service-unavailable, which a server says for a resource that is gone and a
// client without ping support says too, is followed by a disco#info query
// that every client answers). VerifyProbe
// sends a presence probe instead; RFC 6121 §4.3 says clients SHOULD NOT,
// which is why it is not the default, but Prosody 0.12 answers a client's
// probe for a subscribed contact with the contact's current presence, or
// with unavailable from the bare JID when it is offline, and the model then
// updates by itself (checked against Prosody 0.12.3).
//
// # Reading the models
//
// Roster and Rooms return read-only views (roster.View, mucwatch.View) of
// the models the read goroutine updates: snapshots, iterators and counts,
// safe from any goroutine. Only the client changes the models; Join and
// Leave ask the rooms model to.
//
// # Bringing your own session
//
// Applications that already own a mellium session use a Tracker: its
// Handler decodes presence in front of their mux, MuxOptions answer
// disco#info, ping and roster pushes, and Start, Disconnected and Sweep are
// the small driver around Serve. Client is a Tracker plus the connection
// lifecycle. NewTracker takes TrackerOptions; Dial takes those and the
// ConnOptions, which configure what only a Client has (its connection,
// reconnects, keepalive and mux).
//
// # Where each behaviour lives
//
//   - client.go: Client, Dial, the session loop (reconnect with backoff,
//     settle and sweep), Close.
//   - connect.go: one connection: server addresses (SRV), TLS, SASL,
//     resource binding (BindResource). saslcond.go classifies SASL failures;
//     errors.go holds the typed errors and what ends a session for good.
//   - resume.go: stream management (XEP-0198) in the Client: the one
//     manager across reconnects, OnUnacked's batches, the acknowledgement
//     that brings a resumed session in step, acknowledgement requests
//     after sends.
//   - deadline.go, limitconn.go, keepalive.go: the bounds on a connection:
//     write deadlines, stanza size and depth, the keepalive ping.
//   - tracker.go: Tracker: the presence tap (Handler), roster fetch and
//     pushes, Start, Disconnected, Sweep.
//   - dispatch.go, eventsize.go, gate.go: the ordered, bounded event queue
//     and the callback goroutine; events.go: connection events.
//   - message.go: Message, OnMessage's decoding, Reply and SendMessage.
//   - verify.go: the restore policy (WithVerify).
//   - remote.go: remote checks (WithRemoteCheck's machinery), driving
//     internal/reach.
//   - join.go: Join, Leave, and the waiters that hand them the service's
//     answer.
//   - roomplan.go: the room policy's decisions (RoomPolicy, what to do after
//     each room event, verdict and reconnect, and when), without I/O.
//   - rooms.go: the room policy's goroutine and I/O: self-pings, rejoins,
//     instant-room configuration, the self-ping before a message to a stale
//     room.
//   - options.go: every option (Option, ConnOption, TrackerOption) and the
//     defaults they change.
package client
