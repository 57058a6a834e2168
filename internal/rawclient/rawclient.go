// Package rawclient is a minimal raw XMPP client for wire-level tests: it
// sends XML strings as they are and hands every received stanza to the test
// as a parsed Element, so tests see exactly what a server emits.
//
// It does what a test needs and nothing more: TCP (plain text, or StartTLS
// with a given tls.Config), SASL PLAIN, binding a named resource, XEP-0115
// caps with a configured feature set (or a wrong ver, for negative tests),
// answering disco#info and XEP-0199 pings, and XEP-0198 stream management
// with resumption: it answers <r/> with <a h=…/>, can drop its TCP connection
// abruptly (the server then hibernates the session) and resume on a new one.
//
//	c, err := rawclient.Dial(ctx, rawclient.Config{
//		Addr: srv.C2SAddr, Domain: "montague.lit", User: "romeo", Password: "pw",
//		Resource: "lane", Features: []string{"urn:xmpp:psa"},
//	})
//	err = c.SendPresence(ctx, "")
//	pres, err := c.Expect(ctx, func(e *rawclient.Element) bool { return e.Is("", "presence") })
package rawclient

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"

	"github.com/psakit/psakit/caps"
)

// Namespaces used by the client.
const (
	NSClient    = "jabber:client"
	NSStream    = "http://etherx.jabber.org/streams"
	NSTLS       = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL      = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind      = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSM        = "urn:xmpp:sm:3"
	NSCaps      = "http://jabber.org/protocol/caps"
	NSDiscoInfo = "http://jabber.org/protocol/disco#info"
	NSPing      = "urn:xmpp:ping"
	NSMUC       = "http://jabber.org/protocol/muc"
	NSMUCUser   = "http://jabber.org/protocol/muc#user"
	NSPSA       = "urn:xmpp:psa"
)

// DefaultNode is the caps node of a rawclient.
const DefaultNode = "https://github.com/psakit/psakit/internal/rawclient"

// Config says how to connect and what to advertise.
type Config struct {
	// Addr is the server's client address, host:port.
	Addr string
	// Domain is the account's domain (the stream's 'to').
	Domain string
	// User and Password authenticate with SASL PLAIN.
	User, Password string
	// Resource is the resource to bind; empty lets the server choose.
	Resource string
	// TLS, when set, makes the client require StartTLS with this
	// configuration; nil stays in plain text.
	TLS *tls.Config

	// Features are disco#info features advertised besides disco#info, caps
	// and ping, e.g. "urn:xmpp:psa".
	Features []string
	// IdentityName is the name of the client's identity (client/bot). Empty
	// gives a unique name per Dial, so that the server never finds the ver in
	// its caps cache and always asks disco#info.
	IdentityName string
	// Node is the caps node; empty means DefaultNode.
	Node string
	// Ver, when set, is advertised in <c/> instead of the correct ver (a
	// wrong hash, for negative tests).
	Ver string
	// NoCaps sends presences without <c/>.
	NoCaps bool
	// StreamManagement enables XEP-0198 with resumption after binding.
	StreamManagement bool
	// NoPing makes a client without XEP-0199: it does not advertise ping and
	// answers pings with service-unavailable, as RFC 6120 §8.4 has an entity
	// answer a request it does not understand.
	NoPing bool
	// HoldDisco, when not nil, delays the answers to disco#info queries
	// until it is closed (a client slow to answer, for tests of a server's
	// requests in flight).
	HoldDisco <-chan struct{}
}

// Client is one client connection (and its XEP-0198 session across
// resumptions).
type Client struct {
	cfg  Config
	info disco.Info
	ver  string // correct ver of info

	jid string

	wmu  sync.Mutex // serialises writes
	conn net.Conn

	// received stanzas
	mu           sync.Mutex
	queue        []*Element
	history      []*Element
	notify       chan struct{}
	err          error // why the reader stopped
	h            uint32
	smID         string
	readerDone   chan struct{}
	presenceSent bool
}

// Dial connects, authenticates and binds.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Node == "" {
		cfg.Node = DefaultNode
	}
	name := cfg.IdentityName
	if name == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		name = "rawclient " + hex.EncodeToString(b[:])
	}
	feats := []string{NSDiscoInfo, NSCaps}
	if !cfg.NoPing {
		feats = append(feats, NSPing)
	}
	feats = append(feats, cfg.Features...)
	in := disco.Info{Identity: []info.Identity{{Category: "client", Type: "bot", Name: name}}}
	for _, f := range feats {
		in.Features = append(in.Features, info.Feature{Var: f})
	}
	ver, err := caps.Ver(in)
	if err != nil {
		return nil, fmt.Errorf("rawclient: caps: %w", err)
	}
	c := &Client{cfg: cfg, info: in, ver: ver, notify: make(chan struct{})}
	conn, dec, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	jid, err := c.bind(ctx, dec)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	c.jid = jid
	if cfg.StreamManagement {
		if err := c.enableSM(ctx, dec); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	c.startReader(conn, dec)
	return c, nil
}

// JID returns the bound full JID.
func (c *Client) JID() string { return c.jid }

// Bare returns the bound bare JID.
func (c *Client) Bare() string {
	if i := strings.IndexByte(c.jid, '/'); i >= 0 {
		return c.jid[:i]
	}
	return c.jid
}

// Ver returns the ver advertised in <c/>.
func (c *Client) Ver() string {
	if c.cfg.Ver != "" {
		return c.cfg.Ver
	}
	return c.ver
}

// CapsElement returns the <c/> element advertised in presences, or "" with
// NoCaps.
func (c *Client) CapsElement() string {
	if c.cfg.NoCaps {
		return ""
	}
	return fmt.Sprintf(`<c xmlns='%s' hash='sha-1' node='%s' ver='%s'/>`, NSCaps, Escape(c.cfg.Node), Escape(c.Ver()))
}

// negotiation helpers ------------------------------------------------------

var (
	aLongTimeAgo = time.Unix(1, 0)
	noDeadline   time.Time
)

func setDeadline(ctx context.Context, conn net.Conn) func() {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	return func() {
		stop()
		_ = conn.SetDeadline(noDeadline)
	}
}

func (c *Client) openStream(conn net.Conn) (*xml.Decoder, *Element, error) {
	_, err := fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s' version='1.0'>",
		NSClient, NSStream, Escape(c.cfg.Domain))
	if err != nil {
		return nil, nil, err
	}
	// The server sends nothing after <proceed/> and <success/> until the
	// client speaks, so the decoder's read-ahead never swallows the next
	// stream's bytes.
	dec := xml.NewDecoder(conn)
	dec.Strict = true
	if _, err := readStreamStart(dec); err != nil {
		return nil, nil, fmt.Errorf("rawclient: stream header: %w", err)
	}
	features, err := readElement(dec)
	if err != nil {
		return nil, nil, fmt.Errorf("rawclient: stream features: %w", err)
	}
	if !features.Is(NSStream, "features") {
		return nil, nil, fmt.Errorf("rawclient: expected stream features, got %s", features)
	}
	return dec, features, nil
}

// connect dials, negotiates TLS if configured, and authenticates. It returns
// the connection and the decoder of the authenticated stream, positioned
// after its features.
func (c *Client) connect(ctx context.Context) (net.Conn, *xml.Decoder, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("rawclient: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = conn.Close()
		}
	}()
	done := setDeadline(ctx, conn)
	dec, features, err := c.openStream(conn)
	if err != nil {
		done()
		return nil, nil, err
	}
	if c.cfg.TLS != nil {
		if features.Child(NSTLS, "starttls") == nil {
			done()
			return nil, nil, errors.New("rawclient: server offers no StartTLS")
		}
		if _, err := fmt.Fprintf(conn, "<starttls xmlns='%s'/>", NSTLS); err != nil {
			done()
			return nil, nil, err
		}
		proceed, err := readElement(dec)
		if err != nil || !proceed.Is(NSTLS, "proceed") {
			done()
			return nil, nil, fmt.Errorf("rawclient: starttls: %v %s", err, proceed)
		}
		done()
		tconn := tls.Client(conn, c.cfg.TLS)
		if err := tconn.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("rawclient: TLS: %w", err)
		}
		conn = tconn
		done = setDeadline(ctx, conn)
		if dec, features, err = c.openStream(conn); err != nil {
			done()
			return nil, nil, err
		}
	}
	defer done()
	mechs := features.Child(NSSASL, "mechanisms")
	plain := false
	for _, m := range mechs.ChildrenNamed(NSSASL, "mechanism") {
		plain = plain || m.Text() == "PLAIN"
	}
	if !plain {
		return nil, nil, fmt.Errorf("rawclient: server offers no SASL PLAIN: %s", features)
	}
	cred := base64.StdEncoding.EncodeToString([]byte("\x00" + c.cfg.User + "\x00" + c.cfg.Password))
	if _, err := fmt.Fprintf(conn, "<auth xmlns='%s' mechanism='PLAIN'>%s</auth>", NSSASL, cred); err != nil {
		return nil, nil, err
	}
	res, err := readElement(dec)
	if err != nil {
		return nil, nil, fmt.Errorf("rawclient: SASL: %w", err)
	}
	if !res.Is(NSSASL, "success") {
		return nil, nil, fmt.Errorf("rawclient: SASL failed: %s", res)
	}
	if dec, _, err = c.openStream(conn); err != nil {
		return nil, nil, err
	}
	ok = true
	return conn, dec, nil
}

func (c *Client) bind(ctx context.Context, dec *xml.Decoder) (string, error) {
	defer setDeadline(ctx, c.conn)()
	res := ""
	if c.cfg.Resource != "" {
		res = "<resource>" + Escape(c.cfg.Resource) + "</resource>"
	}
	if _, err := fmt.Fprintf(c.conn, "<iq type='set' id='bind1'><bind xmlns='%s'>%s</bind></iq>", NSBind, res); err != nil {
		return "", err
	}
	for {
		e, err := readElement(dec)
		if err != nil {
			return "", fmt.Errorf("rawclient: bind: %w", err)
		}
		if e.Is("", "iq") && e.Attr("id") == "bind1" {
			if e.Attr("type") != "result" {
				return "", fmt.Errorf("rawclient: bind failed: %s", e)
			}
			jid := e.Child(NSBind, "bind").Child(NSBind, "jid")
			if jid == nil {
				return "", fmt.Errorf("rawclient: bind result without jid: %s", e)
			}
			return jid.Text(), nil
		}
	}
}

func (c *Client) enableSM(ctx context.Context, dec *xml.Decoder) error {
	defer setDeadline(ctx, c.conn)()
	if _, err := fmt.Fprintf(c.conn, "<enable xmlns='%s' resume='true'/>", NSSM); err != nil {
		return err
	}
	for {
		e, err := readElement(dec)
		if err != nil {
			return fmt.Errorf("rawclient: enabling stream management: %w", err)
		}
		switch {
		case e.Is(NSSM, "enabled"):
			if e.Attr("id") == "" {
				return fmt.Errorf("rawclient: stream management enabled without resumption: %s", e)
			}
			c.smID = e.Attr("id")
			return nil
		case e.Is(NSSM, "failed"):
			return fmt.Errorf("rawclient: stream management failed: %s", e)
		case e.Is(NSSM, "r"):
			// Stanzas before <enabled/> are not counted.
		}
	}
}

// reader ----------------------------------------------------------------------

func (c *Client) startReader(conn net.Conn, dec *xml.Decoder) {
	done := make(chan struct{})
	c.mu.Lock()
	c.err = nil
	c.readerDone = done
	c.mu.Unlock()
	go c.read(conn, dec, done)
}

func (c *Client) read(conn net.Conn, dec *xml.Decoder, done chan struct{}) {
	defer close(done)
	for {
		e, err := readElement(dec)
		if err != nil {
			c.mu.Lock()
			if c.err == nil {
				c.err = fmt.Errorf("rawclient: stream ended: %w", err)
			}
			c.wake()
			c.mu.Unlock()
			return
		}
		if e.Name.Space == NSSM {
			if e.Name.Local == "r" {
				c.mu.Lock()
				h := c.h
				c.mu.Unlock()
				_ = c.write(conn, fmt.Sprintf("<a xmlns='%s' h='%d'/>", NSSM, h))
			}
			continue
		}
		if e.Is(NSStream, "error") {
			c.mu.Lock()
			c.err = fmt.Errorf("rawclient: stream error: %s", e)
			c.wake()
			c.mu.Unlock()
			continue
		}
		c.answer(conn, e, done)
		c.mu.Lock()
		if e.Name.Space == NSClient {
			c.h++
		}
		c.queue = append(c.queue, e)
		c.history = append(c.history, e)
		c.wake()
		c.mu.Unlock()
	}
}

// wake wakes up Next; c.mu is held.
func (c *Client) wake() {
	close(c.notify)
	c.notify = make(chan struct{})
}

// answer answers disco#info and ping requests (pings with an error when
// the client has NoPing).
func (c *Client) answer(conn net.Conn, e *Element, done <-chan struct{}) {
	if !e.Is(NSClient, "iq") || e.Attr("type") != "get" || len(e.Children) != 1 {
		return
	}
	q := e.Children[0]
	var reply string
	switch {
	case q.Is(NSPing, "ping") && c.cfg.NoPing:
		reply = fmt.Sprintf("<iq type='error' id='%s' to='%s'><ping xmlns='%s'/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
			Escape(e.Attr("id")), Escape(e.Attr("from")), NSPing)
	case q.Is(NSPing, "ping"):
		reply = fmt.Sprintf("<iq type='result' id='%s' to='%s'/>", Escape(e.Attr("id")), Escape(e.Attr("from")))
	case q.Is(NSDiscoInfo, "query"):
		node := q.Attr("node")
		if node != "" && !strings.HasPrefix(node, c.cfg.Node+"#") {
			reply = fmt.Sprintf("<iq type='error' id='%s' to='%s'><query xmlns='%s' node='%s'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
				Escape(e.Attr("id")), Escape(e.Attr("from")), NSDiscoInfo, Escape(node))
			break
		}
		var b strings.Builder
		fmt.Fprintf(&b, "<iq type='result' id='%s' to='%s'><query xmlns='%s'", Escape(e.Attr("id")), Escape(e.Attr("from")), NSDiscoInfo)
		if node != "" {
			fmt.Fprintf(&b, " node='%s'", Escape(node))
		}
		b.WriteString(">")
		for _, id := range c.info.Identity {
			fmt.Fprintf(&b, "<identity category='%s' type='%s' name='%s'/>", Escape(id.Category), Escape(id.Type), Escape(id.Name))
		}
		for _, f := range c.info.Features {
			fmt.Fprintf(&b, "<feature var='%s'/>", Escape(f.Var))
		}
		b.WriteString("</query></iq>")
		reply = b.String()
		if hold := c.cfg.HoldDisco; hold != nil {
			go func() {
				select {
				case <-hold:
					_ = c.write(conn, reply)
				case <-done:
				}
			}()
			return
		}
	default:
		return
	}
	_ = c.write(conn, reply)
}

func (c *Client) write(conn net.Conn, s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := conn.Write([]byte(s))
	return err
}

// Send writes raw XML to the stream.
func (c *Client) Send(raw string) error {
	c.wmu.Lock()
	conn := c.conn
	c.wmu.Unlock()
	if conn == nil {
		return errors.New("rawclient: not connected")
	}
	if err := c.write(conn, raw); err != nil {
		return fmt.Errorf("rawclient: send: %w", err)
	}
	return nil
}

// Sendf formats and sends raw XML.
func (c *Client) Sendf(format string, args ...any) error {
	return c.Send(fmt.Sprintf(format, args...))
}

// Next returns the next received stanza.
func (c *Client) Next(ctx context.Context) (*Element, error) {
	return c.Expect(ctx, func(*Element) bool { return true })
}

// Expect returns the next received stanza for which match is true, skipping
// the ones before it (History keeps them all).
func (c *Client) Expect(ctx context.Context, match func(*Element) bool) (*Element, error) {
	return c.wait(ctx, match, true)
}

// take is like Expect but leaves the stanzas before the match queued, for
// the client's own round trips.
func (c *Client) take(ctx context.Context, match func(*Element) bool) (*Element, error) {
	return c.wait(ctx, match, false)
}

func (c *Client) wait(ctx context.Context, match func(*Element) bool, skip bool) (*Element, error) {
	for {
		e, notify, err := c.scan(match, skip)
		if e != nil || err != nil {
			return e, err
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil, fmt.Errorf("rawclient: %s: waiting for a stanza: %w", c.jid, ctx.Err())
		}
	}
}

// scan looks for a match in the queue. A panicking match does not leave the
// lock held.
func (c *Client) scan(match func(*Element) bool, skip bool) (*Element, <-chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.queue {
		if match(e) {
			if skip {
				c.queue = append(c.queue[:0:0], c.queue[i+1:]...)
			} else {
				c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
			}
			return e, nil, nil
		}
	}
	if skip {
		c.queue = c.queue[:0]
	}
	return nil, c.notify, c.err
}

// History returns every stanza received so far, in order, across
// resumptions.
func (c *Client) History() []*Element {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Element(nil), c.history...)
}

var idCounter struct {
	sync.Mutex
	n int
}

// NewID returns a new stanza id.
func NewID() string {
	idCounter.Lock()
	defer idCounter.Unlock()
	idCounter.n++
	return "rc" + strconv.Itoa(idCounter.n)
}

// IQ sends an iq (raw XML with the attribute id='ID' left out: IQ adds it)
// and returns its result or error response.
func (c *Client) IQ(ctx context.Context, typ, to, payload string) (*Element, error) {
	id := NewID()
	toAttr := ""
	if to != "" {
		toAttr = fmt.Sprintf(" to='%s'", Escape(to))
	}
	if err := c.Sendf("<iq type='%s' id='%s'%s>%s</iq>", typ, id, toAttr, payload); err != nil {
		return nil, err
	}
	return c.take(ctx, func(e *Element) bool {
		return e.Is(NSClient, "iq") && e.Attr("id") == id && (e.Attr("type") == "result" || e.Attr("type") == "error")
	})
}

// Ping sends an XEP-0199 ping to `to` (the own server when empty) and waits
// for the answer. A round trip to the own server also proves that the server
// has processed everything sent before it.
func (c *Client) Ping(ctx context.Context, to string) error {
	if to == "" {
		to = c.cfg.Domain
	}
	res, err := c.IQ(ctx, "get", to, "<ping xmlns='"+NSPing+"'/>")
	if err != nil {
		return err
	}
	if res.Attr("type") != "result" {
		return fmt.Errorf("rawclient: ping %s: %s", to, res)
	}
	return nil
}

// SendPresence sends an available broadcast presence with caps and extra
// children (raw XML). The first time, with caps and a unique identity (the
// default), it then waits until the server asked for the caps' disco#info,
// got the answer and processed it, so that the server has decided whether
// annotations are enabled when SendPresence returns. Otherwise it waits for
// a ping round trip to the server.
func (c *Client) SendPresence(ctx context.Context, children string) error {
	if err := c.Send("<presence>" + c.CapsElement() + children + "</presence>"); err != nil {
		return err
	}
	c.mu.Lock()
	first := !c.presenceSent
	c.presenceSent = true
	c.mu.Unlock()
	if !first || c.cfg.NoCaps || c.cfg.IdentityName != "" {
		return c.Ping(ctx, "")
	}
	return c.AwaitCapsQuery(ctx, c.cfg.Domain)
}

// RoundTrip sends a ping to `to` and waits for its answer, result or error.
// Stanzas between two entities travel in order, so when it returns `to` has
// processed everything the client sent it before.
func (c *Client) RoundTrip(ctx context.Context, to string) error {
	_, err := c.IQ(ctx, "get", to, "<ping xmlns='"+NSPing+"'/>")
	return err
}

// AwaitCapsQuery waits for a disco#info query for the advertised caps node
// from `from` (answered already by the reader), then makes a round trip to
// `from`, so that the answer has been processed when it returns.
func (c *Client) AwaitCapsQuery(ctx context.Context, from string) error {
	_, err := c.take(ctx, c.capsQueryFrom(from))
	if err != nil {
		return fmt.Errorf("rawclient: no caps query from %s: %w", from, err)
	}
	return c.RoundTrip(ctx, from)
}

// JoinMUC joins room (a bare room JID) as nick with caps, waits for the own
// presence from the room (status 110) and, with caps and a unique identity,
// until the MUC service has its caps (mod_psa on the MUC asks for a ver it
// does not know yet).
func (c *Client) JoinMUC(ctx context.Context, room, nick string) error {
	occupant := room + "/" + nick
	if err := c.Sendf("<presence to='%s'><x xmlns='%s'><history maxstanzas='0'/></x>%s</presence>", Escape(occupant), NSMUC, c.CapsElement()); err != nil {
		return err
	}
	_, err := c.take(ctx, func(e *Element) bool {
		if !e.Is(NSClient, "presence") || e.Attr("from") != occupant {
			return false
		}
		for _, s := range e.Child(NSMUCUser, "x").ChildrenNamed(NSMUCUser, "status") {
			if s.Attr("code") == "110" {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("rawclient: joining %s: %w", occupant, err)
	}
	if c.cfg.NoCaps || c.cfg.IdentityName != "" {
		return nil
	}
	service := room[strings.IndexByte(room, '@')+1:]
	// mod_psa on the service asks for the caps of a ver it has not verified
	// yet; a ver it knows (from an earlier join, by anyone) is not asked
	// again. The query, if any, is sent while the service handles the join,
	// so it comes before the answer to a ping sent after it.
	if err := c.RoundTrip(ctx, service); err != nil {
		return err
	}
	if e, _, err := c.scan(c.capsQueryFrom(service), false); err != nil || e == nil {
		return err
	}
	// Asked: the reader has answered; one more round trip and the service
	// has processed the answer.
	return c.RoundTrip(ctx, service)
}

// capsQueryFrom matches a disco#info query from `from` for the advertised
// caps node.
func (c *Client) capsQueryFrom(from string) func(*Element) bool {
	node := c.cfg.Node + "#" + c.Ver()
	return func(e *Element) bool {
		q := e.Child(NSDiscoInfo, "query")
		return e.Is(NSClient, "iq") && e.Attr("type") == "get" && e.Attr("from") == from && q != nil && q.Attr("node") == node
	}
}

// Err returns why the stream stopped, or nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Drop closes the TCP connection abruptly, without closing the stream: with
// stream management the server hibernates the session.
func (c *Client) Drop() error {
	c.wmu.Lock()
	conn := c.conn
	c.wmu.Unlock()
	if conn == nil {
		return nil
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	} else if tc, ok := conn.(*tls.Conn); ok {
		if nc, ok := tc.NetConn().(*net.TCPConn); ok {
			_ = nc.SetLinger(0)
		}
	}
	err := conn.Close()
	c.mu.Lock()
	done := c.readerDone
	c.mu.Unlock()
	if done != nil {
		<-done
	}
	return err
}

// Resume connects again and resumes the XEP-0198 session after Drop. The
// server then re-sends the stanzas the client did not acknowledge.
func (c *Client) Resume(ctx context.Context) error {
	if c.smID == "" {
		return errors.New("rawclient: stream management is not enabled")
	}
	conn, dec, err := c.connect(ctx)
	if err != nil {
		return err
	}
	stop := setDeadline(ctx, conn)
	c.mu.Lock()
	h := c.h
	c.mu.Unlock()
	if _, err := fmt.Fprintf(conn, "<resume xmlns='%s' h='%d' previd='%s'/>", NSSM, h, Escape(c.smID)); err != nil {
		stop()
		_ = conn.Close()
		return err
	}
	res, err := readElement(dec)
	stop()
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("rawclient: resume: %w", err)
	}
	if !res.Is(NSSM, "resumed") {
		_ = conn.Close()
		return fmt.Errorf("rawclient: resume failed: %s", res)
	}
	c.wmu.Lock()
	c.conn = conn
	c.wmu.Unlock()
	c.startReader(conn, dec)
	return nil
}

// Close closes the stream cleanly and the connection.
func (c *Client) Close() error {
	c.wmu.Lock()
	conn := c.conn
	c.wmu.Unlock()
	if conn == nil {
		return nil
	}
	_ = c.write(conn, "</stream:stream>")
	err := conn.Close()
	c.mu.Lock()
	done := c.readerDone
	c.mu.Unlock()
	if done != nil {
		<-done
	}
	return err
}
