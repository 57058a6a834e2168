package bench

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// Server is a fake XMPP server on loopback TCP that does just enough for
// each client under test to log in (SASL PLAIN or X-OAUTH2 accepted as they
// are, resource binding, the legacy session, a roster), then writes a
// recorded stream. It serves one connection.
type Server struct {
	ln     net.Listener
	roster []string // bare JIDs answered to a roster get; nil: an empty result
	conn   chan net.Conn

	mu  sync.Mutex // serializes writes to c
	c   net.Conn
	err error // the first error of the login loop
}

// NewServer listens on a loopback port. roster is the roster it answers
// with (nil: a result with no query, "unchanged since your version").
func NewServer(roster []string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, roster: roster, conn: make(chan net.Conn, 1)}
	go s.accept()
	return s, nil
}

// Addr returns the host:port to connect to.
func (s *Server) Addr() string { return s.ln.Addr().String() }

func (s *Server) accept() {
	c, err := s.ln.Accept()
	s.ln.Close()
	if err != nil {
		close(s.conn)
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// Large socket buffers, as a server pushing a burst has.
		_ = tc.SetWriteBuffer(4 << 20)
	}
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
	s.conn <- c
	// serve returns when the connection ends, with the reason.
	if err := s.serve(c); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}
}

// Write writes raw stream data to the client.
func (s *Server) Write(p []byte) (int, error) {
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c == nil {
		return 0, errors.New("bench: no client connected")
	}
	return c.Write(p)
}

// WriteStream writes data in chunks of the size a server's socket writes
// have, so that the client reads it as it arrives.
func (s *Server) WriteStream(data []byte) error {
	const chunk = 64 << 10
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := s.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// Close closes the listener and the connection.
func (s *Server) Close() error {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		return s.c.Close()
	}
	return nil
}

// Err returns the error that stopped the login loop, if any.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Server) send(format string, args ...any) error {
	_, err := s.Write(fmt.Appendf(nil, format, args...))
	return err
}

// serve answers the client until it goes away. After login it keeps
// reading, and ignores what it reads.
func (s *Server) serve(c net.Conn) error {
	d := xml.NewDecoder(c)
	authed := false
	streams := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch start.Name.Local {
		case "stream":
			streams++
			if err := s.send(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s%d' from='%s' version='1.0' xml:lang='en'>`, streams, Domain); err != nil {
				return err
			}
			if !authed {
				err = s.send(`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>X-OAUTH2</mechanism></mechanisms></stream:features>`)
			} else {
				err = s.send(`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>`)
			}
			if err != nil {
				return err
			}
		case "auth":
			if err := d.Skip(); err != nil {
				return err
			}
			authed = true
			if err := s.send(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`); err != nil {
				return err
			}
		case "iq":
			if err := s.iq(d, start); err != nil {
				return err
			}
		default:
			if err := d.Skip(); err != nil {
				return err
			}
		}
	}
}

type iqIn struct {
	ID      string `xml:"id,attr"`
	Type    string `xml:"type,attr"`
	Payload struct {
		XMLName  xml.Name
		Resource string `xml:"resource"`
	} `xml:",any"`
}

func (s *Server) iq(d *xml.Decoder, start xml.StartElement) error {
	var iq iqIn
	if err := d.DecodeElement(&iq, &start); err != nil {
		return err
	}
	if iq.Type != "get" && iq.Type != "set" {
		return nil
	}
	id := xmlEscape(iq.ID)
	switch iq.Payload.XMLName {
	case xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-bind", Local: "bind"}:
		res := iq.Payload.Resource
		if res == "" {
			res = Resource
		}
		return s.send(`<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>%s/%s</jid></bind></iq>`, id, AccountBare, xmlEscape(res))
	case xml.Name{Space: "jabber:iq:roster", Local: "query"}:
		if s.roster == nil {
			return s.send(`<iq type='result' id='%s'/>`, id)
		}
		var b strings.Builder
		fmt.Fprintf(&b, `<iq type='result' id='%s'><query xmlns='jabber:iq:roster' ver='v1'>`, id)
		for _, j := range s.roster {
			fmt.Fprintf(&b, `<item jid='%s' subscription='both'/>`, j)
		}
		b.WriteString(`</query></iq>`)
		_, err := s.Write([]byte(b.String()))
		return err
	}
	return s.send(`<iq type='result' id='%s'/>`, id)
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
