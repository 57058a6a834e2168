package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"mellium.im/xmpp/mux"

	"github.com/psakit/psakit/caps"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// TLSMode says how the connection to the server is secured.
type TLSMode uint8

// The TLS modes.
const (
	// StartTLS connects in plain text and upgrades with STARTTLS before
	// anything else is sent (RFC 6120 §5). The default.
	StartTLS TLSMode = iota
	// DirectTLS speaks TLS from the first byte (XEP-0368).
	DirectTLS
	// PlainText never encrypts. It is refused unless the server address is
	// a loopback address: it exists for tests and local development.
	PlainText
)

// Defaults of the options.
const (
	DefaultBackoffMin = 500 * time.Millisecond
	DefaultBackoffMax = 2 * time.Minute
	// DefaultSettle is how long after a reconnect the client waits for the
	// server to send presence again before it removes the resources that were
	// not refreshed (Sweep).
	DefaultSettle = 10 * time.Second
	// DefaultQueueSize is how many events may wait for the callbacks before
	// further events are dropped (see OnOverflow).
	DefaultQueueSize = 100_000
	// DefaultQueueBytes is how much memory the events waiting for the
	// callbacks may hold, estimated from the strings they refer to, before
	// further events are dropped (see OnOverflow): 32 MiB.
	DefaultQueueBytes = 32 << 20
	// DefaultVerifyRate is how many verifications per second the restore
	// policy sends at most.
	DefaultVerifyRate = 10
)

// Option configures a Client: Dial takes every TrackerOption (a Client is
// built on a Tracker) and every ConnOption.
type Option interface{ apply(*config) }

// TrackerOption configures a Tracker (NewTracker), or the Tracker a Client
// is built on (Dial): its models, callbacks, queue, caps and policies.
type TrackerOption func(*config)

// ConnOption configures what only a Client has: its connection to the
// server, reconnects and keepalive, and the session's mux. NewTracker does
// not take one: the application that owns the session decides those.
type ConnOption func(*config)

func (o TrackerOption) apply(c *config) {
	if o != nil {
		o(c)
	}
}

func (o ConnOption) apply(c *config) {
	if o != nil {
		o(c)
	}
}

type config struct {
	addr       string
	tlsMode    TLSMode
	tlsConfig  *tls.Config
	resource   string
	reconnect  bool
	backoffMin time.Duration
	backoffMax time.Duration
	settle     time.Duration

	keepaliveInterval time.Duration
	keepaliveTimeout  time.Duration
	writeTimeout      time.Duration

	show     presence.Show
	status   string
	priority int8

	capsNode string
	capsOpts []caps.Option

	rosterOpts []roster.Option
	roomOpts   []mucwatch.Option
	roomPolicy RoomPolicy

	onRoster   func(roster.Event)
	onRoom     func(mucwatch.Event)
	onAction   func(RoomAction)
	onConn     func(ConnEvent)
	onVerify   func(VerifyResult)
	onPresence func(presence.Presence)
	onMessage  func(Message)
	onOverflow func(dropped int)
	muxOpts    []mux.Option
	queueSize  int
	queueBytes int

	maxStanzaSize  int
	maxStanzaDepth int

	verify     VerifyPolicy
	verifyRate float64

	remoteCheck   time.Duration // WithRemoteCheck, DefaultRemoteCheck unless set; <= 0: off
	remoteTimeout time.Duration // RemoteCheckTimeout when 0; tests shorten it

	log         *slog.Logger
	passthrough bool

	noSM         bool                         // WithStreamManagement(false)
	unackedBytes int                          // WithUnackedBytes
	onUnacked    func([]UnackedStanza, error) // OnUnacked

	resolver *net.Resolver
	// lookupSRV is resolver.LookupSRV; TestServerAddrs replaces it.
	lookupSRV func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

func newConfig[O Option](opts []O) config {
	c := config{
		reconnect:  true,
		backoffMin: DefaultBackoffMin,
		backoffMax: DefaultBackoffMax,
		settle:     DefaultSettle,

		keepaliveInterval: DefaultKeepaliveInterval,
		keepaliveTimeout:  DefaultKeepaliveTimeout,
		writeTimeout:      WriteTimeout,
		queueSize:         DefaultQueueSize,
		queueBytes:        DefaultQueueBytes,
		unackedBytes:      DefaultUnackedBytes,
		maxStanzaSize:     DefaultMaxStanzaSize,
		maxStanzaDepth:    DefaultMaxStanzaDepth,
		verify:            VerifyPing,
		verifyRate:        DefaultVerifyRate,
		roomPolicy:        DefaultRoomPolicy(),
		remoteCheck:       DefaultRemoteCheck,
	}
	for _, o := range opts {
		if any(o) != nil {
			o.apply(&c)
		}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With(slog.String("lib", "psakit"))
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	if c.lookupSRV == nil {
		c.lookupSRV = c.resolver.LookupSRV
	}
	return c
}

// WithAddress connects to host:port instead of looking up the account
// domain's SRV records (_xmpp-client._tcp, or _xmpps-client._tcp for
// DirectTLS, falling back to the domain on port 5222 or 5223).
func WithAddress(hostport string) ConnOption { return func(c *config) { c.addr = hostport } }

// WithResolver resolves the account domain's SRV records and the server's
// host names with r instead of net.DefaultResolver: for instance a resolver
// whose Dial asks one particular DNS server. nil means the default.
func WithResolver(r *net.Resolver) ConnOption { return func(c *config) { c.resolver = r } }

// WithTLS sets how the connection is secured (StartTLS by default).
func WithTLS(mode TLSMode) ConnOption { return func(c *config) { c.tlsMode = mode } }

// WithTLSConfig sets the TLS configuration, for instance RootCAs for a
// private CA. It is cloned; an empty ServerName is set to the account's
// domain, and MinVersion is raised to TLS 1.2.
func WithTLSConfig(cfg *tls.Config) ConnOption {
	return func(c *config) { c.tlsConfig = cfg.Clone() }
}

// WithResource asks the server to bind this resource, instead of the
// resource of the account JID given to Dial. The server may assign another
// one; Client.JID tells which. Without either the server picks one.
func WithResource(name string) ConnOption { return func(c *config) { c.resource = name } }

// WithReconnect sets the backoff between reconnection attempts: exponential
// from min to max with full jitter (a random delay between zero and the
// current step).
func WithReconnect(minDelay, maxDelay time.Duration) ConnOption {
	return func(c *config) {
		c.reconnect = true
		c.backoffMin, c.backoffMax = minDelay, max(maxDelay, minDelay)
	}
}

// WithoutReconnect makes the client end, with Err set, when its session ends
// instead of reconnecting.
func WithoutReconnect() ConnOption { return func(c *config) { c.reconnect = false } }

// WithSettle sets how long after a reconnect the client waits for the server
// to send presence again before it removes the resources that were not
// refreshed (DefaultSettle).
func WithSettle(d time.Duration) ConnOption { return func(c *config) { c.settle = d } }

// WithPresence sets the show, status and priority of the available presence
// the client sends on every session.
func WithPresence(show presence.Show, status string, priority int8) TrackerOption {
	return func(c *config) { c.show, c.status, c.priority = show, status, priority }
}

// WithIdentity sets the service discovery identity the account advertises
// (client/bot "psakit" by default).
func WithIdentity(category, typ, name string) TrackerOption {
	return func(c *config) { c.capsOpts = append(c.capsOpts, caps.WithIdentity(category, typ, name, "")) }
}

// WithFeatures adds features to those the account advertises (caps,
// disco#info, ping and urn:xmpp:psa are always there).
func WithFeatures(features ...string) TrackerOption {
	return func(c *config) { c.capsOpts = append(c.capsOpts, caps.WithFeatures(features...)) }
}

// WithCapsNode sets the entity capabilities node (caps.DefaultNode).
func WithCapsNode(node string) TrackerOption { return func(c *config) { c.capsNode = node } }

// WithRosterOptions passes options to the roster model, such as its limits.
func WithRosterOptions(opts ...roster.Option) TrackerOption {
	return func(c *config) { c.rosterOpts = append(c.rosterOpts, opts...) }
}

// OnRoster sets the callback for roster events.
func OnRoster(f func(roster.Event)) TrackerOption { return func(c *config) { c.onRoster = f } }

// WithRoomPolicy sets the room policy (DefaultRoomPolicy).
func WithRoomPolicy(p RoomPolicy) TrackerOption { return func(c *config) { c.roomPolicy = p } }

// WithRoomOptions passes options to the rooms model, such as its limits.
func WithRoomOptions(opts ...mucwatch.Option) TrackerOption {
	return func(c *config) { c.roomOpts = append(c.roomOpts, opts...) }
}

// JoinOption configures one Join (Client.Join, Tracker.Join); its names
// begin with Join, so that a room's password is never taken for the
// account's.
type JoinOption func(*joinParams)

type joinParams struct {
	password string
	history  int // stanzas of history asked for the first join
}

// JoinPassword sets the room's password (XEP-0045 §7.2.6). It is sent again
// on every rejoin.
func JoinPassword(password string) JoinOption { return func(p *joinParams) { p.password = password } }

// JoinHistory asks for up to n messages of discussion history on the first
// join (none by default). Rejoins never ask for history: the application
// already saw it.
func JoinHistory(n int) JoinOption { return func(p *joinParams) { p.history = max(n, 0) } }

// OnRoom sets the callback for room events.
func OnRoom(f func(mucwatch.Event)) TrackerOption { return func(c *config) { c.onRoom = f } }

// OnRoomAction sets the callback for what the room policy does.
func OnRoomAction(f func(RoomAction)) TrackerOption { return func(c *config) { c.onAction = f } }

// OnConnection sets the callback for connection events.
func OnConnection(f func(ConnEvent)) ConnOption { return func(c *config) { c.onConn = f } }

// OnVerify sets the callback for the outcomes of the restore policy.
func OnVerify(f func(VerifyResult)) TrackerOption { return func(c *config) { c.onVerify = f } }

// OnPresence sets a callback for the presence stanzas that no model
// consumes: subscription requests and answers, probes and errors.
func OnPresence(f func(presence.Presence)) TrackerOption { return func(c *config) { c.onPresence = f } }

// OnMessage sets the callback for the messages the client receives: direct
// messages, groupchat messages of the rooms it is in (its own included, as
// the room reflects them), bounces of those it sent (Type error). It runs on
// the callback goroutine, in order with the other callbacks, so it may take
// its time and answer with Message.Reply, or call Send or Join; meanwhile the stream keeps being
// read and later events wait in the queue. Messages count against the
// queue's bounds like presences (WithQueueSize, WithQueueBytes): when the
// callbacks fall behind, they are dropped and counted for OnOverflow. With
// a Tracker, its Handler calls it too.
func OnMessage(f func(Message)) TrackerOption { return func(c *config) { c.onMessage = f } }

// WithMux adds mellium mux options to the client's session handler: message
// and IQ handlers of the application (mux.MessageFunc, mux.IQFunc), and the
// features and identities it advertises with mux.Feature and mux.Ident.
// Dial returns an error for a handler registered twice, or for an IQ
// handler the client has itself: disco#info get, ping get, roster set.
//
// Mux handlers run on the session's read goroutine, one at a time: while one
// runs, nothing else is read, IQ results and presences included. So a mux
// handler must return quickly: it may answer an IQ by writing to its
// xmlstream.TokenReadEncoder, but must not wait for anything the stream
// brings (Session.SendIQ, ping.Send, Client.Join: they deadlock until their
// context ends), nor for a slow consumer; hand such work to a goroutine or
// use OnMessage. A handler that returns an error ends the session (mellium
// closes the stream), and the client reconnects: report bad input with an
// error reply and return nil. An IQ get or set left unanswered is answered
// service-unavailable. Presence never reaches these handlers (the models
// decode it; see WithPresencePassthrough). A Tracker does not take it: its
// application builds the mux.
func WithMux(opts ...mux.Option) ConnOption {
	return func(c *config) { c.muxOpts = append(c.muxOpts, opts...) }
}

// OnOverflow sets the callback told how many events were dropped because
// the callbacks fell behind by more than the queue size. It runs in order
// with the other callbacks, after the events queued before the drop. After
// an overflow, read the models' snapshots again: they are always current.
func OnOverflow(f func(dropped int)) TrackerOption { return func(c *config) { c.onOverflow = f } }

// WithQueueSize sets how many events may wait for the callbacks
// (DefaultQueueSize). Besides them, the events being delivered are held: at
// most as many again.
func WithQueueSize(n int) TrackerOption { return func(c *config) { c.queueSize = max(n, 1) } }

// WithQueueBytes sets how much memory the events waiting for the callbacks
// may hold (DefaultQueueBytes), estimated from the strings each refers to:
// once it is reached, further model events are dropped and counted for
// OnOverflow, as with WithQueueSize. Besides them, the events being
// delivered are held: at most as much again. A disconnect's stale events
// are built only up to this figure; the resources past it are marked all
// the same, and counted as dropped.
func WithQueueBytes(n int) TrackerOption { return func(c *config) { c.queueBytes = max(n, 1) } }

// WithMaxStanzaSize sets the most bytes a stanza read from the server may
// have (DefaultMaxStanzaSize), counted on the wire, from the '<' that opens
// it to the '>' that closes it; the text between two stanzas counts
// against it as well. A larger stanza ends the session with ErrStanzaLimit
// before the XML decoder buffers it, and the client reconnects. Raise it
// for a roster of more than about 20,000 items, which the server sends as
// one stanza.
func WithMaxStanzaSize(n int) TrackerOption { return func(c *config) { c.maxStanzaSize = max(n, 1) } }

// WithMaxStanzaDepth sets how deep the elements of a stanza read from the
// server may nest, the stanza itself included (DefaultMaxStanzaDepth).
// Deeper nesting ends the session with ErrStanzaLimit, as WithMaxStanzaSize.
func WithMaxStanzaDepth(n int) ConnOption { return func(c *config) { c.maxStanzaDepth = max(n, 1) } }

// WithVerify sets the restore policy (VerifyPing by default) and how many
// verifications per second it may send.
func WithVerify(policy VerifyPolicy, perSecond float64) TrackerOption {
	return func(c *config) {
		c.verify = policy
		if perSecond > 0 {
			c.verifyRate = perSecond
		}
	}
}

// WithLogger sets the logger for reports: connections, reconnects, and
// stanzas that were malformed or rejected. Every record carries the
// attribute lib=psakit. By default nothing is logged.
func WithLogger(l *slog.Logger) TrackerOption { return func(c *config) { c.log = l } }

// WithPresencePassthrough makes a Tracker's Handler pass presence stanzas on
// to the wrapped handler after decoding them, for applications that have
// presence handlers of their own (on a Client: mux handlers of WithMux). It
// costs a copy of each presence's tokens.
func WithPresencePassthrough() TrackerOption { return func(c *config) { c.passthrough = true } }

// WithKeepalive sets how the client checks that its server is alive: when
// the connection has received nothing for interval, it sends a XEP-0199
// ping to the server (with stream management, an acknowledgement request,
// XEP-0198's <r/>), and when no answer comes within timeout it takes the
// connection for dead, as a network failure: every entry is marked
// local-disconnected and the client reconnects. A frozen server is so
// noticed within interval + timeout. interval <= 0 turns the check off;
// timeout <= 0 means interval, at most DefaultKeepaliveTimeout. By default
// DefaultKeepaliveInterval and DefaultKeepaliveTimeout.
func WithKeepalive(interval, timeout time.Duration) ConnOption {
	return func(c *config) {
		if timeout <= 0 {
			timeout = min(interval, DefaultKeepaliveTimeout)
		}
		c.keepaliveInterval, c.keepaliveTimeout = interval, timeout
	}
}

// WithStreamManagement turns XEP-0198 stream management on or off. It is
// on by default and used whenever the server offers it (Prosody's
// mod_smacks, ejabberd): after a network failure the client resumes its
// session instead of binding a new one, so a short drop costs only the
// stanzas the server kept meanwhile. The client announces it with
// ConnResumed instead of ConnConnected, does not fetch the roster or
// rejoin rooms, applies what the server re-sends, and then clears the
// psa.LocalDisconnected marks without a sweep (ConnResynced, Swept 0).
// While the session waits for its client, the server tells the contacts
// nothing (mod_psa tells them that the account's connection is paused).
// When the server no longer has the session (its hibernation time is
// over), the client falls back to a new session and the full resync, and
// hands the stanzas the server never acknowledged to OnUnacked.
//
// With stream management on, the keepalive (WithKeepalive) asks the server
// for its acknowledgement count instead of pinging it: an <r/> unanswered
// within the timeout is a network failure. The client also asks, shortly
// after it sends, so that what it keeps for re-sending stays small.
func WithStreamManagement(on bool) ConnOption { return func(c *config) { c.noSM = !on } }

// DefaultUnackedBytes is how many bytes of sent stanzas the client keeps
// for re-sending until the server acknowledges them, unless
// WithUnackedBytes says otherwise.
const DefaultUnackedBytes = 1 << 20

// WithUnackedBytes bounds the bytes of sent stanzas the client keeps, with
// stream management, until the server acknowledges them (default
// DefaultUnackedBytes). Past it the oldest go to OnUnacked with
// ErrUnackedOverflow and can no longer be re-sent after a drop; a single
// stanza larger than n is never kept (UnackedStanza.Raw is nil). The client
// asks for acknowledgements a quarter of a second after it sends, so only
// what it sends within about one round trip to the server waits here.
func WithUnackedBytes(n int) ConnOption {
	return func(c *config) { c.unackedBytes = max(n, 1) }
}

// OnUnacked sets the callback that receives the stanzas the server never
// acknowledged when they can no longer be re-sent (XEP-0198): after a
// resumption failed (reason ErrResumeFailed), or when the stanzas waiting
// for an acknowledgement exceeded what the client keeps
// (ErrUnackedOverflow). Such a stanza may or may not have been delivered;
// the application decides whether to send it again. Stanzas are never
// re-sent on a new session by the client itself. The callback runs in order
// with the other callbacks.
func OnUnacked(f func(stanzas []UnackedStanza, reason error)) ConnOption {
	return func(c *config) { c.onUnacked = f }
}

// WithRemoteCheck sets how often the client checks, by itself, that the
// remote domains it depends on are in reach, for servers that do not
// annotate presence (XEP-0310). The checks are on by default, every
// DefaultRemoteCheck; interval <= 0 turns them off.
//
// Every interval, plus up to a quarter of it at random, the client pings
// each remote domain that has available contacts or rooms the account sits
// in (XEP-0199). The jitter keeps the checks of many domains, and of many
// clients that reconnect together after their server restarts, from coming
// in step; the first check of a domain comes at a random time within its
// first interval, so that logging in with contacts on hundreds of domains
// sends no burst. A domain is also checked at once when our own server
// bounces something the client or the application sent there
// (remote-server-not-found, remote-server-timeout, recipient-unavailable),
// or a room's self-ping cannot decide. A domain that answers, with a result
// or an error of its own, is reachable; a remote-server error from our own
// server, or no answer within RemoteCheckTimeout, makes it unreachable:
// every contact's resource and every room on it then carries
// psa.InferredMark (condition server-unavailable, annotator
// DOMAIN/psakit-inferred, Mark.Inferred reports it) until a check succeeds
// again, when the mark goes and the restore policy verifies the entries.
//
// While a domain stays unreachable the checks back off, doubling up to four
// intervals: ejabberd bounces at once for 1–300 s after a failed
// server-to-server attempt (its s2s_max_retry_delay), so checks closer than
// that learn nothing, and Prosody tries the link again with every stanza,
// waiting up to its s2s_timeout (90 s) on a connection that is not
// answered. All checks together are rate-limited (4 a second), none is sent
// while the client's own stream is down, and a domain with nothing
// available is never pinged.
//
// Inferred marks and a server's annotations live side by side, one mark
// per annotator: a server running mod_psa marks an entry with its own
// domain as annotator, psakit with DOMAIN/psakit-inferred, and an entry is
// fresh only when it carries neither. Turn the checks off when the account's
// server annotates presence and its word is enough, when every ping to a
// remote domain costs (a metered link, a server that rate-limits IQs
// harshly), or when a remote server leaves IQs unanswered (RFC 6120
// forbids it, but such a domain would look unreachable).
func WithRemoteCheck(interval time.Duration) TrackerOption {
	return func(c *config) { c.remoteCheck = interval }
}
