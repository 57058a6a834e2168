package client

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/xmltok"
)

const (
	nsDelay = "urn:xmpp:delay"
	// maxThreadBytes bounds a thread identifier: RFC 6121 §5.2.5 makes it
	// an opaque token, which no one needs longer.
	maxThreadBytes = 256
	// maxErrorTextBytes bounds the text of a message's error.
	maxErrorTextBytes = 1024
)

// Message is a message stanza the client received, decoded: what a bot needs
// to read it and answer it. Other payloads are not kept; register a mux
// handler (WithMux) for them.
type Message struct {
	// ID is the stanza's id attribute, "" when absent.
	ID string
	// From is the sender: a full or bare JID for a direct message,
	// room@service/nick for a message in a room (groupchat) or a private
	// message through a room, room@service for a message from the room
	// itself (its subject, its notices). It is zero when the server sent no
	// from, which means the account itself.
	From jid.JID
	// To is the recipient, normally our bound full JID.
	To jid.JID
	// Type is the message type; "normal" when absent or unknown (RFC 6121
	// §5.2.2).
	Type stanza.MessageType
	// Lang is the xml:lang of the stanza, "" when absent.
	Lang string
	// Body is the text of the body without an xml:lang other than the
	// stanza's own, or else of the first body; "" when there is none (a
	// room's subject change, a chat state notification).
	Body string
	// Subject is the subject, chosen as Body; a groupchat message with a
	// subject and no body changes the room's subject.
	Subject string
	// Thread is the thread identifier, at most 256 bytes, "" when absent.
	Thread string
	// Delay is the XEP-0203 stamp of a message delivered late: the history
	// a room sends on join, or messages the server stored while we were
	// offline. It is zero for a message sent now. A bot should not answer
	// commands from the past.
	Delay time.Time
	// Error is the error of a message of type error: a bounce of one we
	// sent. Never reply to it.
	Error *stanza.Error

	// t is the Tracker (of the client) that received the message; nil in a
	// Message built by hand.
	t *Tracker
}

// ErrReplyToError is returned by Reply for a message of type error: RFC 6120
// §8.3.1 forbids answering an error.
var ErrReplyToError = errors.New("client: a message of type error is never answered")

// decodeMessage decodes the message whose start was read from r, up to and
// including its end. Texts are kept up to maxText bytes.
func decodeMessage(r xml.TokenReader, start xml.StartElement, maxText int) (Message, error) {
	var m Message
	sm, err := stanza.NewMessage(start)
	if err != nil {
		return m, err
	}
	m.ID, m.From, m.To, m.Type = sm.ID, sm.From, sm.To, sm.Type
	if m.Type == "" {
		m.Type = stanza.NormalMessage
	}
	m.Lang = xmltok.Lang(start, "")
	// The first text of each is kept, unless a later one has the stanza's
	// language and it has not.
	var haveBody, haveSubject, bodyLang, subjectLang bool
	err = xmltok.Children(r, func(t xml.StartElement) error {
		if t.Name.Space != stanza.NSClient && t.Name.Space != "" {
			if t.Name.Space == nsDelay && t.Name.Local == "delay" && m.Delay.IsZero() {
				if stamp, ok := xmltok.Attr(t, "stamp"); ok {
					m.Delay, _ = time.Parse(time.RFC3339Nano, stamp)
				}
			}
			return xmltok.Skip(r)
		}
		switch t.Name.Local {
		case "body", "subject":
			text, _, err := xmltok.ReadText(r, maxText)
			if err != nil {
				return err
			}
			same := xmltok.Lang(t, m.Lang) == m.Lang
			if t.Name.Local == "body" {
				if !haveBody || (same && !bodyLang) {
					m.Body, haveBody, bodyLang = text, true, same
				}
			} else if !haveSubject || (same && !subjectLang) {
				m.Subject, haveSubject, subjectLang = text, true, same
			}
			return nil
		case "thread":
			text, _, err := xmltok.ReadText(r, maxThreadBytes)
			if err == nil && m.Thread == "" {
				m.Thread = text
			}
			return err
		case "error":
			if m.Type != stanza.ErrorMessage || m.Error != nil {
				return xmltok.Skip(r)
			}
			e, err := decodeStanzaError(r, t)
			if err != nil {
				return err
			}
			m.Error = &e
			return nil
		}
		return xmltok.Skip(r)
	})
	return m, err
}

// decodeStanzaError reads a stanza error element whose start was read: its
// type, its condition and its text (bounded).
func decodeStanzaError(r xml.TokenReader, start xml.StartElement) (stanza.Error, error) {
	var e stanza.Error
	typ, _ := xmltok.Attr(start, "type")
	e.Type = stanza.ErrorType(xmltok.Truncate(typ, 16))
	err := xmltok.Children(r, func(t xml.StartElement) error {
		if t.Name.Space != stanza.NSError {
			return xmltok.Skip(r)
		}
		if t.Name.Local == "text" {
			text, _, err := xmltok.ReadText(r, maxErrorTextBytes)
			if err == nil && e.Text == nil {
				e.Text = map[string]string{xmltok.Lang(t, ""): text}
			}
			return err
		}
		if e.Condition == "" {
			e.Condition = stanza.Condition(xmltok.Truncate(t.Name.Local, 64))
		}
		return xmltok.Skip(r)
	})
	if e.Condition == "" {
		e.Condition = stanza.UndefinedCondition
	}
	return e, err
}

// messageSize estimates a queued message, for the queue's byte budget.
func messageSize(m *Message) int {
	n := int(unsafe.Sizeof(*m)) + len(m.ID) + jidSize(m.From) + jidSize(m.To) + len(m.Type) + len(m.Lang) +
		len(m.Body) + len(m.Subject) + len(m.Thread)
	if e := m.Error; e != nil {
		n += int(unsafe.Sizeof(*e)) + len(e.Condition) + len(e.Type)
		for lang, text := range e.Text {
			n += len(lang) + len(text) + 16
		}
	}
	return n
}

// messageReader builds a message to to, of type typ, with body and thread
// (each left out when "").
func messageReader(to jid.JID, typ stanza.MessageType, body, thread string) xml.TokenReader {
	var children []xml.TokenReader
	if body != "" {
		children = append(children, textElement("body", body))
	}
	if thread != "" {
		children = append(children, textElement("thread", thread))
	}
	return stanza.Message{To: to, Type: typ}.Wrap(xmlstream.MultiReader(children...))
}

// SendMessage sends a message of type typ ("" means chat) with body to to:
// a full or bare JID for a direct message, room@service for a groupchat
// message (the room reflects it to every occupant, us included, from our
// occupant JID). Like Send, it returns ErrNotConnected while the client is
// reconnecting, returns when ctx ends, and in any case within about
// WriteTimeout.
//
// A groupchat message to a room the model holds stale is preceded by a
// XEP-0410 self-ping (with the room policy's SelfPing), which waits for the
// room's answer, at most the policy's PingTimeout: when the room says we
// are not in it, the message is not sent, SendMessage returns ErrNotInRoom,
// and the policy rejoins. So never call it for a groupchat message on the
// session's read goroutine (a mux handler): call it from OnMessage or any
// other goroutine. Message.Reply follows the same rule.
func (c *Client) SendMessage(ctx context.Context, to jid.JID, typ stanza.MessageType, body string) error {
	if typ == "" {
		typ = stanza.ChatMessage
	}
	if typ == stanza.ErrorMessage {
		return fmt.Errorf("client: SendMessage of type error: %w", ErrReplyToError)
	}
	return c.t.sendMessage(ctx, messageReader(to, typ, body, ""), to, typ)
}

// sendMessage sends a message, checking a stale room first.
func (t *Tracker) sendMessage(ctx context.Context, r xml.TokenReader, to jid.JID, typ stanza.MessageType) error {
	if typ == stanza.GroupChatMessage {
		if err := t.checkRoom(ctx, to.Bare()); err != nil {
			return err
		}
	}
	return t.send(ctx, r)
}

// Reply answers m with body, as a person would: a groupchat message goes to
// the room (m.From without the nick) as groupchat, so every occupant sees
// the answer; any other message goes back to its sender with the same type
// and thread, a private message through a room included. It returns
// ErrReplyToError for a message of type error, and otherwise what Send
// returns.
func (c *Client) Reply(ctx context.Context, m Message, body string) error {
	return m.reply(ctx, c.t, body)
}

// Reply answers the message as Client.Reply does, on the session of the
// client that received it (or, for a Tracker's message, the session it was
// last started with): a callback can answer without holding the Client,
// which Dial has not returned yet when the first messages arrive (those the
// server stored while the account was offline). It returns ErrNotConnected
// for a Message that no client received.
func (m Message) Reply(ctx context.Context, body string) error {
	if m.t == nil {
		return ErrNotConnected
	}
	return m.reply(ctx, m.t, body)
}

func (m Message) reply(ctx context.Context, t *Tracker, body string) error {
	to, typ := m.From, m.Type
	switch typ {
	case stanza.ErrorMessage:
		return ErrReplyToError
	case stanza.GroupChatMessage:
		to = m.From.Bare()
	case "":
		typ = stanza.NormalMessage
	}
	return t.sendMessage(ctx, messageReader(to, typ, body, m.Thread), to, typ)
}
