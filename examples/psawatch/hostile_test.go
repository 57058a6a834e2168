package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/roster"
)

// hostile is a status text a stranger can send: a line break and tabs that
// would draw a fake row, C1 and C0 controls that terminals obey, and bidi
// overrides that reorder what follows. XML 1.0 allows all of these.
const hostile = `hi&#10;mallory@evil.example&#9;phone&#9;online&#9;&#9;fresh&#13;` +
	"\u009b2J\u007f\u0085\u202eemoh\u2066x\u2069\u2028\u200f"

// checkTerminalSafe fails when out holds a character that moves the cursor
// or reorders a line, other than the line breaks between its lines, and
// when it does not have exactly lines lines.
func checkTerminalSafe(t *testing.T, out string, lines int) {
	t.Helper()
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029') {
			t.Errorf("output holds %U:\n%q", r, out)
		}
	}
	if got := strings.Count(out, "\n"); got != lines {
		t.Errorf("%d lines, want %d:\n%s", got, lines, out)
	}
	if strings.Contains(out, "\nmallory") {
		t.Errorf("a fake row was drawn:\n%s", out)
	}
}

func TestTableHostileStrings(t *testing.T) {
	m := roster.New(jid.MustParse("romeo@montague.lit"))
	m.SetItems("", []roster.Item{{JID: jid.MustParse("juliet@capulet.lit"), Name: "Juliet\x1b[2J\nmallory", Groups: []string{"g\x1b"}}})
	p := mustPresence(t, `<presence from='juliet@capulet.lit/balcony'><status>`+hostile+`</status>
		<state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`)
	m.ApplyPresence(&p)
	p = mustPresence(t, `<presence from='stranger@evil.example/r'><show>chat</show><status>`+hostile+`</status></presence>`)
	m.ApplyPresence(&p)
	var b strings.Builder
	renderRoster(&b, m.View(), time.Now())
	checkTerminalSafe(t, b.String(), 3) // header, juliet, the stranger
	if !strings.Contains(b.String(), "Juliet") || !strings.Contains(b.String(), "stranger@evil.example") {
		t.Errorf("rows missing:\n%s", b.String())
	}

	rooms := mucwatch.New(jid.MustParse("romeo@montague.lit/lane"))
	rooms.Joining(jid.MustParse("orchard@muc.montague.lit/Romeo"))
	for _, s := range []string{
		`<presence from='orchard@muc.montague.lit/Mallory'><status>` + hostile + `</status>
		   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant&#10;x&#x9b;'/></x>
		   <state-annotation xmlns='urn:xmpp:psa' from='muc.montague.lit'><link-down/></state-annotation></presence>`,
		`<presence from='orchard@muc.montague.lit/Romeo'>
		   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/><status code='110'/></x></presence>`,
	} {
		p := mustPresence(t, s)
		rooms.ApplyPresence(&p)
	}
	b.Reset()
	renderRooms(&b, rooms.View(), time.Now())
	checkTerminalSafe(t, b.String(), 5) // blank, room, header, two occupants
}

// The JSON lines carry peer strings exactly, escaped so that neither a line
// break nor a control or bidi character reaches the terminal raw.
func TestJSONHostileStrings(t *testing.T) {
	status := "hi\nmallory\t\r\x1b[2J\u009b2J\u007f\u0085\u202eemoh\u2066x\u2069\u2028\u2029\u200f\u061c"
	var b bytes.Buffer
	o := newJSONOutput(&b)
	o.print(record{Time: "t", Event: "available", JID: "juliet@capulet.lit/balcony", Status: status, Description: status})
	checkTerminalSafe(t, b.String(), 1)
	var r record
	if err := json.Unmarshal(b.Bytes(), &r); err != nil {
		t.Fatalf("not JSON: %q: %v", b.String(), err)
	}
	if r.Status != status || r.Description != status {
		t.Fatalf("status %q, want %q", r.Status, status)
	}
}
