package presence_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/language"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/internal/fastjid"
	"github.com/psakit/psakit/internal/xmltok"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// decode decodes s and checks that the decoder stopped right after the
// presence, whatever the outcome.
func decode(t *testing.T, s string) (presence.Presence, error) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s + "<after/>"))
	p, err := presence.Decode(d)
	tok, terr := d.Token()
	if next, ok := tok.(xml.StartElement); terr != nil || !ok || next.Name.Local != "after" {
		t.Fatalf("Decode did not stop at the end of the stanza: next %#v, %v", tok, terr)
	}
	return p, err
}

// A presence as Prosody re-sends it: delay, xml:lang, MUC payload, occupant
// id, caps, and the annotation after the status.
const prosodyOccupant = `<presence xmlns="jabber:client" xml:lang="en" from="orchard@chats.shakespeare.lit/Juliet" to="romeo@montague.lit/lane" id="p1">
  <show>away</show>
  <status>Ay me!</status>
  <status xml:lang="de">Weh mir!</status>
  <priority>-5</priority>
  <c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://psakit.example" ver="QgayPKawpkPSDYmwT/WM94uAlu0="/>
  <occupant-id xmlns="urn:xmpp:occupant-id:0" id="dd72603deec90a38ba552f7c68cbcc61bca202cd"/>
  <x xmlns="http://jabber.org/protocol/muc#user">
    <item affiliation="member" role="participant" jid="juliet@capulet.lit/balcony"/>
  </x>
  <delay xmlns="urn:xmpp:delay" from="montague.lit" stamp="2026-11-24T10:00:00.123Z"/>
  <state-annotation xmlns="urn:xmpp:psa" from="chats.shakespeare.lit">
    <server-unavailable/>
    <description>The user's server is no longer reachable</description>
  </state-annotation>
</presence>`

func TestDecodeFull(t *testing.T) {
	p, err := decode(t, prosodyOccupant)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "p1" || p.Type != stanza.AvailablePresence || p.Lang != "en" ||
		!p.From.Equal(jid.MustParse("orchard@chats.shakespeare.lit/Juliet")) ||
		!p.To.Equal(jid.MustParse("romeo@montague.lit/lane")) {
		t.Errorf("attributes: %+v", p)
	}
	if p.Show != presence.ShowAway || p.Priority != -5 || len(p.Status) != 2 ||
		p.Status[0] != (presence.Text{Lang: "en", Value: "Ay me!"}) || p.Status[1] != (presence.Text{Lang: "de", Value: "Weh mir!"}) {
		t.Errorf("show/status/priority: %q %d %+v", p.Show, p.Priority, p.Status)
	}
	if p.StatusText(language.German) != "Weh mir!" || p.StatusText() != "Ay me!" {
		t.Errorf("StatusText: %q, %q", p.StatusText(language.German), p.StatusText())
	}
	if p.Caps != (presence.Caps{Hash: "sha-1", Node: "https://psakit.example", Ver: "QgayPKawpkPSDYmwT/WM94uAlu0="}) {
		t.Errorf("caps: %+v", p.Caps)
	}
	if want := time.Date(2026, 11, 24, 10, 0, 0, 123e6, time.UTC); !p.Delay.Equal(want) {
		t.Errorf("delay %v, want %v", p.Delay, want)
	}
	if p.OccupantID != "dd72603deec90a38ba552f7c68cbcc61bca202cd" {
		t.Errorf("occupant id %q", p.OccupantID)
	}
	if p.MUC == nil || p.MUC.Item.Role != "participant" || p.MUC.Item.Affiliation != "member" ||
		!p.MUC.Item.JID.Equal(jid.MustParse("juliet@capulet.lit/balcony")) || len(p.MUC.Status) != 0 {
		t.Errorf("muc: %+v", p.MUC)
	}
	if len(p.Annotations) != 1 {
		t.Fatalf("annotations: %+v", p.Annotations)
	}
	a := p.Annotations[0]
	if a.From.String() != "chats.shakespeare.lit" || a.Condition != psa.ServerUnavailable ||
		a.Descriptions[0] != (psa.Description{Lang: "en", Text: "The user's server is no longer reachable"}) {
		t.Errorf("annotation: %+v", a)
	}
	if len(p.Problems) != 0 || p.Error != nil {
		t.Errorf("problems %v, error %v", p.Problems, p.Error)
	}
}

func TestDecodeXEPExamples(t *testing.T) {
	for _, in := range []string{
		`<presence from='juliet@capulet.lit/orchard' to='romeo@montague.lit/lane'><status>Available</status>` +
			`<state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><server-unavailable/><description>The capulet.lit server is no longer available</description></state-annotation></presence>`,
		`<presence from='benvolio@montague.lit/lane' to='romeo@montague.lit/lane'><state-annotation xmlns="urn:xmpp:psa" from="montague.lit"><connection-paused/>` +
			`<description>benvolio's BOSH session has been paused</description></state-annotation><status>He ran this way, and leap'd this orchard wall</status></presence>`,
	} {
		p, err := decode(t, in)
		if err != nil || len(p.Annotations) != 1 || p.Annotations[0].Restored() || len(p.Status) != 1 {
			t.Fatalf("%+v, %v", p, err)
		}
	}
	p, err := decode(t, `<presence from='benvolio@montague.lit/lane' to='romeo@montague.lit/lane' type='unavailable'/>`)
	if err != nil || p.Type != stanza.UnavailablePresence || len(p.Annotations) != 0 {
		t.Fatalf("%+v, %v", p, err)
	}
}

func TestDecodeMUC(t *testing.T) {
	p, err := decode(t, `<presence from="room@muc.example/nick" type="unavailable">
		<x xmlns="http://jabber.org/protocol/muc#user">
			<item affiliation="none" role="none" nick="newnick"><actor nick="mod"/><reason>Avaunt, you cullion!</reason></item>
			<item role="ignored"/>
			<status code="110"/><status code="307"/><status code="abc"/><status code="42"/>
			<destroy jid="other@muc.example"><reason>moved</reason></destroy>
		</x></presence>`)
	if err != nil {
		t.Fatal(err)
	}
	u := p.MUC
	if u == nil || !u.Has(110) || !u.Has(307) || u.Has(201) || len(u.Status) != 2 {
		t.Fatalf("status codes: %+v", u)
	}
	if u.Item.Nick != "newnick" || u.Item.Actor != "mod" || u.Item.Reason != "Avaunt, you cullion!" || u.Item.Role != "none" {
		t.Errorf("item: %+v", u.Item)
	}
	if u.Destroy == nil || u.Destroy.Venue.String() != "other@muc.example" || u.Destroy.Reason != "moved" {
		t.Errorf("destroy: %+v", u.Destroy)
	}
	if len(p.Problems) != 2 || !errors.Is(p.Problems[0], presence.ErrInvalidValue) {
		t.Errorf("problems: %v", p.Problems)
	}
	var nilUser *presence.MUCUser
	if nilUser.Has(110) {
		t.Error("nil MUCUser has a status")
	}
}

func TestDecodeError(t *testing.T) {
	p, err := decode(t, `<presence from="room@muc.example/nick" type="error" id="j1">
		<x xmlns="http://jabber.org/protocol/muc"/>
		<error type="cancel" by="room@muc.example"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>
		<text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas" xml:lang="en">Nickname in use</text><app xmlns="urn:example"/></error></presence>`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Error == nil || p.Error.Condition != stanza.Conflict || p.Error.Type != stanza.Cancel ||
		p.Error.By.String() != "room@muc.example" || p.Error.Text["en"] != "Nickname in use" {
		t.Fatalf("error: %+v", p.Error)
	}
	if !errors.Is(*p.Error, stanza.Error{Condition: stanza.Conflict}) {
		t.Error("errors.Is does not see the condition")
	}
}

func TestDecodeProblems(t *testing.T) {
	long := strings.Repeat("ü", presence.MaxStatusBytes)
	p, err := decode(t, `<presence from="a@b.example/c"><show>busy</show><priority>300</priority>`+
		`<status>`+long+`</status>`+strings.Repeat(`<status xml:lang="x">s</status>`, presence.MaxStatuses+1)+
		`<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="`+strings.Repeat("n", presence.MaxAttrBytes+1)+`" ver="v"/>`+
		`<delay xmlns="urn:xmpp:delay" stamp="yesterday"/>`+
		`<state-annotation xmlns="urn:xmpp:psa" from="evil@b.example"><server-unavailable/></state-annotation>`+
		`<state-annotation xmlns="urn:xmpp:psa" from="b.example"><server-unavailable/></state-annotation></presence>`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Show != presence.ShowNone || p.Priority != 0 || !p.Delay.IsZero() || p.Caps.Node != "" || p.Caps.Ver != "v" {
		t.Errorf("invalid values kept: %+v", p)
	}
	if len(p.Status) != presence.MaxStatuses || len(p.Status[0].Value) > presence.MaxStatusBytes {
		t.Errorf("status limits: %d statuses, first %d bytes", len(p.Status), len(p.Status[0].Value))
	}
	if len(p.Annotations) != 1 || p.Annotations[0].From.String() != "b.example" {
		t.Errorf("annotations: %+v", p.Annotations)
	}
	var malformed, invalid, limit int
	for _, e := range p.Problems {
		switch {
		case errors.Is(e, psa.ErrInvalidFrom):
			malformed++
		case errors.Is(e, presence.ErrInvalidValue):
			invalid++
		case errors.Is(e, presence.ErrLimit):
			limit++
		}
	}
	if malformed != 1 || invalid != 3 || limit < 2 || len(p.Problems) > 8 {
		t.Errorf("problems (%d malformed, %d invalid, %d limit): %v", malformed, invalid, limit, p.Problems)
	}
}

func TestDecodeTooManyAnnotations(t *testing.T) {
	ann := `<state-annotation xmlns="urn:xmpp:psa" from="b.example"><server-unavailable/></state-annotation>`
	bad := `<state-annotation xmlns="urn:xmpp:psa" from="a@b.example"/>`
	p, err := decode(t, `<presence from="a@b.example/c">`+strings.Repeat(ann, 3)+strings.Repeat(bad, 1000)+strings.Repeat(ann, 1000)+`</presence>`)
	if err != nil {
		t.Fatal(err)
	}
	// The malformed ones count too: a hostile stanza gets a bounded number of
	// reports, whatever it holds.
	if len(p.Annotations) != 3 || len(p.Problems) != 2 {
		t.Fatalf("%d annotations, %d problems", len(p.Annotations), len(p.Problems))
	}
}

func TestDecodeFatal(t *testing.T) {
	tests := []struct {
		in  string
		err error
	}{
		{`<message from="a@b.example"><body>hi</body></message>`, presence.ErrNotPresence},
		{`<presence from="@@"><status>x</status></presence>`, presence.ErrInvalidJID},
		{`<presence to="a@b.example/` + strings.Repeat("r", 1100) + `"/>`, presence.ErrInvalidJID},
		{`<presence type="online"><state-annotation xmlns="urn:xmpp:psa" from="b.example"><server-unavailable/></state-annotation></presence>`, presence.ErrInvalidType},
	}
	for _, tc := range tests {
		_, err := decode(t, tc.in)
		if !errors.Is(err, tc.err) {
			t.Errorf("%.40s...: error %v, want %v", tc.in, err, tc.err)
		}
	}
}

func TestDecodeCutShort(t *testing.T) {
	full := prosodyOccupant
	for i := strings.Index(full, ">") + 1; i < len(full)-1; i += 7 {
		_, err := presence.Decode(xml.NewDecoder(strings.NewReader(full[:i])))
		if err == nil {
			t.Fatalf("prefix %d decoded without error", i)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	p, err := presence.Unmarshal([]byte(`<presence from="a@b.example/c" type="subscribe"/>`))
	if err != nil || p.Type != stanza.SubscribePresence {
		t.Fatalf("%+v, %v", p, err)
	}
	if _, err := presence.Unmarshal(nil); err == nil {
		t.Fatal("no error for empty input")
	}
}

func TestStatusText(t *testing.T) {
	texts := []presence.Text{{Lang: "en", Value: "hello"}, {Lang: "fr", Value: "bonjour"}}
	for _, tc := range []struct {
		def   string
		prefs []language.Tag
		want  string
	}{
		{"", nil, "hello"},
		{"fr", nil, "bonjour"},
		{"en", []language.Tag{language.French}, "bonjour"},
		{"fr", []language.Tag{language.Japanese}, "bonjour"},
	} {
		p := presence.Presence{State: presence.State{Status: texts}, Lang: tc.def}
		if got := p.StatusText(tc.prefs...); got != tc.want {
			t.Errorf("StatusText with xml:lang %q, prefs %v = %q, want %q", tc.def, tc.prefs, got, tc.want)
		}
	}
	if (&presence.Presence{}).StatusText() != "" {
		t.Error("text from nothing")
	}
}

func TestShowAndPriority(t *testing.T) {
	for _, c := range []struct {
		in       string
		show     presence.Show
		priority int8
		problems int
	}{
		{`<show>away</show><priority>+5</priority>`, presence.ShowAway, 5, 0},
		{`<show>chat</show><priority>-128</priority>`, presence.ShowChat, -128, 0},
		{`<show>dnd</show><priority>007</priority>`, presence.ShowDND, 7, 0},
		{`<show>xa</show><priority>127</priority>`, presence.ShowXA, 127, 0},
		{`<show>Away</show><priority>128</priority>`, presence.ShowNone, 0, 2},
		{`<show> away</show><priority>5 </priority>`, presence.ShowNone, 0, 2},
		{`<show>awayawayaway</show><priority>1<!-- -->2</priority>`, presence.ShowNone, 12, 1},
		{`<show/><priority/>`, presence.ShowNone, 0, 2},
	} {
		p, err := decode(t, `<presence from="a@b.example/c">`+c.in+`</presence>`)
		if err != nil {
			t.Fatal(err)
		}
		if p.Show != c.show || p.Priority != c.priority || len(p.Problems) != c.problems {
			t.Errorf("%s: show %q priority %d problems %v", c.in, p.Show, p.Priority, p.Problems)
		}
	}
}

func TestFromString(t *testing.T) {
	for _, c := range []struct{ from, want string }{
		{"juliet@capulet.lit/balcony", "juliet@capulet.lit/balcony"},
		{"Juliet@Capulet.LIT/Balcony", "juliet@capulet.lit/Balcony"},
		{"zoë@capulet.lit", "zoë@capulet.lit"},
		{"capulet.lit.", "capulet.lit"},
		{"orchard@chats.shakespeare.lit/Nick With/Slash", "orchard@chats.shakespeare.lit/Nick With/Slash"},
	} {
		p, err := decode(t, `<presence from="`+c.from+`"/>`)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.FromString(); got != c.want || got != p.From.String() {
			t.Errorf("%q: FromString %q, From.String %q, want %q", c.from, got, p.From.String(), c.want)
		}
		bare, res := fastjid.Split(p.FromString())
		if bare != p.From.Bare().String() || res != p.From.Resourcepart() {
			t.Errorf("%q: fastjid.Split %q %q", c.from, bare, res)
		}
		// A caller that changes From gets the new JID's string.
		p.From = jid.MustParse("romeo@montague.lit/lane")
		if got := p.FromString(); got != "romeo@montague.lit/lane" {
			t.Errorf("after changing From: %q", got)
		}
	}
	var zero presence.Presence
	if zero.FromString() != "" {
		t.Error("the zero Presence has a from")
	}
	if p, err := decode(t, `<presence from="a@b.example/c" from=""/>`); err == nil && p.FromString() != p.From.String() {
		t.Errorf("duplicate from: %q vs %q", p.FromString(), p.From.String())
	}
}

// The decoder's allocations per annotated presence are what psakit adds to
// the tokenizer's on every stanza of a burst: keep them from creeping up.
// This counts allocations; it measures no time.
func TestDecodeAllocations(t *testing.T) {
	toks, err := xmlstream.ReadAll(xml.NewDecoder(strings.NewReader(annotatedPresence)))
	if err != nil {
		t.Fatal(err)
	}
	start := toks[0].(xml.StartElement)
	r := new(xmltok.Replayer)
	var d presence.Decoder // as a client uses it: one per stream
	n := testing.AllocsPerRun(100, func() {
		r.Reset(toks[1:])
		p, err := d.DecodeElement(r, start)
		if err != nil || len(p.Annotations) != 1 {
			t.Fatal(p, err)
		}
	})
	// From, status text and slice, the annotation, its description text and
	// slice. The to attribute and the annotator come from the Decoder.
	if n > 6 {
		t.Errorf("%v allocations per annotated presence, want at most 6", n)
	}
}

// The caps element's attributes: the first of each name counts (an
// oversized one included, which is dropped with a problem), qualified
// attributes are not caps attributes.
func TestDecodeCapsAttributes(t *testing.T) {
	long := strings.Repeat("v", presence.MaxAttrBytes+1)
	p, err := decode(t, `<presence from="a@b.example/c"><c xmlns="http://jabber.org/protocol/caps" xmlns:x="urn:x"`+
		` x:hash="qualified" hash="sha-1" hash="second" ver="`+long+`" ver="second" node="n"/></presence>`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Caps != (presence.Caps{Hash: "sha-1", Node: "n"}) {
		t.Errorf("caps %+v", p.Caps)
	}
	if len(p.Problems) != 1 || !errors.Is(p.Problems[0], presence.ErrLimit) {
		t.Errorf("problems %v, want one ErrLimit for ver", p.Problems)
	}
}

// The annotation limit and the malformed annotations' reports do not depend
// on the cap on Problems: a stanza that first fills Problems with junk still
// has its annotations counted and its malformed ones reported.
func TestDecodeAnnotationsPastProblemCap(t *testing.T) {
	junk := strings.Repeat(`<delay xmlns="urn:xmpp:delay" stamp="yesterday"/>`, 8)
	bad := `<state-annotation xmlns="urn:xmpp:psa" from="a@b.example"><server-unavailable/></state-annotation>`
	ann := `<state-annotation xmlns="urn:xmpp:psa" from="b.example"><server-unavailable/></state-annotation>`

	p, err := decode(t, `<presence from="a@b.example/c">`+junk+strings.Repeat(bad, 10)+`</presence>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Malformed) != presence.MaxAnnotations || p.DroppedAnnotations != 10-presence.MaxAnnotations {
		t.Fatalf("%d malformed, %d dropped; want %d, %d", len(p.Malformed), p.DroppedAnnotations,
			presence.MaxAnnotations, 10-presence.MaxAnnotations)
	}
	for _, e := range p.Malformed {
		if !errors.Is(e, psa.ErrMalformed) {
			t.Fatalf("Malformed holds %v", e)
		}
	}
	if len(p.Problems) > 8 {
		t.Fatalf("%d problems", len(p.Problems))
	}

	// Malformed annotations count towards the limit, whatever came before.
	p, err = decode(t, `<presence from="a@b.example/c">`+junk+strings.Repeat(bad, 3)+strings.Repeat(ann, 10)+`</presence>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Malformed) != 3 || len(p.Annotations) != presence.MaxAnnotations-3 || p.DroppedAnnotations != 9 {
		t.Fatalf("%d malformed, %d annotations, %d dropped", len(p.Malformed), len(p.Annotations), p.DroppedAnnotations)
	}
}
