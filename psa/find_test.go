package psa_test

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/psakit/psakit/psa"
)

func find(s string) ([]psa.Annotation, error) {
	return psa.Find(xml.NewDecoder(strings.NewReader(s)))
}

func TestFind(t *testing.T) {
	t.Run("xep example with the annotation before status", func(t *testing.T) {
		got, err := find(`<presence from='benvolio@montague.lit/lane' to='romeo@montague.lit/lane' xml:lang='en'>
			<state-annotation xmlns="urn:xmpp:psa" from="montague.lit">
				<connection-paused/>
				<description>benvolio's BOSH session has been paused</description>
			</state-annotation>
			<status>He ran this way, and leap'd this orchard wall</status>
		</presence>`)
		if err != nil || len(got) != 1 || got[0].Condition != psa.ConnectionPaused {
			t.Fatalf("%+v, %v", got, err)
		}
		if d := got[0].Descriptions[0]; d.Lang != "en" {
			t.Fatalf("description language %q, want the stanza's en", d.Lang)
		}
	})
	t.Run("two annotators among other children", func(t *testing.T) {
		got, err := find(`<presence xmlns="jabber:client" from="orchard@chats.shakespeare.lit/Juliet">
			<x xmlns="http://jabber.org/protocol/muc#user"><item role="participant"/></x>
			<state-annotation xmlns="urn:xmpp:psa" from="chats.shakespeare.lit"><server-unavailable/></state-annotation>
			<status>Ay me!</status>
			<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/></state-annotation>
			<delay xmlns="urn:xmpp:delay" stamp="2026-11-24T10:00:00Z"/>
		</presence>`)
		if err != nil || len(got) != 2 || got[0].From.String() != "chats.shakespeare.lit" || got[1].From.String() != "montague.lit" {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("nested annotations are not the presence's", func(t *testing.T) {
		got, err := find(`<presence><x xmlns="urn:example"><state-annotation xmlns="urn:xmpp:psa" from="a.example"><server-unavailable/></state-annotation></x></presence>`)
		if err != nil || len(got) != 0 {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("malformed annotation reported, good one kept", func(t *testing.T) {
		got, err := find(`<presence>
			<state-annotation xmlns="urn:xmpp:psa" from="juliet@capulet.lit"><server-unavailable/></state-annotation>
			<state-annotation xmlns="urn:xmpp:psa"/>
			<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/></state-annotation>
		</presence>`)
		if len(got) != 1 || got[0].From.String() != "montague.lit" {
			t.Fatalf("kept %+v", got)
		}
		if !errors.Is(err, psa.ErrInvalidFrom) || !errors.Is(err, psa.ErrNoFrom) {
			t.Fatalf("error = %v, want both problems", err)
		}
	})
	t.Run("no annotation", func(t *testing.T) {
		got, err := find(`<presence><status>hi</status></presence>`)
		if err != nil || got != nil {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("empty input", func(t *testing.T) {
		got, err := find(``)
		if err != nil || got != nil {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("cut short", func(t *testing.T) {
		_, err := find(`<presence><state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/>`)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			var se *xml.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error = %v, want a stream error", err)
			}
		}
		if errors.Is(err, psa.ErrMalformed) {
			t.Fatalf("a cut stream reported as a malformed annotation: %v", err)
		}
	})
}
