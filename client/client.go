package client

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/sm"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

const (
	connectTimeout = 30 * time.Second
	// closeTimeout bounds ending a session politely: then the connection
	// is cut. The rest of CloseTimeout is for the callbacks.
	closeTimeout = 5 * time.Second
)

// ErrNotConnected is returned by Send and SetPresence while the client has
// no session: it is reconnecting.
var ErrNotConnected = errors.New("client: not connected")

// Client is an XMPP client that keeps a staleness-aware roster. Dial
// connects it; it then serves the session, reconnects when it drops, and
// delivers events to the callbacks, until Close.
type Client struct {
	account  jid.JID
	password string
	cfg      config
	t        *Tracker
	handler  xmpp.Handler // serves every session
	sm       *sm.Manager  // stream management, across the sessions
	acks     *ackWatch    // tells when the server's <a/> was handled

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	closeOnce sync.Once
	done      chan struct{}
	err       error // why the client stopped; set before done is closed

	mu    sync.Mutex
	sess  *xmpp.Session
	bound jid.JID
}

// session is one connected XMPP session and the goroutine serving it.
type session struct {
	s       *xmpp.Session
	conn    *guardedConn // the TCP connection under s
	started time.Time
	managed bool            // stream management is on for this session
	resumed bool            // the session is the previous one, resumed
	ctx     context.Context // cancelled when Serve returned
	done    chan struct{}   // closed when Serve returned
	err     error           // what Serve returned; read after done

	failOnce sync.Once
	failure  error // why we cut the connection; read after done
}

// fail ends the session because of err: the connection is cut, Serve
// returns, and the session's error is err.
func (s *session) fail(err error) {
	s.failOnce.Do(func() { s.failure = err })
	s.conn.Close()
}

// cause returns why the session ended: what fail was given, or else what
// Serve returned. Call it after done is closed.
func (s *session) cause() error {
	s.failOnce.Do(func() {}) // orders the read after a fail's write
	if s.failure != nil {
		return s.failure
	}
	return s.err
}

// Dial connects account to its server, fetches the roster, sends presence
// with caps advertising urn:xmpp:psa, and keeps the session served until
// Close. ctx bounds this first connection only, like net.Dialer.DialContext:
// once Dial returned, its expiry has no effect. It bounds all of it, stream
// negotiation included: when ctx ends, the connection is cut, whatever the
// server is doing; and an attempt never takes more than 30 s.
//
// account is user@domain, or user@domain/resource to ask the server for
// that resource (WithResource, if given, wins). A JID without a local part
// is refused at once with ErrAccount.
//
// Dial returns an error wrapping ErrAuth when the credentials are refused,
// ErrTemporaryAuth when the server cannot authenticate us for now (Dial does
// not retry; the caller may, later),
// ErrInsecure when PlainText is asked for a non-loopback address,
// ErrNoService when the domain's SRV records say it has no client service,
// and otherwise the error of connecting. After a successful Dial the client
// reconnects by itself whenever the session drops (see WithReconnect).
func Dial(ctx context.Context, account jid.JID, password string, opts ...Option) (*Client, error) {
	if account.Localpart() == "" {
		return nil, fmt.Errorf("%w: %q", ErrAccount, account.String())
	}
	cfg := newConfig(opts)
	if cfg.resource == "" {
		cfg.resource = account.Resourcepart()
	}
	t, err := newTracker(account, cfg)
	if err != nil {
		return nil, err
	}
	m, err := newMux(append(t.MuxOptions(), cfg.muxOpts...))
	if err != nil {
		t.Close()
		return nil, err
	}
	c := &Client{
		account:  account,
		password: password,
		cfg:      cfg,
		t:        t,
		handler:  t.Handler(m),
		sm:       newManager(&cfg, t.disp),
		acks:     newAckWatch(),
		done:     make(chan struct{}),
	}
	t.send = c.Send // before any session: messages are answered on the Client's
	c.ctx, c.cancel = context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, c.cancel) // ctx may abort this first attempt
	sess, err := c.connect(ctx)
	if !stop() && err == nil {
		// ctx expired just as the session came up: honour it.
		c.closeSession(sess)
		err = ctx.Err()
	}
	if err != nil {
		c.cancel()
		t.Close()
		if isClosed(err) && errors.Unwrap(err) == nil {
			err = closedError{err} // the decoder's "XML syntax error ... unexpected EOF"
		}
		return nil, err
	}
	go c.run(sess)
	return c, nil
}

// newMux builds the session's mux, turning mellium's panic for a handler
// registered twice into an error.
func newMux(opts []mux.Option) (m *mux.ServeMux, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("client: WithMux: %v", r)
		}
	}()
	return mux.New(stanza.NSClient, opts...), nil
}

// Roster returns a read-only view of the roster model: contacts, resources
// and their marks. It is safe to read from any goroutine; only the client
// changes the model.
func (c *Client) Roster() roster.View { return c.t.Roster() }

// Rooms returns a read-only view of the rooms model: the rooms we are in,
// their occupants and their marks. It is safe to read from any goroutine;
// only the client changes the model (Join and Leave ask it to).
func (c *Client) Rooms() mucwatch.View { return c.t.Rooms() }

// Join joins a room (occupant is room@service/nick) and waits for the
// service's answer; see Tracker.Join. The room policy then keeps the client
// in the room, across reconnects, until Leave.
func (c *Client) Join(ctx context.Context, occupant jid.JID, opts ...JoinOption) error {
	return c.t.Join(ctx, occupant, opts...)
}

// Leave leaves a room; see Tracker.Leave.
func (c *Client) Leave(ctx context.Context, room jid.JID, status string) error {
	return c.t.Leave(ctx, room, status)
}

// Tracker returns the Tracker the client is built on.
func (c *Client) Tracker() *Tracker { return c.t }

// JID returns the full JID bound for the current session, or for the last
// one while reconnecting.
func (c *Client) JID() jid.JID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bound
}

// Session returns the current mellium session, or nil while reconnecting.
// Use it to send IQs of your own; do not close it or call Serve. Its Conn
// is the client's wrapper around the connection (stanza limits, stream
// management): read the TLS state with the session's ConnectionState.
func (c *Client) Session() *xmpp.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// Send sends a stanza on the current session. It returns ErrNotConnected
// while the client is reconnecting. It returns when ctx ends, and in any
// case within about WriteTimeout: a server that does not take the stanza
// by then is taken for dead, and the client reconnects.
//
// A message or an IQ request to another domain is noted for the remote
// checks (WithRemoteCheck), and one without an id gets a random one: when
// our own server bounces it, saying it cannot reach that domain, the
// domain's entries are marked at once. The answer to an IQ sent with Send
// goes to the application's mux (WithMux); SendIQ waits for it instead.
func (c *Client) Send(ctx context.Context, r xml.TokenReader) error {
	s := c.Session()
	if s == nil {
		return ErrNotConnected
	}
	// A message or IQ request to a remote entity is noted (and given an id
	// when it has none), so that its bounce is a signal for the remote
	// checks.
	return sendCtx(ctx, s, c.t.remote.outgoing(r))
}

// SetPresence changes the show, status and priority of the account's
// presence, sends it now (with caps), and again on every later session.
// Like Send, it returns when ctx ends, and within about WriteTimeout.
func (c *Client) SetPresence(ctx context.Context, show presence.Show, status string, priority int8) error {
	c.t.setPresence(show, status, priority)
	s := c.Session()
	if s == nil {
		return ErrNotConnected
	}
	return sendCtx(ctx, s, c.t.presenceReader(jid.JID{}))
}

// Done is closed when the client has stopped: after Close, or when the
// session ended for good (a fatal error, or WithoutReconnect).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped, once Done is closed: nil after Close,
// a *DisconnectError otherwise.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close leaves the rooms, sends unavailable presence, closes the stream,
// stops reconnecting, and waits until every goroutine of the client has
// ended and the callbacks have received the events queued before it.
//
// A shutdown is not an outage: Close reports each room as left
// (mucwatch.EventRoomLeft, also when the service does not confirm in time)
// and no entry as stale. Afterwards the models keep their last state for
// reading: no room is tracked, and every resource carries psakit's own
// psa.LocalDisconnected mark, set without events, since nothing is heard
// any more.
//
// Close returns within CloseTimeout (8 s) whatever the server does: after
// 5 s the connection is cut if the server has not closed its side,
// or stopped reading. If a callback is still running when CloseTimeout has
// passed, Close returns ErrCloseTimeout; the callbacks then receive no
// further event, and the client's last goroutine ends as soon as that
// callback returns. Calling Close from a callback therefore returns
// ErrCloseTimeout after CloseTimeout, since that callback is still running:
// call it from another goroutine.
func (c *Client) Close() error {
	c.closeOnce.Do(c.cancel)
	timer := time.NewTimer(CloseTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
		return nil
	case <-timer.C:
		c.t.gate.Store(true)
		return ErrCloseTimeout
	}
}

// connect opens and negotiates a session, serves it, and brings the models
// in step.
func (c *Client) connect(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, raw, err := dialConn(ctx, c.account, &c.cfg)
	if err != nil {
		return nil, err
	}
	// mellium does not watch ctx while it reads during negotiation, and
	// clears the deadlines it sets: cut the connection when ctx ends.
	cut := context.AfterFunc(ctx, func() { raw.Close() })
	s, err := negotiate(ctx, conn, c.account, c.password, &c.cfg, c.sm)
	if !cut() {
		if err == nil {
			err = fmt.Errorf("negotiating the stream: %w", ctx.Err())
		} else if cerr := ctx.Err(); !errors.Is(err, cerr) {
			err = fmt.Errorf("negotiating the stream: %w (%w)", cerr, err)
		}
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	outcome := c.sm.Outcome()
	sess := &session{s: s, conn: raw, started: time.Now(), done: make(chan struct{}),
		managed: outcome == sm.OutcomeEnabled || outcome == sm.OutcomeResumed,
		resumed: outcome == sm.OutcomeResumed}
	var endServe context.CancelFunc
	sess.ctx, endServe = context.WithCancel(context.Background())
	if sess.resumed {
		// Before Serve: what the server re-sends follows ConnResumed.
		c.setSession(s)
		c.t.resumed(s)
		c.cfg.log.Info("resumed", "jid", s.LocalAddr())
		c.t.disp.pushConn(ConnEvent{Kind: ConnResumed, JID: s.LocalAddr()})
	}
	go func() {
		sess.err = s.Serve(c.acks.wrap(c.sm.Handler(c.handler)))
		// mellium's Session.Close never closes the connection. Closed
		// before the stream management is suspended, so that a stanza sent
		// meanwhile fails to send instead of being neither written nor
		// kept for re-sending.
		conn.Close()
		raw.Close()
		c.sm.Suspend()
		endServe()
		close(sess.done)
	}()
	go c.keepalive(sess)
	if sess.managed {
		go c.requestAcks(sess)
	}
	// Answers to Start come through Serve; if the session dies meanwhile
	// they never come, and mellium does not end a pending IQ when its
	// session ends, so stop waiting then.
	startCtx, stop := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.done:
			stop()
		case <-startCtx.Done():
		}
	}()
	if sess.resumed {
		err := c.resumed(startCtx, sess)
		stop()
		if err != nil {
			// Cut, not closed: the server keeps the session for the next
			// attempt to resume.
			sess.fail(err)
			<-sess.done
			c.setSession(nil)
			c.ended(err)
			return nil, err
		}
		return sess, nil
	}
	// ConnConnected goes out before our presence: the contacts' presence
	// that answers it must not reach the callbacks before it.
	connected := false
	err = c.t.start(startCtx, s, func() {
		connected = true
		c.setSession(s)
		c.cfg.log.Info("connected", "jid", s.LocalAddr())
		c.t.disp.pushConn(ConnEvent{Kind: ConnConnected, JID: s.LocalAddr()})
	})
	stop()
	if err != nil {
		c.setSession(nil)
		c.closeSession(sess)
		if cause := sess.cause(); cause != nil {
			err = fmt.Errorf("%w (the session ended: %w)", err, cause)
		}
		if connected {
			// The session was announced: end it as any session ends.
			c.ended(err)
		}
		return nil, err
	}
	return sess, nil
}

// ended reports that the announced session ended because of err: every
// entry is marked, and ConnDisconnected says why. It returns the
// classified error.
func (c *Client) ended(err error) *DisconnectError {
	derr := classify(err)
	c.t.Disconnected()
	c.cfg.log.Warn("disconnected", "reason", derr.Reason, "err", derr.Err)
	c.t.disp.pushConn(ConnEvent{Kind: ConnDisconnected, Err: derr})
	return derr
}

// setSession records the current session (nil while disconnected).
func (c *Client) setSession(s *xmpp.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess = s
	if s != nil {
		c.bound = s.LocalAddr()
	}
}

// closeSession ends a session politely: unavailable presence and the stream
// close, then waits for Serve, cutting the connection if the server does not
// close its side in time.
//
// It returns within closeTimeout whatever the server does: a server that
// stopped reading blocks the writes, which hold mellium's output lock, so at
// the deadline the TCP connection is cut under them.
func (c *Client) closeSession(sess *session) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	cut := context.AfterFunc(ctx, func() { sess.conn.Close() })
	defer cut()
	_ = sess.s.Send(ctx, stanza.Presence{Type: stanza.UnavailablePresence}.Wrap(nil))
	// Not Session.SetCloseDeadline: it replaces a context that Serve reads
	// without a lock (a data race in mellium v0.22). A read deadline on the
	// connection makes Serve return just the same if the server does not
	// close its side.
	_ = sess.s.Conn().SetReadDeadline(time.Now().Add(closeTimeout))
	_ = sess.s.Close()
	<-sess.done
}

// run serves sessions and reconnects until Close or a fatal error.
func (c *Client) run(sess *session) {
	var final error
	defer func() {
		if c.ctx.Err() != nil {
			c.t.closed() // also when Close came during a reconnect
		}
		c.t.disp.pushConn(ConnEvent{Kind: ConnClosed, Err: final})
		c.t.shutdown()
		c.err = final
		close(c.done)
	}()
	attempt := 0
	settle := time.NewTimer(0)
	if !settle.Stop() {
		<-settle.C
	}
	defer settle.Stop()
	for {
		// settle fires only after a reconnect (it was reset below).
	serving:
		for {
			select {
			case <-sess.done:
				break serving
			case <-settle.C:
				n := c.t.Sweep()
				c.t.disp.pushConn(ConnEvent{Kind: ConnResynced, Swept: n})
			case <-c.ctx.Done():
				c.setSession(nil)
				c.t.closing()
				c.closeSession(sess)
				return
			}
		}
		settle.Stop()

		c.setSession(nil)
		derr := c.ended(sess.cause())
		if derr.Fatal() || !c.cfg.reconnect {
			final = derr
			return
		}
		if time.Since(sess.started) > min(c.cfg.backoffMax, time.Minute) {
			attempt = 0 // it was a stable session, not a flap
		}

		why := derr // the previous attempt's error, for the event
		for {
			attempt++
			delay := c.backoff(attempt)
			c.t.disp.pushConn(ConnEvent{Kind: ConnReconnecting, Err: why, Attempt: attempt, Delay: delay})
			timer := time.NewTimer(delay)
			select {
			case <-timer.C:
			case <-c.ctx.Done():
				timer.Stop()
				return
			}
			next, err := c.connect(c.ctx)
			if err == nil {
				sess = next
				if !sess.resumed {
					settle.Reset(c.cfg.settle)
				}
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			why = classify(err)
			c.cfg.log.Warn("reconnect failed", "attempt", attempt, "err", err)
			if why.Fatal() {
				final = why
				return
			}
		}
	}
}

// backoff returns the delay before reconnection attempt n (from 1):
// exponential from backoffMin to backoffMax, with full jitter.
func (c *Client) backoff(n int) time.Duration {
	step := c.cfg.backoffMin
	for i := 1; i < n && step < c.cfg.backoffMax; i++ {
		step *= 2
	}
	step = min(step, c.cfg.backoffMax)
	if step <= 0 {
		return 0
	}
	return rand.N(step + 1)
}
