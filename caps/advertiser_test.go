package caps_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psakit/psakit/caps"
	"mellium.im/xmlstream"
	xmppcrypto "mellium.im/xmpp/crypto"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
)

var builtinFeatures = []string{
	"http://jabber.org/protocol/caps",
	"http://jabber.org/protocol/disco#info",
	"urn:xmpp:ping",
	"urn:xmpp:psa",
}

func newAdvertiser(t *testing.T, node string, opts ...caps.Option) *caps.Advertiser {
	t.Helper()
	a, err := caps.NewAdvertiser(node, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkRehash checks that the Info of a hashes to its Ver.
func checkRehash(t *testing.T, a *caps.Advertiser) {
	t.Helper()
	if ver, err := caps.Ver(a.Info()); err != nil || ver != a.Ver() {
		t.Errorf("Ver(Info()) = %q, %v; want %q", ver, err, a.Ver())
	}
}

func TestAdvertiserDefaults(t *testing.T) {
	a := newAdvertiser(t, "")
	if a.Node() != caps.DefaultNode {
		t.Errorf("Node = %q, want %q", a.Node(), caps.DefaultNode)
	}
	if got := a.Features(); !slices.Equal(got, builtinFeatures) {
		t.Errorf("Features = %q, want %q", got, builtinFeatures)
	}
	want := []info.Identity{{Category: "client", Type: "bot", Name: "psakit"}}
	if got := a.Info().Identity; !reflect.DeepEqual(got, want) {
		t.Errorf("Identity = %+v, want %+v", got, want)
	}
	if got, want := a.Caps(), (disco.Caps{Hash: xmppcrypto.SHA1, Node: caps.DefaultNode, Ver: a.Ver()}); got != want {
		t.Errorf("Caps = %+v, want %+v", got, want)
	}
	checkRehash(t, a)
}

func TestAdvertiserOptions(t *testing.T) {
	extra := []string{"urn:example:b", disco.NSCaps, "urn:example:a", "urn:example:b"}
	a := newAdvertiser(t, "https://example.net/bot",
		caps.WithIdentity("client", "bot", "Bot", "en"),
		caps.WithIdentity("client", "bot", "Robot", "fr"),
		caps.WithFeatures(extra...),
		caps.WithForm(softwareInfo()),
		nil, // ignored
	)
	extra[0] = "modified after the option: no effect"

	wantFeatures := append(slices.Clone(builtinFeatures), "urn:example:a", "urn:example:b")
	slices.Sort(wantFeatures)
	if got := a.Features(); !slices.Equal(got, wantFeatures) {
		t.Errorf("Features = %q, want %q", got, wantFeatures)
	}
	if got := len(a.Info().Identity); got != 2 {
		t.Errorf("%d identities, want 2", got)
	}
	if a.Node() != "https://example.net/bot" {
		t.Errorf("Node = %q", a.Node())
	}
	checkRehash(t, a)

	// The same content in another order gives the same Ver.
	b := newAdvertiser(t, "https://example.net/other",
		caps.WithForm(softwareInfo()),
		caps.WithFeatures("urn:example:a", "urn:example:b"),
		caps.WithIdentity("client", "bot", "Robot", "fr"),
		caps.WithIdentity("client", "bot", "Bot", "en"),
	)
	if a.Ver() != b.Ver() {
		t.Errorf("Ver depends on option order: %s != %s", a.Ver(), b.Ver())
	}
}

func TestAdvertiserCopies(t *testing.T) {
	a := newAdvertiser(t, "", caps.WithForm(softwareInfo()))
	before := a.Info()

	in := a.Info()
	in.Identity[0].Name = "changed"
	in.Features[0].Var = "changed"
	in.Form[0] = *form.New(form.Hidden("FORM_TYPE", form.Value("urn:changed")))
	f := a.Features()
	f[0] = "changed"

	if after := a.Info(); !reflect.DeepEqual(before, after) {
		t.Errorf("Info changed through a copy:\n got %+v\nwant %+v", after, before)
	}
	if got := a.Features(); !slices.Equal(got, builtinFeatures) {
		t.Errorf("Features changed through a copy: %q", got)
	}
	checkRehash(t, a)
}

// TestAdvertiserFormAsSent checks that Ver hashes a form as mellium sends it:
// single-valued fields keep their first value, empty values are dropped.
func TestAdvertiserFormAsSent(t *testing.T) {
	sent := form.New(
		form.Hidden("FORM_TYPE", form.Value("urn:xmpp:dataforms:softwareinfo")),
		form.Text("software", form.Value("psakit"), form.Value("dropped")),
		form.TextMulti("notes", form.Value("b"), form.Value(""), form.Value("a")),
	)
	a := newAdvertiser(t, "", caps.WithForm(sent))
	checkRehash(t, a)

	want := form.New(
		form.Hidden("FORM_TYPE", form.Value("urn:xmpp:dataforms:softwareinfo")),
		form.Text("software", form.Value("psakit")),
		form.TextMulti("notes", form.Value("b"), form.Value("a")),
	)
	in := a.Info()
	in.Form = []form.Data{*want}
	if ver, err := caps.Ver(in); err != nil || ver != a.Ver() {
		t.Errorf("Ver of the form as sent = %q, %v; want %q", ver, err, a.Ver())
	}
}

func TestNewAdvertiserErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []caps.Option
		want error
	}{
		{"no category", []caps.Option{caps.WithIdentity("", "pc", "x", "")}, caps.ErrInvalidIdentity},
		{"no type", []caps.Option{caps.WithIdentity("client", "", "x", "")}, caps.ErrInvalidIdentity},
		{"empty feature", []caps.Option{caps.WithFeatures("urn:a", "")}, caps.ErrInvalidFeature},
		{
			"duplicate identity",
			[]caps.Option{caps.WithIdentity("client", "pc", "x", ""), caps.WithIdentity("client", "pc", "x", "")},
			caps.ErrDuplicateIdentity,
		},
		{
			"form without FORM_TYPE",
			[]caps.Option{caps.WithForm(form.New(form.Text("os", form.Value("Mac"))))},
			caps.ErrFormType,
		},
		{
			"FORM_TYPE not hidden",
			[]caps.Option{caps.WithForm(form.New(form.Text("FORM_TYPE", form.Value("urn:a"))))},
			caps.ErrFormType,
		},
		{
			"FORM_TYPE without value",
			[]caps.Option{caps.WithForm(form.New(form.Hidden("FORM_TYPE")))},
			caps.ErrFormType,
		},
		{
			"FORM_TYPE with two values",
			[]caps.Option{caps.WithForm(form.New(form.Hidden("FORM_TYPE", form.Value("urn:a"), form.Value("urn:b"))))},
			caps.ErrFormType,
		},
		{
			"FORM_TYPE with an empty value",
			[]caps.Option{caps.WithForm(form.New(form.Hidden("FORM_TYPE", form.Value(""))))},
			caps.ErrFormType,
		},
		{
			"duplicate field",
			[]caps.Option{caps.WithForm(form.New(form.Hidden("FORM_TYPE", form.Value("urn:a")), form.Text("x"), form.Text("x")))},
			caps.ErrDuplicateField,
		},
		{
			"duplicate FORM_TYPE",
			[]caps.Option{caps.WithForm(softwareInfo()), caps.WithForm(softwareInfo())},
			caps.ErrDuplicateFormType,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := caps.NewAdvertiser("", tc.opts...)
			if !errors.Is(err, tc.want) || a != nil {
				t.Errorf("NewAdvertiser = %v, %v; want nil, %v", a, err, tc.want)
			}
		})
	}
}

func TestAdvertiserTokenReader(t *testing.T) {
	a := newAdvertiser(t, "https://example.net/bot")
	want := `<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://example.net/bot" ver="` + a.Ver() + `"></c>`
	for i := range 2 { // a fresh reader each time
		var b strings.Builder
		e := xml.NewEncoder(&b)
		if _, err := xmlstream.Copy(e, a.TokenReader()); err != nil {
			t.Fatal(err)
		}
		e.Flush()
		if b.String() != want {
			t.Errorf("call %d: %s, want %s", i, b.String(), want)
		}
	}
}

// TestHandleIQ calls the handler directly with requests that a session may
// deliver, including those HandleDiscoInfo never routes to it.
func TestHandleIQ(t *testing.T) {
	a := newAdvertiser(t, "https://example.net/bot")
	iq := stanza.IQ{
		XMLName: xml.Name{Space: stanza.NSClient, Local: "iq"},
		ID:      "q1",
		Type:    stanza.GetIQ,
		From:    jid.MustParse("bob@example.org/x"),
	}
	query := func(attr ...xml.Attr) *xml.StartElement {
		return &xml.StartElement{Name: xml.Name{Space: disco.NSInfo, Local: "query"}, Attr: attr}
	}
	node := func(v string) xml.Attr { return xml.Attr{Name: xml.Name{Local: "node"}, Value: v} }
	answer := `<iq xmlns="jabber:client" type="result" to="bob@example.org/x" id="q1">` +
		`<query xmlns="http://jabber.org/protocol/disco#info"%s>` +
		`<identity xmlns="http://jabber.org/protocol/disco#info" category="client" type="bot" name="psakit"></identity>` +
		`<feature xmlns="http://jabber.org/protocol/disco#info" var="http://jabber.org/protocol/caps"></feature>` +
		`<feature xmlns="http://jabber.org/protocol/disco#info" var="http://jabber.org/protocol/disco#info"></feature>` +
		`<feature xmlns="http://jabber.org/protocol/disco#info" var="urn:xmpp:ping"></feature>` +
		`<feature xmlns="http://jabber.org/protocol/disco#info" var="urn:xmpp:psa"></feature>` +
		`</query></iq>`
	errorReply := `<iq xmlns="jabber:client" type="error" to="bob@example.org/x" id="q1"><error type="cancel"><%s xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></%[1]s></error></iq>`
	setIQ, resultIQ, errorIQ := iq, iq, iq
	setIQ.Type, resultIQ.Type, errorIQ.Type = stanza.SetIQ, stanza.ResultIQ, stanza.ErrorIQ
	unavailable := fmt.Sprintf(errorReply, "service-unavailable")

	for _, tc := range []struct {
		name  string
		iq    stanza.IQ
		start *xml.StartElement
		want  string // the answer; "" for none
	}{
		{"node empty", iq, query(), fmt.Sprintf(answer, "")},
		{"NODE#VER", iq, query(node(a.Node() + "#" + a.Ver())), fmt.Sprintf(answer, ` node="`+a.Node()+"#"+a.Ver()+`"`)},
		{"other node", iq, query(node("https://example.net/bot#other")), fmt.Sprintf(errorReply, "item-not-found")},
		{"node in a namespace", iq, query(xml.Attr{Name: xml.Name{Space: "urn:x", Local: "node"}, Value: "x"}), fmt.Sprintf(answer, "")},
		{"set", setIQ, query(), unavailable},
		{"other payload", iq, &xml.StartElement{Name: xml.Name{Space: disco.NSItems, Local: "query"}}, unavailable},
		{"no payload", iq, nil, unavailable},
		{"result", resultIQ, query(), ""},
		{"error", errorIQ, query(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			if err := a.HandleIQ(tc.iq, r, tc.start); err != nil {
				t.Fatal(err)
			}
			got := r.String()
			if got != tc.want {
				t.Errorf("answer:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

type failingWriter struct{ xmlstream.TokenReadEncoder }

func (failingWriter) EncodeToken(xml.Token) error { return errors.New("broken pipe") }

func TestHandleIQWriteError(t *testing.T) {
	a := newAdvertiser(t, "")
	iq := stanza.IQ{ID: "q1", Type: stanza.GetIQ}
	start := &xml.StartElement{Name: xml.Name{Space: disco.NSInfo, Local: "query"}}
	if err := a.HandleIQ(iq, failingWriter{}, start); err == nil {
		t.Error("HandleIQ returned nil after a write error")
	}
	start.Attr = []xml.Attr{{Name: xml.Name{Local: "node"}, Value: "other"}}
	if err := a.HandleIQ(iq, failingWriter{}, start); err == nil {
		t.Error("HandleIQ returned nil after a write error of a stanza error")
	}
}

// TestHandleDiscoInfoOnTheWire queries a client that serves the Advertiser
// from a server session, through mellium's own disco.GetInfo.
func TestHandleDiscoInfoOnTheWire(t *testing.T) {
	a := newAdvertiser(t, "https://example.net/bot",
		caps.WithIdentity("client", "bot", "Bot", "en"),
		caps.WithIdentity("client", "bot", "Ρομπότ", "el"),
		caps.WithFeatures("urn:example:a"),
		caps.WithForm(softwareInfo()),
	)
	p := newTestPair(t, mux.New(stanza.NSClient, a.HandleDiscoInfo(), ping.Handle()))
	to := p.Client.LocalAddr()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	for _, node := range []string{"", a.Node() + "#" + a.Ver()} {
		in, err := disco.GetInfo(ctx, node, to, p.Server)
		if err != nil {
			t.Fatalf("node %q: %v", node, err)
		}
		if in.Node != node {
			t.Errorf("node %q: answer for node %q", node, in.Node)
		}
		if ver, err := caps.Ver(in); err != nil || ver != a.Ver() {
			t.Errorf("node %q: Ver(answer) = %q, %v; want %q", node, ver, err, a.Ver())
		}
		if err := caps.Verify(in, "sha-1", a.Ver()); err != nil {
			t.Errorf("node %q: Verify: %v", node, err)
		}
		if len(in.Identity) != 2 || len(in.Form) != 1 {
			t.Errorf("node %q: %d identities and %d forms, want 2 and 1", node, len(in.Identity), len(in.Form))
		}
	}

	for _, node := range []string{"other", a.Node(), a.Node() + "#", a.Node() + "#" + exodusVer} {
		_, err := disco.GetInfo(ctx, node, to, p.Server)
		if want := (stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}); !errors.Is(err, want) {
			t.Errorf("node %q: error = %v, want item-not-found", node, err)
		}
	}

	// A disco#info set has no handler: mellium answers service-unavailable.
	set := stanza.IQ{Type: stanza.SetIQ, To: to}.Wrap(disco.InfoQuery{}.TokenReader())
	if err := p.Server.UnmarshalIQ(ctx, set, nil); !errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) {
		t.Errorf("set: error = %v, want service-unavailable", err)
	}

	// The session survived the bad requests.
	if _, err := disco.GetInfo(ctx, "", to, p.Server); err != nil {
		t.Errorf("after bad requests: %v", err)
	}
	p.checkAlive(t)
}

// TestConcurrentUse runs readers of one Advertiser and of one disco.Info in
// parallel, for the race detector.
func TestConcurrentUse(t *testing.T) {
	a := newAdvertiser(t, "", caps.WithForm(softwareInfo()))
	in := psiInfo()
	start := &xml.StartElement{Name: xml.Name{Space: disco.NSInfo, Local: "query"}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if ver, err := caps.Ver(in); err != nil || ver != psiVer {
					t.Errorf("Ver = %q, %v", ver, err)
				}
				checkRehash(t, a)
				if err := a.HandleIQ(stanza.IQ{Type: stanza.GetIQ}, newRecorder(), start); err != nil {
					t.Error(err)
				}
				if _, err := xmlstream.Copy(xml.NewEncoder(io.Discard), a.TokenReader()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
