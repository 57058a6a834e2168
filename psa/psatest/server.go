package psatest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// DefaultDomain is the server's domain when no WithDomain option is given.
const DefaultDomain = "montague.lit"

// A Server is an XMPP server listening on a loopback TCP port, for tests.
// Create it with NewServer and end it with Close. All its methods are safe for
// concurrent use.
type Server struct {
	domain    jid.JID
	mucDomain jid.JID // zero without WithMUC
	log       *slog.Logger
	tlsConfig *tls.Config           // server side; nil without WithTLS
	directTLS bool                  // TLS from the first byte instead of StartTLS
	rebind    func(jid.JID) jid.JID // WithBindAnswer; nil: answer the bound JID
	sm        *smServer             // WithStreamManagement; nil without
	clientTLS *tls.Config
	ca        *x509.Certificate
	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup // every goroutine the server starts
	restartMu sync.Mutex     // serializes Restart

	mu         sync.Mutex
	closed     bool
	ln         net.Listener
	addr       string
	acceptDone chan struct{}
	refuse     bool
	users      map[string]string // localpart -> password
	rosters    map[string]*rosterData
	contacts   map[string][]contactPresence // user bare JID -> stored presences
	conns      map[*conn]struct{}
	sessions   map[string]*Session // full JID -> bound session (ended ones removed)
	rooms      map[string]*Room
	changed    chan struct{} // closed and replaced on every change waiters look at
	seq        uint64

	down map[string]Reachability // domains SetReachability cut off
}

// An Option configures NewServer.
type Option func(*config)

type config struct {
	domain string
	users  map[string]string
	tls    bool
	direct bool
	log    *slog.Logger
	muc    string
	rebind func(jid.JID) jid.JID

	sm          bool
	smHibernate time.Duration
}

// WithDomain sets the server's domain, DefaultDomain ("montague.lit") by
// default. Clients put it in their stream header, and the TLS certificate of
// WithTLS is issued for it.
func WithDomain(domain string) Option { return func(c *config) { c.domain = domain } }

// WithUser adds an account that may log in with SASL PLAIN. AddUser adds
// accounts later.
func WithUser(local, password string) Option {
	return func(c *config) { c.users[local] = password }
}

// WithTLS makes the server offer and require StartTLS, with a certificate for
// the domain (and the MUC domain and 127.0.0.1) issued by a certificate
// authority generated for this server alone. ClientTLSConfig returns a client
// configuration that trusts it.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithDirectTLS makes the server speak TLS from the first byte (XEP-0368),
// with the same generated certificate authority as WithTLS, instead of
// offering StartTLS.
func WithDirectTLS() Option { return func(c *config) { c.tls, c.direct = true, true } }

// WithLogger makes the server log connections at level Info, problems at
// Warn, and every stanza it receives and sends at Debug. By default it logs
// nothing. In a test, slog.NewTextHandler(t.Output(), opts) puts the log with
// the test's output.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithMUC adds a multi-user chat service (XEP-0045) at domain, such as
// "muc.montague.lit". Tests script its rooms with Room.
func WithMUC(domain string) Option { return func(c *config) { c.muc = domain } }

// WithBindAnswer makes the server answer every bind request with
// answer(bound) instead of bound, the full JID it bound the session to, as a
// faulty or hostile server would: it tests how a client takes a JID it did
// not ask for. The session stays bound to, and is found by, its real JID.
func WithBindAnswer(answer func(bound jid.JID) jid.JID) Option {
	return func(c *config) { c.rebind = answer }
}

// NewServer starts a server listening on 127.0.0.1 at a port chosen by the
// system. Like httptest.NewServer it panics when it cannot listen, or when an
// option is invalid (a domain or user name that is not a valid JID part).
func NewServer(opts ...Option) *Server {
	cfg := config{domain: DefaultDomain, users: make(map[string]string)}
	for _, o := range opts {
		o(&cfg)
	}
	domain, err := jid.New("", cfg.domain, "")
	if err != nil {
		panic(fmt.Sprintf("psatest: invalid domain %q: %v", cfg.domain, err))
	}
	s := &Server{
		domain:   domain,
		log:      cfg.log,
		rebind:   cfg.rebind,
		users:    make(map[string]string),
		rosters:  make(map[string]*rosterData),
		contacts: make(map[string][]contactPresence),
		conns:    make(map[*conn]struct{}),
		sessions: make(map[string]*Session),
		rooms:    make(map[string]*Room),
		changed:  make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.sm {
		s.sm = &smServer{hibernate: cfg.smHibernate, byID: make(map[string]*Session)}
	}
	if cfg.muc != "" {
		s.mucDomain, err = jid.New("", cfg.muc, "")
		if err != nil || s.mucDomain.Equal(s.domain) {
			panic(fmt.Sprintf("psatest: invalid MUC domain %q (it must differ from the server's): %v", cfg.muc, err))
		}
	}
	for local, pass := range cfg.users {
		s.AddUser(local, pass)
	}
	if cfg.tls {
		names := []string{s.domain.String()}
		if s.mucDomain.String() != "" {
			names = append(names, s.mucDomain.String())
		}
		s.ca, s.tlsConfig, err = newCertificates(names)
		if err != nil {
			panic("psatest: generating certificates: " + err.Error())
		}
		pool := x509.NewCertPool()
		pool.AddCert(s.ca)
		s.clientTLS = &tls.Config{RootCAs: pool, ServerName: s.domain.String(), MinVersion: tls.VersionTLS12}
		s.directTLS = cfg.direct
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("psatest: failed to listen on a port: " + err.Error())
	}
	s.addr = ln.Addr().String()
	s.mu.Lock()
	s.startLocked(ln)
	s.mu.Unlock()
	s.log.Info("psatest: listening", "addr", s.addr, "domain", s.domain.String(), "tls", cfg.tls)
	return s
}

// startLocked starts accepting connections on ln.
func (s *Server) startLocked(ln net.Listener) {
	s.ln = ln
	s.acceptDone = make(chan struct{})
	s.wg.Add(1)
	go s.accept(ln, s.acceptDone)
}

// Close drops every connection at once, like a network failure, stops
// listening, and waits for every goroutine of the server to end. Waiting
// calls (WaitSession, Session.Next, ...) return ErrClosed or
// ErrSessionClosed. Close may be called more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	s.cancel()
	ln := s.ln
	s.ln = nil
	conns := s.dropAllLocked()
	s.notifyLocked()
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.raw.Close()
	}
	s.wg.Wait()
	s.log.Info("psatest: closed", "addr", s.addr)
}

// Addr returns the address the server listens on, "127.0.0.1:port". It does
// not change across Restart.
func (s *Server) Addr() string { return s.addr }

// Domain returns the server's domain.
func (s *Server) Domain() jid.JID { return s.domain }

// ClientTLSConfig returns a new client TLS configuration that trusts the
// server's certificate authority, with ServerName set to the domain, or nil
// when the server was created without WithTLS.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// RootCAs returns a pool with the server's certificate authority, for
// clients that build their own TLS configuration, or nil without WithTLS.
func (s *Server) RootCAs() *x509.CertPool {
	if s.ca == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.ca)
	return pool
}

// AddUser adds an account, or changes its password. It panics if local is
// not a valid localpart.
func (s *Server) AddUser(local, password string) {
	j, err := jid.New(local, s.domain.Domainpart(), "")
	if err != nil {
		panic(fmt.Sprintf("psatest: invalid user name %q: %v", local, err))
	}
	s.mu.Lock()
	s.users[j.Localpart()] = password
	s.mu.Unlock()
}

// RefuseLogins makes every login attempt fail with the SASL failure
// not-authorized while refuse is true, as with a wrong password.
// Sessions already bound are not affected.
func (s *Server) RefuseLogins(refuse bool) {
	s.mu.Lock()
	s.refuse = refuse
	s.mu.Unlock()
}

// Restart simulates a server restart: it stops listening, drops every
// connection (as Close does), and listens again on the same address, so that
// a client that reconnects finds the server again. Users, rosters, contact
// presences and rooms are kept; sessions, and the room occupancies of their
// clients, are not. ctx bounds listening again.
func (s *Server) Restart(ctx context.Context) error {
	s.restartMu.Lock()
	defer s.restartMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	ln, acceptDone := s.ln, s.acceptDone
	s.ln = nil
	s.mu.Unlock()
	// Stop accepting first, so that no connection escapes the drop below.
	ln.Close()
	<-acceptDone
	s.DropAll()
	lc := net.ListenConfig{}
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("psatest: listening again on %s: %w", s.addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ln.Close()
		return ErrClosed
	}
	s.startLocked(ln)
	s.log.Info("psatest: restarted", "addr", s.addr)
	return nil
}

// DropAll drops every connection at once, bound or still negotiating, like a
// network failure, and waits until the server has cleaned them up.
func (s *Server) DropAll() {
	s.mu.Lock()
	conns := s.dropAllLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.raw.Close()
	}
	for _, c := range conns {
		<-c.done
	}
}

// dropAllLocked ends every session and returns every connection, which the
// caller closes once it has released the lock.
func (s *Server) dropAllLocked() []*conn {
	s.smExpireAllLocked()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
		if c.sess != nil {
			s.endLocked(c.sess, nil)
		}
	}
	return conns
}

// Sessions returns the sessions bound now, in the order they were bound.
func (s *Server) Sessions() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionsLocked(jid.JID{})
}

// sessionsLocked returns the live bound sessions of j (a full JID: that
// session; a bare JID: all of the user's; the zero JID: all), in bind order.
func (s *Server) sessionsLocked(j jid.JID) []*Session {
	var out []*Session
	if j.Resourcepart() != "" {
		if sess := s.sessions[j.String()]; sess != nil && !sess.ended {
			out = append(out, sess)
		}
		return out
	}
	all := j.String() == ""
	for _, sess := range s.sessions {
		if !sess.ended && (all || sess.jid.Bare().Equal(j)) {
			out = append(out, sess)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].seq < out[b].seq })
	return out
}

// WaitSession waits until a session is bound to j and returns it. For a bare
// JID it returns the user's earliest bound session. Sessions that ended
// (dropped, or whose stream was closed) are never returned.
//
// A session is bound, and can be sent to, from the moment the server
// decides on the client's bind request: what is sent to it is written after
// the bind result.
func (s *Server) WaitSession(ctx context.Context, j jid.JID) (*Session, error) {
	return s.waitSession(ctx, j, false)
}

// WaitAvailable is WaitSession for a session that has also sent its initial
// available presence. When it returns, the server has already queued the
// stored contact presences (SetContactPresence) for that session.
func (s *Server) WaitAvailable(ctx context.Context, j jid.JID) (*Session, error) {
	return s.waitSession(ctx, j, true)
}

func (s *Server) waitSession(ctx context.Context, j jid.JID, available bool) (*Session, error) {
	var found *Session
	err := s.wait(ctx, func() (bool, error) {
		for _, sess := range s.sessionsLocked(j) {
			if !available || sess.available {
				found = sess
				return true, nil
			}
		}
		return false, nil
	})
	return found, err
}

// wait calls cond under the lock until it reports done or an error, ctx
// ends, or the server is closed.
func (s *Server) wait(ctx context.Context, cond func() (bool, error)) error {
	for {
		s.mu.Lock()
		done, err := cond()
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		switch {
		case done || err != nil:
			return err
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes every waiter so that it checks its condition again.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// newID returns a fresh stanza id.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// targets returns the live sessions of to (full or bare), or ErrNoSession.
func (s *Server) targetsLocked(to jid.JID) ([]*Session, error) {
	if s.closed {
		return nil, ErrClosed
	}
	targets := s.sessionsLocked(to)
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoSession, to)
	}
	return targets, nil
}

// CloseStream closes the stream of the session j (a full JID), or of every
// session of the user j (a bare JID), with the stream error cond, such as
// stream.Conflict or stream.SystemShutdown, followed by the end of the
// stream. The sessions end at once; their connections close when their
// clients close their streams or connections. It returns once the error is
// written, or ErrNoSession if there is no such session.
func (s *Server) CloseStream(ctx context.Context, j jid.JID, cond stream.Error) error {
	payload, err := streamErrorBytes(cond)
	if err != nil {
		return err
	}
	s.mu.Lock()
	targets, err := s.targetsLocked(j)
	var items []*outItem
	for _, sess := range targets {
		items = append(items, s.endLocked(sess, payload))
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return waitWritten(ctx, items)
}

// streamErrorBytes returns <stream:error> with cond, and the end of the
// stream.
func streamErrorBytes(cond stream.Error) ([]byte, error) {
	toks, err := collect(cond.TokenReader())
	if err != nil {
		return nil, err
	}
	// The stream prefix is declared on the stream header mellium writes.
	b := []byte("<stream:error>")
	b = append(b, encode(inner(toks), "")...)
	return append(b, "</stream:error></stream:stream>"...), nil
}

// conn is one accepted connection.
type conn struct {
	raw  net.Conn
	done chan struct{} // closed when every goroutine of the connection ended
	sess *Session      // set at bind; guarded by Server.mu
}

// accept accepts connections until ln is closed.
func (s *Server) accept(ln net.Listener, done chan struct{}) {
	defer s.wg.Done()
	defer close(done)
	for {
		raw, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("psatest: accept failed", "err", err)
			}
			return
		}
		if s.directTLS {
			raw = tls.Server(raw, s.tlsConfig) // the handshake happens on the first read
		}
		c := &conn{raw: raw, done: make(chan struct{})}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			raw.Close()
			close(c.done)
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn negotiates a client stream on c and then serves the session
// until the connection ends.
func (s *Server) serveConn(c *conn) {
	defer s.wg.Done()
	defer close(c.done)
	defer func() {
		c.raw.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	remote := c.raw.RemoteAddr().String()
	s.log.Info("psatest: connection", "remote", remote)

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var (
		ms      *xmpp.Session
		user    string
		domain  jid.JID
		sess    *Session
		bindErr error
	)
	features := []xmpp.StreamFeature{}
	state := xmpp.Secure
	if s.tlsConfig != nil && !s.directTLS {
		features = append(features, xmpp.StartTLS(s.tlsConfig))
		state = 0
	}
	features = append(features,
		xmpp.SASLServer(func(n *sasl.Negotiator) bool {
			u, pass, _ := n.Credentials()
			local, ok := s.checkLogin(domain, string(u), string(pass))
			if ok {
				user = local
			} else {
				s.log.Warn("psatest: login refused", "remote", remote, "user", string(u))
			}
			return ok
		}, sasl.Plain),
		rosterVersioning(),
	)
	bindF := xmpp.BindCustom(func(_ jid.JID, res string) (jid.JID, error) {
		sess, bindErr = s.bind(c, user, res)
		if bindErr != nil {
			return jid.JID{}, bindErr
		}
		if s.rebind != nil {
			return s.rebind(sess.jid), nil
		}
		return sess.jid, nil
	})
	features = append(features, bindF)
	if s.sm != nil {
		features = append(features, s.smFeature(c, func() string { return user }, bindF, func(r *Session) { sess = r }))
	}
	neg := xmpp.NewNegotiator(func(m *xmpp.Session, _ *xmpp.StreamConfig) xmpp.StreamConfig {
		if m != nil {
			// The domain the client asked for in its stream header.
			domain = m.LocalAddr()
		}
		return xmpp.StreamConfig{Features: features}
	})
	ms, err := xmpp.ReceiveSession(ctx, c.raw, state, neg)
	if err != nil || sess == nil {
		if err == nil {
			err = bindErr
		}
		s.log.Info("psatest: negotiation failed", "remote", remote, "err", err)
		if sess != nil {
			s.mu.Lock()
			sess.finished = true
			s.endLocked(sess, nil)
			sess.failQueueLocked()
			s.mu.Unlock()
		}
		return
	}

	// The session has been visible since the bind decision; what was queued
	// for it since then is written now, after the bind result. A session
	// that has already ended still gets its last words written (a conflict
	// error) and is read until its client closes.
	s.mu.Lock()
	sess.out = ms.Conn()
	s.wg.Add(1)
	go sess.writeLoop()
	s.mu.Unlock()
	s.log.Info("psatest: session bound", "jid", sess.jid.String(), "remote", remote)

	graceful := s.readLoop(sess, ms)

	s.mu.Lock()
	sess.finished = true
	// A resumable session whose connection failed may hibernate, once its
	// writer has ended (below).
	smKeep := !graceful && sess.sm != nil && sess.sm.resumable && !sess.ended && !s.closed
	if !smKeep {
		s.endLocked(sess, nil)
	}
	var bye *outItem
	if graceful && !sess.outClosed {
		// The client closed its stream: close ours.
		bye = sess.enqueueLocked([]byte("</stream:stream>"))
		sess.outClosed = true
	}
	s.notifyLocked()
	s.mu.Unlock()
	if bye != nil {
		<-bye.done
	}
	c.raw.Close()
	close(sess.quit)
	<-sess.writerDone
	if smKeep {
		s.mu.Lock()
		if !s.smHibernateLocked(sess) {
			s.endLocked(sess, nil)
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
	s.log.Info("psatest: session ended", "jid", sess.jid.String(), "graceful", graceful)
}

// readLoop records and handles what the client sends until its stream or
// connection ends. It reports whether the client closed its stream.
func (s *Server) readLoop(sess *Session, ms *xmpp.Session) (graceful bool) {
	r := ms.TokenReader()
	defer r.Close()
	for {
		tok, err := r.Token()
		if err != nil {
			if err != io.EOF {
				s.log.Info("psatest: read failed", "jid", sess.jid.String(), "err", err)
			}
			return err == io.EOF
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue // whitespace between stanzas
		}
		toks, err := readElement(r, start)
		if err != nil {
			s.log.Info("psatest: read failed", "jid", sess.jid.String(), "err", err)
			return false
		}
		st := newStanza(toks)
		s.log.Debug("psatest: received", "jid", sess.jid.String(), "xml", st.String())
		s.mu.Lock()
		if sess.losing {
			s.mu.Unlock()
			continue
		}
		sess.stanzas = append(sess.stanzas, st)
		sess.taken = append(sess.taken, false)
		if !sess.ended {
			s.handleLocked(sess, st)
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// checkLogin checks SASL PLAIN credentials for a stream to domain and returns
// the normalized localpart.
func (s *Server) checkLogin(domain jid.JID, user, pass string) (string, bool) {
	j, err := jid.New(user, s.domain.Domainpart(), "")
	if err != nil || !domain.Equal(s.domain) {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want, ok := s.users[j.Localpart()]
	if s.refuse || !ok || want != pass {
		return "", false
	}
	return j.Localpart(), true
}

// bind creates the session of the connection c for user with the resource
// the client asked for, or a generated one. A session bound to the same full
// JID is replaced: its stream is closed with a conflict error.
func (s *Server) bind(c *conn, user, res string) (*Session, error) {
	if res == "" {
		res = "psatest-" + newID()
	}
	full, err := jid.New(user, s.domain.Domainpart(), res)
	if err != nil || user == "" {
		return nil, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}
	}
	if old := s.sessions[full.String()]; old != nil {
		s.log.Info("psatest: resource conflict, replacing the older session", "jid", full.String())
		payload, _ := streamErrorBytes(stream.Conflict)
		s.endLocked(old, payload)
	}
	s.seq++
	sess := &Session{
		srv:        s,
		jid:        full,
		c:          c,
		seq:        s.seq,
		delivered:  make(map[string][]xml.Token),
		pending:    make(map[string]chan Stanza),
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	s.sessions[full.String()] = sess
	c.sess = sess
	return sess, nil
}

// endLocked ends sess once: it is no longer bound, its presence goes away
// as a real server would announce it (unavailable to the user's other
// resources, to the rooms it had joined), and waiting requests fail. When
// payload is not nil it is the last thing written to the session's stream.
// It returns the write of payload, or nil.
func (s *Server) endLocked(sess *Session, payload []byte) *outItem {
	var last *outItem
	if payload != nil && !sess.outClosed {
		last = sess.enqueueLocked(payload)
		sess.outClosed = true
	}
	if sess.ended {
		return last
	}
	sess.ended = true
	if s.sessions[sess.jid.String()] == sess {
		delete(s.sessions, sess.jid.String())
	}
	if sess.available {
		sess.available = false
		s.broadcastOwnLocked(sess, el("", "presence", []xml.Attr{attr("type", "unavailable")}), false)
	}
	s.leaveRoomsLocked(sess)
	for id, ch := range sess.pending {
		close(ch)
		delete(sess.pending, id)
	}
	s.notifyLocked()
	return last
}

// rosterVersioning is the stream feature that advertises roster versioning
// (RFC 6121 §2.6.1) after authentication. It is informational: there is
// nothing to negotiate.
func rosterVersioning() xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsRosterVer, Local: "ver"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		List: func(_ context.Context, e xmlstream.TokenWriter, start xml.StartElement) (bool, error) {
			if err := e.EncodeToken(start); err != nil {
				return false, err
			}
			return false, e.EncodeToken(start.End())
		},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return false, nil, d.Skip()
		},
		Negotiate: func(context.Context, *xmpp.Session, any) (xmpp.SessionState, io.ReadWriter, error) {
			return 0, nil, nil
		},
	}
}
