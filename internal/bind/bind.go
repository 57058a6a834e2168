// Package bind is the client side of resource binding (RFC 6120 §7) that
// actually sends the resource asked for.
//
// The client side of mellium v0.22's xmpp.BindResource and xmpp.BindCustom
// writes the session's JID where the resource belongs, which always comes
// out empty, so the server picks a resource whatever the client wanted.
// client.BindResource exports this feature; psatest.Server.Dial uses it.
package bind

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// NS is the resource binding namespace.
const NS = "urn:ietf:params:xml:ns:xmpp-bind"

var errServerSide = errors.New("bind: this stream feature is for the client side of a session")

// ErrMismatch is what a *MismatchError matches with errors.Is.
var ErrMismatch = errors.New("the server bound a JID of another account")

// A MismatchError says that the server answered a bind request with a JID
// whose bare part is not the account's. The server may choose the
// resourcepart (RFC 6120 §7.6.2.1), nothing else. Believing it would make
// the bound domain the account's own server, which psakit's trust rule lets
// annotate any presence.
type MismatchError struct {
	Account jid.JID // the account the session logged in as
	Bound   jid.JID // the JID the server answered with
}

// Error implements error.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("bind: the server bound %s, which is not a resource of %s", e.Bound, e.Account.Bare())
}

// Is reports whether target is ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Feature returns a stream feature that binds resource, or lets the server
// choose when resource is empty. The server may assign another resource
// anyway: read Session.LocalAddr after negotiation. A bound JID of another
// bare JID than the session's fails with a *MismatchError.
func Feature(resource string) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: NS, Local: "bind"},
		Necessary:  xmpp.Authn,
		Prohibited: xmpp.Ready,
		List: func(context.Context, xmlstream.TokenWriter, xml.StartElement) (bool, error) {
			return true, errServerSide
		},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return true, nil, d.Skip()
		},
		Negotiate: func(_ context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			return negotiate(s, resource)
		},
	}
}

func negotiate(s *xmpp.Session, resource string) (xmpp.SessionState, io.ReadWriter, error) {
	if s.State()&xmpp.Received == xmpp.Received {
		return 0, nil, errServerSide
	}
	id := rand.Text()
	var payload xml.TokenReader
	if resource != "" {
		payload = xmlstream.Wrap(xmlstream.Token(xml.CharData(resource)), xml.StartElement{Name: xml.Name{Local: "resource"}})
	}
	req := stanza.IQ{ID: id, Type: stanza.SetIQ}.Wrap(
		xmlstream.Wrap(payload, xml.StartElement{Name: xml.Name{Space: NS, Local: "bind"}}))

	w := s.TokenWriter()
	defer w.Close()
	if _, err := xmlstream.Copy(w, req); err != nil {
		return 0, nil, err
	}
	if err := w.Flush(); err != nil {
		return 0, nil, err
	}

	r := s.TokenReader()
	defer r.Close()
	d := xml.NewTokenDecoder(r)
	var reply struct {
		XMLName xml.Name
		ID      string        `xml:"id,attr"`
		Type    string        `xml:"type,attr"`
		JID     string        `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
		Err     *stanza.Error `xml:"error"`
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return 0, nil, err
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue // whitespace keepalives
		}
		if err := d.DecodeElement(&reply, &start); err != nil {
			return 0, nil, err
		}
		break
	}
	switch {
	case reply.XMLName.Local != "iq" || reply.ID != id:
		return 0, nil, fmt.Errorf("bind: unexpected answer <%s id=%q>", reply.XMLName.Local, reply.ID)
	case reply.Type == string(stanza.ErrorIQ) && reply.Err != nil:
		return 0, nil, fmt.Errorf("bind: binding resource %q: %w", resource, *reply.Err)
	case reply.Type != string(stanza.ResultIQ):
		return 0, nil, fmt.Errorf("bind: answered with type %q", reply.Type)
	}
	bound, err := checkBound(s.LocalAddr(), reply.JID)
	if err != nil {
		return 0, nil, err
	}
	s.UpdateAddr(bound)
	return xmpp.Ready, nil, nil
}

// checkBound parses the JID the server bound for account: a full JID of the
// same bare JID. JIDs are compared normalized (case-folded, IDNA), as
// jid.Parse makes them.
func checkBound(account jid.JID, raw string) (jid.JID, error) {
	bound, err := jid.Parse(raw)
	if err != nil || bound.Resourcepart() == "" {
		return jid.JID{}, fmt.Errorf("bind: the server bound an invalid JID %q: %v", raw, err)
	}
	if !bound.Bare().Equal(account.Bare()) {
		return jid.JID{}, &MismatchError{Account: account, Bound: bound}
	}
	return bound, nil
}
