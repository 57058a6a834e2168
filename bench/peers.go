package bench

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	goxmpp "github.com/xmppo/go-xmpp"
	fluux "gosrc.io/xmpp"
	fluuxstanza "gosrc.io/xmpp/stanza"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/livemodel"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// A Peer is one client under test: it logs in to the fake server and
// handles the stream.
type Peer struct {
	Name string
	// Does says what the client does with each presence.
	Does string
	// Start logs in to addr and starts handling stanzas. rosterJIDs is the
	// roster the server holds. It returns once the client is ready for the
	// stream; done must be called once the client has
	// handled total presence stanzas (the last one is from EndJID). stop
	// releases the client.
	Start func(ctx context.Context, addr string, rosterJIDs []string, total int, done func()) (stop func(), err error)
}

// Peers are the clients BenchmarkStream compares, the baseline first.
var Peers = []Peer{
	{Name: "mellium-drain", Does: "mellium v0.22.0 session; the handler reads each stanza's tokens and drops them (the dependency floor)", Start: startMelliumDrain},
	{Name: "xml-tokens", Does: "encoding/xml Decoder.Token loop over the same bytes, no XMPP (the floor for the bytes)", Start: startXMLTokens},
	{Name: "psakit", Does: "psakit client.Tracker on a mellium session: presence tap, one-pass decode, annotations, trust check, roster model, event queue, a no-op callback", Start: startPsakit},
	{Name: "psakit-decode", Does: "mellium session + presence.DecodeElement only (no model, no events)", Start: startPsakitDecode},
	{Name: "mellium-reflect", Does: "mellium session + xml.Decoder.DecodeElement of the whole presence into a struct (reflection)", Start: startMelliumReflect},
	{Name: "go-xmpp", Does: "github.com/xmppo/go-xmpp v0.2.17 Client.Recv loop: keeps from, to, type, show, status; no staleness", Start: startGoXMPP},
	{Name: "gosrc-xmpp", Does: "gosrc.io/xmpp v0.5.1 Client with a presence route: decodes stanza.Presence with its extensions, one goroutine per stanza; no staleness", Start: startFluux},
}

// PeerByName returns the peer called name.
func PeerByName(name string) (Peer, bool) {
	for _, p := range Peers {
		if p.Name == name {
			return p, true
		}
	}
	return Peer{}, false
}

// dialMellium logs in with mellium: SASL PLAIN, resource binding.
func dialMellium(ctx context.Context, addr string) (*xmpp.Session, net.Conn, error) {
	account := jid.MustParse(Account)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	s, err := xmpp.NewSession(ctx, account.Domain(), account, conn, xmpp.Secure, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", "x", sasl.Plain), xmpp.BindResource()}}
	}))
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("mellium login: %w", err)
	}
	return s, conn, nil
}

// serveMellium serves s with h on its own goroutine.
func serveMellium(s *xmpp.Session, conn net.Conn, h xmpp.Handler) func() {
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(h)
	}()
	return func() {
		conn.Close()
		<-served
	}
}

// countPresence returns a func to call per presence handled that calls done
// at the total'th.
func countPresence(total int, done func()) func() {
	n := 0
	return func() {
		n++
		if n == total {
			done()
		}
	}
}

func drain(r xml.TokenReader) error {
	for {
		_, err := r.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// startMelliumPresence logs in with mellium and serves a handler that
// drains every stanza but presence, which handle reads, and counts the
// presences.
func startMelliumPresence(ctx context.Context, addr string, total int, done func(), handle func(r xml.TokenReader, start *xml.StartElement) error) (func(), error) {
	s, conn, err := dialMellium(ctx, addr)
	if err != nil {
		return nil, err
	}
	count := countPresence(total, done)
	return serveMellium(s, conn, xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "presence" {
			return drain(r)
		}
		if err := handle(r, start); err != nil {
			return err
		}
		count()
		return nil
	})), nil
}

func startMelliumDrain(ctx context.Context, addr string, _ []string, total int, done func()) (func(), error) {
	return startMelliumPresence(ctx, addr, total, done, func(r xml.TokenReader, _ *xml.StartElement) error {
		return drain(r)
	})
}

func startPsakitDecode(ctx context.Context, addr string, _ []string, total int, done func()) (func(), error) {
	return startMelliumPresence(ctx, addr, total, done, func(r xml.TokenReader, start *xml.StartElement) error {
		if _, err := presence.DecodeElement(r, *start); err != nil && !errors.Is(err, presence.ErrInvalidJID) {
			return err
		}
		return nil
	})
}

// reflectPresence is what a mellium application decodes with encoding/xml
// to get the same information psakit's decoder gets.
type reflectPresence struct {
	stanza.Presence
	Show   string `xml:"show"`
	Status []struct {
		Lang  string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
		Value string `xml:",chardata"`
	} `xml:"status"`
	Priority int8 `xml:"priority"`
	Caps     struct {
		Hash string `xml:"hash,attr"`
		Node string `xml:"node,attr"`
		Ver  string `xml:"ver,attr"`
	} `xml:"http://jabber.org/protocol/caps c"`
	Delay struct {
		Stamp string `xml:"stamp,attr"`
	} `xml:"urn:xmpp:delay delay"`
	MUC *struct {
		Item struct {
			Affiliation string  `xml:"affiliation,attr"`
			Role        string  `xml:"role,attr"`
			JID         jid.JID `xml:"jid,attr"`
		} `xml:"item"`
		Status []struct {
			Code int `xml:"code,attr"`
		} `xml:"status"`
	} `xml:"http://jabber.org/protocol/muc#user x"`
	OccupantID struct {
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:occupant-id:0 occupant-id"`
	Annotations []struct {
		From         jid.JID    `xml:"from,attr"`
		Condition    []xml.Name `xml:",any"`
		Descriptions []struct {
			Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
			Text string `xml:",chardata"`
		} `xml:"description"`
	} `xml:"urn:xmpp:psa state-annotation"`
}

func startMelliumReflect(ctx context.Context, addr string, _ []string, total int, done func()) (func(), error) {
	return startMelliumPresence(ctx, addr, total, done, func(r xml.TokenReader, start *xml.StartElement) error {
		// The handler's reader starts after the start element: give it back
		// to the decoder, which checks that elements nest.
		var p reflectPresence
		return xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&p)
	})
}

// startPsakit runs psakit's client stack: a client.Tracker in front of a
// mux, as in client.Client, with the restore policy off (it would send
// pings the fake server does not answer) and a no-op roster callback.
func startPsakit(ctx context.Context, addr string, _ []string, _ int, done func()) (func(), error) {
	_, stop, err := startTracker(ctx, addr, nil, nil, nil, done)
	return stop, err
}

// startTracker is startPsakit with hooks: fill fills the roster model before
// the session starts, wrap wraps the Tracker's handler, onEvent sees every
// roster event before the end marker's calls done.
func startTracker(ctx context.Context, addr string, fill func(*roster.Model), wrap func(xmpp.Handler) xmpp.Handler, onEvent func(roster.Event), done func()) (*client.Tracker, func(), error) {
	end := jid.MustParse(EndJID)
	var dropped atomic.Int64
	t, err := client.NewTracker(jid.MustParse(Account),
		client.WithVerify(client.VerifyOff, 0),
		client.OnOverflow(func(n int) { dropped.Add(int64(n)) }),
		client.OnRoster(func(e roster.Event) {
			if onEvent != nil {
				onEvent(e)
			}
			if e.JID.Equal(end) {
				done()
			}
		}))
	if err != nil {
		return nil, nil, err
	}
	if fill != nil {
		fill(livemodel.Roster(t))
	}
	s, conn, err := dialMellium(ctx, addr)
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	var h xmpp.Handler = t.Handler(mux.New(stanza.NSClient, t.MuxOptions()...))
	if wrap != nil {
		h = wrap(h)
	}
	stopServe := serveMellium(s, conn, h)
	if err := t.Start(ctx, s); err != nil {
		stopServe()
		t.Close()
		return nil, nil, fmt.Errorf("psakit start: %w", err)
	}
	return t, func() {
		stopServe()
		t.Close()
		if n := dropped.Load(); n > 0 {
			fmt.Fprintf(os.Stderr, "bench: psakit dropped %d events (queue overflow)\n", n)
		}
	}, nil
}

func startGoXMPP(_ context.Context, addr string, _ []string, total int, done func()) (func(), error) {
	// go-xmpp dials through $HTTP_PROXY when it is set: the server is on
	// loopback.
	os.Unsetenv("HTTP_PROXY")
	os.Unsetenv("http_proxy")
	c, err := goxmpp.Options{
		Host:                         addr,
		User:                         AccountBare,
		Password:                     "x",
		Resource:                     Resource,
		NoTLS:                        true,
		InsecureAllowUnencryptedAuth: true,
		// X-OAUTH2 is the one mechanism go-xmpp sends in the clear without
		// SCRAM; for the fake server all mechanisms are the same.
		Mechanism:   "X-OAUTH2",
		OAuthToken:  "x",
		OAuthScope:  "x",
		OAuthXmlNs:  "http://www.google.com/talk/protocol/auth",
		DialTimeout: 10 * time.Second,
	}.NewClient()
	if err != nil {
		return nil, fmt.Errorf("go-xmpp login: %w", err)
	}
	count := countPresence(total, done)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			v, err := c.Recv()
			if err != nil {
				return
			}
			if _, ok := v.(goxmpp.Presence); ok {
				count()
			}
		}
	}()
	// The harness closes the server first: Recv fails and the loop ends.
	return func() {
		<-stopped
		_ = c.Close()
	}, nil
}

func startFluux(_ context.Context, addr string, _ []string, total int, done func()) (func(), error) {
	var n atomic.Int64
	router := fluux.NewRouter()
	router.HandleFunc("presence", func(_ fluux.Sender, p fluuxstanza.Packet) {
		if _, ok := p.(fluuxstanza.Presence); ok && n.Add(1) == int64(total) {
			done()
		}
	})
	cfg := &fluux.Config{
		TransportConfiguration: fluux.TransportConfiguration{Address: addr, Domain: Domain},
		Jid:                    Account,
		Credential:             fluux.Password("x"),
		Insecure:               true,
	}
	failed := make(chan struct{}, 1)
	c, err := fluux.NewClient(cfg, router, func(error) {
		select {
		case failed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	if err := c.Connect(); err != nil {
		return nil, fmt.Errorf("gosrc.io/xmpp login: %w", err)
	}
	// The harness closes the server first, which ends the client's receive
	// loop (Disconnect would wait for a stream close the fake server does
	// not send).
	return func() {
		select {
		case <-failed:
		case <-time.After(5 * time.Second):
		}
	}, nil
}

// startXMLTokens opens a stream and reads it with an encoding/xml token loop,
// counting the presence stanzas.
func startXMLTokens(_ context.Context, addr string, _ []string, total int, done func()) (func(), error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(conn, "<?xml version='1.0'?><stream:stream to='"+Domain+"' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"); err != nil {
		conn.Close()
		return nil, err
	}
	d := xml.NewDecoder(conn)
	// Read the server's stream header and features before the stream.
	for {
		tok, err := d.Token()
		if err != nil {
			conn.Close()
			return nil, err
		}
		if end, ok := tok.(xml.EndElement); ok && end.Name.Local == "features" {
			break
		}
	}
	count := countPresence(total, done)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		depth := 1 // inside the stream
		for {
			tok, err := d.Token()
			if err != nil {
				return
			}
			switch t := tok.(type) {
			case xml.StartElement:
				depth++
				if depth == 2 && t.Name.Local == "presence" {
					count()
				}
			case xml.EndElement:
				depth--
			}
		}
	}()
	return func() {
		conn.Close()
		<-stopped
	}, nil
}
