// Package psatest is an in-process XMPP server for tests, in the spirit of
// net/http/httptest: it listens on a loopback TCP port, lets real clients
// (mellium sessions, psakit's client, your bot) log in, behaves like a small
// real server, and lets the test script what the server does and inspect what
// the clients sent. It speaks XEP-0310 Presence State Annotations: the test
// decides when a presence goes stale.
//
//	srv := psatest.NewServer(psatest.WithUser("romeo", "secret"), psatest.WithMUC("muc.montague.lit"))
//	defer srv.Close()
//	srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`)
//	// ... start the client under test against srv.Addr() ...
//	sess, err := srv.WaitAvailable(ctx, romeo)                  // logged in, initial presence sent
//	err = srv.Annotate(ctx, romeo, capulet, psa.Annotation{Condition: psa.ServerUnavailable})
//	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "iq" })
//	sess.Drop()                                                  // a network failure
//
// # Connecting a client
//
// The server listens on Addr (127.0.0.1 and a port chosen by the system,
// kept across Restart) for the domain DefaultDomain ("montague.lit") or the
// one of WithDomain. Clients authenticate with SASL PLAIN, the only
// mechanism mellium implements on the server side, and bind the resource
// they ask for. Server.Dial does all of it for a mellium client; by hand, in
// plain text:
//
//	conn, err := net.Dial("tcp", srv.Addr())
//	s, err := xmpp.NewSession(ctx, user.Domain(), user.Bare(), conn, xmpp.Secure,
//		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
//			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
//				xmpp.SASL("", password, sasl.Plain),
//				client.BindResource("lane"),
//			}}
//		}))
//	go s.Serve(handler)
//
// The initial state xmpp.Secure tells mellium that the connection is safe
// enough for SASL: it refuses to authenticate otherwise. A server created
// WithTLS requires StartTLS, with a certificate issued by a certificate
// authority generated for that server alone; ClientTLSConfig trusts it:
//
//	conn, err := net.Dial("tcp", srv.Addr())
//	s, err := xmpp.NewClientSession(ctx, user.Bare(), conn,
//		xmpp.StartTLS(srv.ClientTLSConfig()),
//		xmpp.SASL("", password, sasl.ScramSha256Plus, sasl.ScramSha256, sasl.Plain),
//		client.BindResource("lane"),
//	)
//
// The server offers only PLAIN, which the client picks from its list.
// client.BindResource (package github.com/psakit/psakit/client) is needed
// because the client side of mellium v0.22's xmpp.BindResource (and
// xmpp.BindCustom) always asks for an empty resource, whatever the session's
// JID: with it the server chooses the resource, as it also does for a
// client.BindResource(""). mellium's Session.Close only ends the
// stream: close the connection too, with s.Conn().Close().
//
// # What the server does
//
//   - Login: a wrong password, an unknown user, a stream to another domain,
//     or RefuseLogins, fail with the SASL failure not-authorized (mellium's
//     client returns an error whose text is "not-authorized"). A session
//     that binds the full JID of another replaces it: the older one gets the
//     stream error conflict.
//   - Roster (RFC 6121): SetRoster sets a user's items and version. Roster
//     versioning is advertised in the stream features; a fetch with the
//     current version gets an empty result, any other fetch the full roster.
//     PushRoster sends pushes with no from, as Prosody does. Roster sets from
//     clients are applied and pushed with a generated version.
//   - Presence: a client's broadcast presence is reflected to all of the
//     user's available sessions, itself included (RFC 6121 §4.2.2). After a
//     session's initial presence the server sends it the presence of the
//     user's other available sessions, then every presence stored with
//     SetContactPresence, as a real server answers its probes. Sessions that
//     end (dropped, closed, replaced) or go unavailable are announced
//     unavailable to the user's other sessions and leave their rooms.
//   - Subscriptions (RFC 6121 §3): a client's subscribe, subscribed,
//     unsubscribe and unsubscribed update its roster item (subscription,
//     ask), which is pushed, and reach a local contact, whose server side is
//     played as well; for contacts on other domains the test plays their
//     side with Subscription. Pre-approvals are not modelled.
//   - The server answers disco#info (identity server/im), disco#items and
//     XEP-0199 pings addressed to it, and service-unavailable to other
//     requests. Stanzas between local sessions are routed: a message to a
//     bare JID reaches every available session of the user. Stanzas to
//     other domains are recorded and left unanswered, but for XEP-0199
//     pings to a domain itself, which the domain answers: the test plays
//     the rest of the network, answering with SendRaw or SendMessage if it
//     wants. SetReachability cuts a domain off: Bouncing bounces messages
//     and IQ requests with remote-server-not-found, as a server whose
//     server-to-server connection is refused does; Silent drops everything
//     sent there, pings included, as a blackholed link does.
//
// # Scripting the server
//
// SendRaw writes any text to a session's stream, hostile input included.
// SendPresence builds a presence (Presence), SendMessage a message from any
// JID (Message), as a scripted contact or remote user writes to a client;
// the client's answer is recorded (Session.Next). Annotate re-sends the last
// available presence delivered from a sender with a XEP-0310 annotation, as a
// server does when it can no longer deliver that sender's updates; for that
// the server remembers, per session and sender, the last available presence
// it delivered. PushRoster, DiscoInfo and Ping send requests to clients and
// wait for their answers.
//
// Every method that sends returns once what it sent is written to the
// connections (or its context ends), so the client has it in its socket
// buffer; methods that ask return the answer. Nothing in the package sleeps
// or depends on timing.
//
// # Inspecting what clients sent
//
// A Session records every stanza its client sends. Session.Next waits for the
// first one a function accepts and that no earlier Next returned; the others
// stay available, so a test may wait for stanzas in any order.
// Session.LastPresence and Session.Caps return the client's last broadcast
// presence and its entity capabilities. WaitSession and WaitAvailable wait
// for a client to log in, and to send its initial presence.
//
// # Failures
//
// Session.Drop and DropAll close connections abruptly, as a network failure
// does. CloseStream ends streams with a stream error such as
// stream.SystemShutdown. Restart drops everyone and listens again on the same
// address, keeping users, rosters, stored presences and rooms. RefuseLogins
// makes logins fail. Close stops everything and waits for every goroutine of
// the server to end.
//
// # Stream management
//
// WithStreamManagement makes the server speak XEP-0198 (urn:xmpp:sm:3), so
// that a bot can be tested across a blip: a client that enabled resumption
// and loses its connection (Session.Drop) finds its session hibernating
// (Session.Hibernating), stanzas sent to it kept, and resumes it; after
// Session.Expire (or the hibernation time) its resumption fails and it binds
// anew. Session.LoseInput makes the link lose what the client sends, so that
// its stanzas stay unacknowledged; Session.RequestAck, Handled and
// Unacknowledged show the counts.
//
// # Multi-user chat
//
// With WithMUC the server runs a XEP-0045 service whose rooms the test
// scripts through Room. A join (presence to room@service/nick, with or
// without <x xmlns='http://jabber.org/protocol/muc'/>) is answered with the
// presences of the other occupants, the joiner's own presence with status 110
// (and 100, as rooms are non-anonymous by default; 201 when the join created
// the room; 210 when RewriteNicks changed the nick), then the subject; the
// other clients in the room receive the new occupant's presence. Joins are
// recorded (Room.NextJoin) with their password and <history/> request.
// Programmatic occupants (AddOccupant) stand for users elsewhere; Kick,
// ChangeNick, Destroy, Annotate and Forget script what services do to
// occupants, RefuseJoins and SetSelfPing what they answer. Occupant presences
// come from the occupant JID with a muc#user item (affiliation, role, and the
// real JID unless SetAnonymous). A groupchat message to room@service from an
// occupant is reflected to every client in the room, the sender included,
// from room@service/nick; Room.Say makes any occupant, a programmatic one
// included, say something. A private message to room@service/nick reaches
// that occupant's client from the sender's occupant JID. Room history is
// not implemented.
//
// # Logging
//
// WithLogger logs every stanza in and out at level Debug. In a test:
//
//	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
//	srv := psatest.NewServer(psatest.WithLogger(log))
package psatest
