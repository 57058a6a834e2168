package psatest_test

import (
	"encoding/xml"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	mroster "mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/psakit/psakit/caps"
	psaclient "github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

var (
	romeo      = jid.MustParse("romeo@montague.lit")
	romeoLane  = jid.MustParse("romeo@montague.lit/lane")
	romeoHall  = jid.MustParse("romeo@montague.lit/hall")
	juliet     = jid.MustParse("juliet@capulet.lit/balcony")
	capulet    = jid.MustParse("capulet.lit")
	montague   = jid.MustParse("montague.lit")
	benvolioPC = jid.MustParse("benvolio@montague.lit/pc")
)

func TestLoginBindsRequestedResource(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	if got := c.s.LocalAddr(); !got.Equal(romeoLane) {
		t.Errorf("client bound %s, want %s", got, romeoLane)
	}
	if _, ok := c.s.Feature(mroster.NSFeatures); !ok {
		t.Error("roster versioning is not advertised in the stream features")
	}
	sess, err := srv.WaitSession(ctx, romeoLane)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.JID().Equal(romeoLane) {
		t.Errorf("session JID %s, want %s", sess.JID(), romeoLane)
	}

	// A bare JID asks the server to choose.
	c2 := dial(t, srv, romeo, "pw")
	chosen := c2.s.LocalAddr()
	if chosen.Resourcepart() == "" || !chosen.Bare().Equal(romeo) {
		t.Fatalf("server-chosen JID %s", chosen)
	}
	if _, err := srv.WaitSession(ctx, chosen); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Sessions()); n != 2 {
		t.Errorf("%d sessions, want 2", n)
	}
	// For a bare JID, WaitSession returns the earliest session.
	if sess2, err := srv.WaitSession(ctx, romeo); err != nil || sess2 != sess {
		t.Errorf("WaitSession(bare) = %v, %v; want the first session", sess2, err)
	}
}

// The recipe of the package documentation, with mellium alone.
func TestLoginRecipePlain(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewSession(ctx, romeo.Domain(), romeo, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
				xmpp.SASL("", "pw", sasl.Plain),
				psaclient.BindResource("lane"),
			}}
		}))
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	serve(t, s)
	if !s.LocalAddr().Equal(romeoLane) {
		t.Errorf("bound %s", s.LocalAddr())
	}
	if _, err := srv.WaitSession(ctx, romeoLane); err != nil {
		t.Fatal(err)
	}
}

// mellium's own BindResource cannot ask for a resource: the server chooses.
func TestLoginMelliumBindResource(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewSession(ctx, romeo.Domain(), romeoLane, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
				xmpp.SASL("", "pw", sasl.Plain),
				xmpp.BindResource(),
			}}
		}))
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	serve(t, s)
	if got := s.LocalAddr(); got.Equal(romeoLane) || got.Resourcepart() == "" {
		t.Errorf("bound %s: did mellium fix BindResource? Update the package documentation", got)
	}
}

func TestLoginDirectTLS(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"), psatest.WithDirectTLS())
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	if v := c.s.ConnectionState().Version; v < 0x0303 {
		t.Errorf("TLS version %#x after Dial", v)
	}
	if _, err := srv.WaitSession(ctx, romeoLane); err != nil {
		t.Fatal(err)
	}
	// A plain-text client gets nowhere.
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = xmpp.NewSession(ctx, romeo.Domain(), romeo, conn, xmpp.Secure, xmpp.NewNegotiator(
		func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{xmpp.SASL("", "pw", sasl.Plain), psaclient.BindResource("x")}}
		}))
	if err == nil {
		t.Fatal("plain-text login to a direct TLS server")
	}
}

func TestLoginStartTLS(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"), psatest.WithTLS())
	ctx := testContext(t)

	// Server.Dial.
	c := dial(t, srv, romeoLane, "pw")
	if v := c.s.ConnectionState().Version; v < 0x0303 {
		t.Errorf("TLS version %#x after Dial", v)
	}

	// The recipe of the package documentation.
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewClientSession(ctx, romeo, conn,
		xmpp.StartTLS(srv.ClientTLSConfig()),
		xmpp.SASL("", "pw", sasl.ScramSha256Plus, sasl.ScramSha256, sasl.Plain),
		psaclient.BindResource("hall"),
	)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	serve(t, s)
	if !s.LocalAddr().Equal(romeoHall) || s.ConnectionState().Version == 0 {
		t.Errorf("bound %s, TLS %#x", s.LocalAddr(), s.ConnectionState().Version)
	}
	if _, err := srv.WaitSession(ctx, romeoHall); err != nil {
		t.Fatal(err)
	}

	// StartTLS is required: a client that skips it cannot log in.
	conn, err = net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = xmpp.NewSession(ctx, romeo.Domain(), romeo, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
				xmpp.SASL("", "pw", sasl.Plain),
				psaclient.BindResource("x"),
			}}
		}))
	if err == nil {
		t.Error("login without StartTLS succeeded")
	}
	if srv.RootCAs() == nil || srv.ClientTLSConfig().ServerName != "montague.lit" {
		t.Error("RootCAs or ClientTLSConfig not set")
	}
}

func TestLoginFailures(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	for _, tc := range []struct {
		name, pass string
		refuse     bool
		user       jid.JID
	}{
		{name: "wrong password", user: romeoLane, pass: "nope"},
		{name: "unknown user", user: jid.MustParse("tybalt@montague.lit/x"), pass: "pw"},
		{name: "wrong domain", user: jid.MustParse("romeo@capulet.lit/x"), pass: "pw"},
		{name: "refused", user: romeoLane, pass: "pw", refuse: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.RefuseLogins(tc.refuse)
			s, err := srv.Dial(ctx, tc.user, tc.pass)
			if err == nil {
				s.Close()
				s.Conn().Close()
				t.Fatal("login succeeded")
			}
			if !strings.Contains(err.Error(), "not-authorized") {
				t.Errorf("error %q, want the SASL failure not-authorized", err)
			}
		})
	}
	srv.RefuseLogins(false)
	srv.AddUser("tybalt", "sword")
	dial(t, srv, jid.MustParse("tybalt@montague.lit/x"), "sword")
	dial(t, srv, romeoLane, "pw")
}

func TestRosterVersioning(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	srv.SetRoster(romeo, "v2",
		roster.Item{JID: jid.MustParse("juliet@capulet.lit"), Name: "Juliet", Subscription: "both", Groups: []string{"Friends"}},
		roster.Item{JID: jid.MustParse("benvolio@montague.lit"), Subscription: "to", Ask: true},
	)
	c := dial(t, srv, romeoLane, "pw")
	fetch := func(ver string) (string, []mroster.Item) {
		t.Helper()
		iq := mroster.IQ{}
		iq.Query.Ver = ver
		it := mroster.FetchIQ(ctx, iq, c.s)
		var items []mroster.Item
		for it.Next() {
			items = append(items, it.Item())
		}
		if err := it.Err(); err != nil {
			t.Fatalf("fetch with ver %q: %v", ver, err)
		}
		it.Close()
		return it.Version(), items
	}
	ver, items := fetch("v2")
	if ver != "v2" || len(items) != 0 {
		t.Errorf("unchanged roster: ver %q, %d items; want v2 and none", ver, len(items))
	}
	for _, cached := range []string{"", "v1"} {
		ver, items = fetch(cached)
		if ver != "v2" || len(items) != 2 {
			t.Fatalf("cached %q: ver %q, items %+v", cached, ver, items)
		}
		if items[0].Name != "Juliet" || items[0].Subscription != "both" || !slices.Equal(items[0].Group, []string{"Friends"}) {
			t.Errorf("item %+v", items[0])
		}
	}
	sess, err := srv.WaitSession(ctx, romeoLane)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "iq" && st.Type == "get" })
	if err != nil || !strings.Contains(st.String(), `ver="v2"`) {
		t.Errorf("recorded roster get: %v %v", st, err)
	}
}

func TestRosterPush(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	srv.SetRoster(romeo, "v1")
	c := dial(t, srv, romeoLane, "pw")
	c2 := dial(t, srv, romeoHall, "pw")
	if _, err := srv.WaitSession(ctx, romeoHall); err != nil {
		t.Fatal(err)
	}
	nurse := roster.Item{JID: jid.MustParse("nurse@capulet.lit"), Name: "Nurse", Subscription: "from"}
	// PushRoster returns once every session answered, so the pushes were handled.
	if err := srv.PushRoster(ctx, romeo, "v2", nurse); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client{c, c2} {
		cl.mu.Lock()
		pushes := slices.Clone(cl.pushes)
		cl.mu.Unlock()
		if !slices.Equal(pushes, []string{"v2"}) {
			t.Errorf("pushes received: %q", pushes)
		}
	}
	var i int
	push := c.next(&i, func(r received) bool { return r.name == "iq" && r.typ == "set" })
	if push.from != "" {
		t.Errorf("push from %q, want none", push.from)
	}
	it := mroster.Fetch(ctx, c.s)
	n := 0
	for it.Next() {
		n++
	}
	it.Close()
	if n != 1 || it.Version() != "v2" {
		t.Errorf("after push: %d items, ver %q", n, it.Version())
	}

	// A spoofed push is a SendRaw.
	spoof := `<iq type='set' id='spoof1' from='mallory@evil.example'><query xmlns='jabber:iq:roster' ver='v666'><item jid='mallory@evil.example' subscription='both'/></query></iq>`
	if err := srv.SendRaw(ctx, romeoLane, spoof); err != nil {
		t.Fatal(err)
	}
	got := c.next(&i, func(r received) bool { return r.name == "iq" && r.typ == "set" })
	if got.from != "mallory@evil.example" {
		t.Errorf("spoofed push arrived from %q", got.from)
	}
	// The client's answer to it is recorded.
	sess, _ := srv.WaitSession(ctx, romeoLane)
	if _, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.ID == "spoof1" }); err != nil {
		t.Error(err)
	}
}

func TestContactPresenceAfterInitialPresence(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'><show>away</show><status>Wherefore</status></presence>`); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		c := dial(t, srv, romeoLane, "pw")
		c.send(`<presence/>`)
		sess, err := srv.WaitAvailable(ctx, romeoLane)
		if err != nil {
			t.Fatal(err)
		}
		var i int
		// Nothing came before the initial presence: the first stanza is the
		// client's own presence, reflected by the server (RFC 6121 §4.2.2).
		first := c.next(&i, func(received) bool { return true })
		if first.from != romeoLane.String() {
			t.Fatalf("round %d: first stanza %s", round, first.raw)
		}
		got := c.next(&i, isPresenceFrom(juliet.String())).presence(t)
		if got.Show != presence.ShowAway || got.StatusText() != "Wherefore" || !got.To.Equal(romeoLane) {
			t.Errorf("round %d: contact presence %+v", round, got)
		}
		if round == 0 {
			sess.Drop()
			if err := c.wait(); err == nil {
				t.Error("Serve returned nil after Drop")
			}
		}
	}

	// Live changes reach available sessions at once.
	c := dial(t, srv, romeoHall, "pw")
	c.send(`<presence/>`)
	if _, err := srv.WaitAvailable(ctx, romeoHall); err != nil {
		t.Fatal(err)
	}
	var i int
	c.next(&i, isPresenceFrom(juliet.String()))
	srv.ClearContactPresence(romeo, juliet)
	if r := c.next(&i, isPresenceFrom(juliet.String())); r.typ != "unavailable" {
		t.Errorf("after ClearContactPresence: %s", r.raw)
	}
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
		t.Fatal(err)
	}
	if r := c.next(&i, isPresenceFrom(juliet.String())); r.typ != "" {
		t.Errorf("after SetContactPresence: %s", r.raw)
	}
	// Own resources see each other.
	i = 0
	c.next(&i, isPresenceFrom(romeoLane.String()))
}

func TestAnnotate(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	c.send(`<presence/>`)
	if _, err := srv.WaitAvailable(ctx, romeoLane); err != nil {
		t.Fatal(err)
	}
	stamp := time.Date(2025, 3, 4, 5, 6, 7, 890000000, time.UTC)
	if err := srv.SendPresence(ctx, romeo, psatest.Presence{
		From: juliet, Show: "dnd", Status: "Busy", Delay: stamp,
		Extra: `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>`,
	}); err != nil {
		t.Fatal(err)
	}
	var i int
	first := c.next(&i, isPresenceFrom(juliet.String())).presence(t)
	if first.Show != presence.ShowDND || first.Caps.Ver != "v" || len(first.Annotations) != 0 || !first.Delay.Equal(stamp) {
		t.Fatalf("presence %+v", first)
	}

	down := psa.Annotation{Condition: psa.ServerUnavailable, Descriptions: []psa.Description{{Text: "capulet.lit is unreachable"}}}
	if err := srv.Annotate(ctx, romeo, capulet, down); err != nil {
		t.Fatal(err)
	}
	got := c.next(&i, isPresenceFrom(juliet.String())).presence(t)
	if !got.State.SameContent(first.State) {
		t.Errorf("annotated presence changed content: %+v, was %+v", got.State, first.State)
	}
	if len(got.Annotations) != 1 || got.Annotations[0].Condition != psa.ServerUnavailable ||
		!got.Annotations[0].From.Equal(montague) || got.Annotations[0].Descriptions[0].Text != "capulet.lit is unreachable" {
		t.Errorf("annotations %+v", got.Annotations)
	}

	// The link is back: an empty annotation, replacing the first one.
	if err := srv.Annotate(ctx, romeoLane, juliet, psa.Annotation{}); err != nil {
		t.Fatal(err)
	}
	got = c.next(&i, isPresenceFrom(juliet.String())).presence(t)
	if len(got.Annotations) != 1 || !got.Annotations[0].Restored() {
		t.Errorf("annotations %+v", got.Annotations)
	}

	if err := srv.Annotate(ctx, romeo, jid.MustParse("nurse@capulet.lit"), down); !errors.Is(err, psatest.ErrNoPresence) {
		t.Errorf("Annotate with nothing delivered: %v", err)
	}
	if err := srv.SendPresence(ctx, romeoLane, psatest.Presence{From: juliet, Type: stanza.UnavailablePresence}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Annotate(ctx, romeo, juliet, down); !errors.Is(err, psatest.ErrNoPresence) {
		t.Errorf("Annotate after unavailable: %v", err)
	}
	if err := srv.Annotate(ctx, jid.MustParse("nobody@montague.lit"), juliet, down); !errors.Is(err, psatest.ErrNoSession) {
		t.Errorf("Annotate to nobody: %v", err)
	}
}

func TestDiscoInfoAndPing(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	if err := c.s.Send(ctx, stanza.Presence{}.Wrap(c.adv.TokenReader())); err != nil {
		t.Fatal(err)
	}
	sess, err := srv.WaitAvailable(ctx, romeoLane)
	if err != nil {
		t.Fatal(err)
	}
	cp, ok := sess.Caps()
	if !ok || cp.Node != c.adv.Node() || cp.Ver != c.adv.Ver() || cp.Hash != "sha-1" {
		t.Fatalf("caps %+v, %v", cp, ok)
	}
	info, err := srv.DiscoInfo(ctx, romeoLane, cp.Node+"#"+cp.Ver)
	if err != nil {
		t.Fatal(err)
	}
	if err := caps.Verify(info, cp.Hash, cp.Ver); err != nil {
		t.Error(err)
	}
	if _, err := srv.DiscoInfo(ctx, romeoLane, "other-node"); !errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		t.Errorf("disco#info of an unknown node: %v", err)
	}
	if err := srv.Ping(ctx, romeoLane); err != nil {
		t.Error(err)
	}
	if err := srv.Ping(ctx, romeo); !errors.Is(err, psatest.ErrNoSession) {
		t.Errorf("Ping(bare): %v", err)
	}
}

func TestServerAnswers(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"), psatest.WithMUC("muc.montague.lit"))
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	info, err := disco.GetInfo(ctx, "", montague, c.s)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Identity) != 1 || info.Identity[0].Category != "server" || info.Identity[0].Type != "im" {
		t.Errorf("identities %+v", info.Identity)
	}
	var features []string
	for _, f := range info.Features {
		features = append(features, f.Var)
	}
	for _, want := range []string{ping.NS, "jabber:iq:roster", "http://jabber.org/protocol/disco#info"} {
		if !slices.Contains(features, want) {
			t.Errorf("features %q lack %q", features, want)
		}
	}
	if err := c.s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: montague}}.TokenReader(), nil); err != nil {
		t.Errorf("ping: %v", err)
	}
	unknown := stanza.IQ{Type: stanza.GetIQ, To: montague}.Wrap(
		wrapEmpty(xml.Name{Space: "urn:example:unknown", Local: "query"}))
	if err := c.s.UnmarshalIQ(ctx, unknown, nil); !errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) {
		t.Errorf("unknown IQ: %v", err)
	}
}

func TestRouting(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"), psatest.WithUser("benvolio", "pw"))
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	b := dial(t, srv, benvolioPC, "pw")
	if _, err := srv.WaitSession(ctx, benvolioPC); err != nil {
		t.Fatal(err)
	}
	// IQs between local sessions are routed.
	if err := c.s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: benvolioPC}}.TokenReader(), nil); err != nil {
		t.Errorf("ping to benvolio: %v", err)
	}
	// To a full JID with no session: service-unavailable.
	err := c.s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse("benvolio@montague.lit/gone")}}.TokenReader(), nil)
	if !errors.Is(err, stanza.Error{Condition: stanza.ServiceUnavailable}) {
		t.Errorf("ping to a gone resource: %v", err)
	}
	c.send(`<message to='benvolio@montague.lit/pc' type='chat'><body>hi</body></message>`)
	var i int
	m := b.next(&i, func(r received) bool { return r.name == "message" })
	if m.from != romeoLane.String() || !strings.Contains(m.raw, "hi") {
		t.Errorf("message %s", m.raw)
	}
	// Stanzas to other domains are recorded only.
	c.send(`<message to='juliet@capulet.lit' type='chat' id='m2'><body>hello</body></message>`)
	sess, _ := srv.WaitSession(ctx, romeoLane)
	if _, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.ID == "m2" && st.To.Equal(jid.MustParse("juliet@capulet.lit")) }); err != nil {
		t.Error(err)
	}
}

func TestDropAndReconnect(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	other := dial(t, srv, romeoHall, "pw")
	other.send(`<presence/>`)
	c.send(`<presence/>`)
	sess, err := srv.WaitAvailable(ctx, romeoLane)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAvailable(ctx, romeoHall); err != nil {
		t.Fatal(err)
	}
	sess.Drop()
	select {
	case <-sess.Done():
	default:
		t.Error("Done not closed after Drop")
	}
	err = c.wait()
	var se stream.Error
	if err == nil || errors.As(err, &se) {
		t.Errorf("after Drop, Serve returned %v; want a connection error", err)
	}
	// The other resource learns that the dropped one went away.
	var i int
	for {
		r := other.next(&i, isPresenceFrom(romeoLane.String()))
		if r.typ == "unavailable" {
			break
		}
	}
	if _, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "message" }); !errors.Is(err, psatest.ErrSessionClosed) {
		t.Errorf("Next on a dropped session: %v", err)
	}
	dial(t, srv, romeoLane, "pw")
	sess2, err := srv.WaitSession(ctx, romeoLane)
	if err != nil || sess2 == sess {
		t.Fatalf("new session: %v, %v", sess2, err)
	}

	srv.DropAll()
	if err := other.wait(); err == nil {
		t.Error("Serve returned nil after DropAll")
	}
	if n := len(srv.Sessions()); n != 0 {
		t.Errorf("%d sessions after DropAll", n)
	}
}

// The goroutines of a session, on both sides, end when it drops: nothing
// waits for Close.
func TestSessionGoroutinesEnd(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"), psatest.WithTLS())
	ctx := testContext(t)
	baseline := leaktest.Take()
	for range 3 {
		c := dial(t, srv, romeoLane, "pw")
		c.send(`<presence/>`)
		sess, err := srv.WaitAvailable(ctx, romeoLane)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Ping(ctx, romeoLane); err != nil {
			t.Fatal(err)
		}
		sess.Drop()
		c.wait()
		baseline.Wait(t)
	}
}

func TestCloseStream(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	for _, cond := range []stream.Error{stream.SystemShutdown, stream.Conflict, stream.PolicyViolation} {
		c := dial(t, srv, romeoLane, "pw")
		sess, err := srv.WaitSession(ctx, romeoLane)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.CloseStream(ctx, romeo, cond); err != nil {
			t.Fatal(err)
		}
		if err := c.wait(); !errors.Is(err, cond) {
			t.Errorf("Serve returned %v, want %v", err, cond)
		}
		<-sess.Done()
	}
	if err := srv.CloseStream(ctx, romeoLane, stream.Conflict); !errors.Is(err, psatest.ErrNoSession) {
		t.Errorf("CloseStream without session: %v", err)
	}
}

func TestResourceConflict(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	first := dial(t, srv, romeoLane, "pw")
	old, err := srv.WaitSession(ctx, romeoLane)
	if err != nil {
		t.Fatal(err)
	}
	dial(t, srv, romeoLane, "pw")
	if err := first.wait(); !errors.Is(err, stream.Conflict) {
		t.Errorf("first session ended with %v, want conflict", err)
	}
	sess, err := srv.WaitSession(ctx, romeoLane)
	if err != nil || sess == old {
		t.Errorf("WaitSession after conflict: %v, %v", sess, err)
	}
}

func TestRestart(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	srv.SetRoster(romeo, "v7", roster.Item{JID: jid.MustParse("juliet@capulet.lit")})
	addr := srv.Addr()
	c := dial(t, srv, romeoLane, "pw")
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err == nil {
		t.Error("Serve returned nil after Restart")
	}
	if srv.Addr() != addr {
		t.Errorf("address changed: %s, was %s", srv.Addr(), addr)
	}
	c = dial(t, srv, romeoLane, "pw")
	it := mroster.Fetch(ctx, c.s)
	for it.Next() {
	}
	it.Close()
	if it.Version() != "v7" {
		t.Errorf("roster version after restart: %q", it.Version())
	}
}

func TestClose(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	sess, err := srv.WaitSession(ctx, romeoLane)
	if err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() {
		_, err := srv.WaitSession(ctx, jid.MustParse("romeo@montague.lit/never"))
		waitErr <- err
	}()
	srv.Close()
	if err := <-waitErr; !errors.Is(err, psatest.ErrClosed) {
		t.Errorf("WaitSession after Close: %v", err)
	}
	if _, err := sess.Next(ctx, func(psatest.Stanza) bool { return false }); !errors.Is(err, psatest.ErrSessionClosed) {
		t.Errorf("Next after Close: %v", err)
	}
	if err := c.wait(); err == nil {
		t.Error("Serve returned nil after Close")
	}
	if err := srv.Restart(ctx); !errors.Is(err, psatest.ErrClosed) {
		t.Errorf("Restart after Close: %v", err)
	}
	srv.Close() // twice is fine
}

func TestSendRawHostile(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	if _, err := srv.WaitSession(ctx, romeoLane); err != nil {
		t.Fatal(err)
	}
	// A big stanza, then malformed XML: the client ends its stream.
	big := `<message from='juliet@capulet.lit/balcony'><body>` + strings.Repeat("x", 256<<10) + `</body></message>`
	if err := srv.SendRaw(ctx, romeoLane, big); err != nil {
		t.Fatal(err)
	}
	var i int
	if m := c.next(&i, func(r received) bool { return r.name == "message" }); len(m.raw) < 256<<10 {
		t.Errorf("big message cut: %d bytes", len(m.raw))
	}
	if err := srv.SendRaw(ctx, romeoLane, `<presence><unclosed></presence>`); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(); err == nil {
		t.Error("client accepted malformed XML")
	}
}

// wrapEmpty returns the tokens of an empty element.
func wrapEmpty(name xml.Name) xml.TokenReader {
	start := xml.StartElement{Name: name}
	return replayReader([]xml.Token{start, start.End()})
}

func TestNextSelective(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"), psatest.WithDomain("verona.example"))
	ctx := testContext(t)
	user := jid.MustParse("romeo@verona.example/lane")
	c := dial(t, srv, user, "pw")
	c.send(`<message id='a' to='juliet@capulet.lit'/>`)
	c.send(`<message id='b' to='juliet@capulet.lit'/>`)
	sess, err := srv.WaitSession(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	isID := func(id string) func(psatest.Stanza) bool {
		return func(st psatest.Stanza) bool { return st.ID == id }
	}
	b, err := sess.Next(ctx, isID("b"))
	if err != nil || b.ID != "b" {
		t.Fatalf("Next(b) = %v, %v", b, err)
	}
	a, err := sess.Next(ctx, nil)
	if err != nil || a.ID != "a" || a.Name != "message" || !a.To.Equal(jid.MustParse("juliet@capulet.lit")) {
		t.Fatalf("Next(nil) = %v, %v", a, err)
	}
	if !strings.HasPrefix(a.String(), `<message xmlns="jabber:client"`) {
		t.Errorf("raw %s", a.Raw)
	}
	if n := len(sess.Stanzas()); n != 2 {
		t.Errorf("%d stanzas recorded", n)
	}
	if !srv.Domain().Equal(jid.MustParse("verona.example")) {
		t.Errorf("domain %s", srv.Domain())
	}
}

func TestInvalidInput(t *testing.T) {
	srv := newServer(t, psatest.WithUser("romeo", "pw"))
	ctx := testContext(t)
	if err := srv.SetContactPresence(romeo, `<presence>`); err == nil {
		t.Error("SetContactPresence accepted malformed XML")
	}
	if err := srv.SetContactPresence(romeo, `<presence/>`); err == nil {
		t.Error("SetContactPresence accepted a presence without from")
	}
	dial(t, srv, romeoLane, "pw")
	if _, err := srv.WaitSession(ctx, romeoLane); err != nil {
		t.Fatal(err)
	}
	if err := srv.SendPresence(ctx, romeoLane, psatest.Presence{From: juliet, Extra: `<c>`}); err == nil {
		t.Error("SendPresence accepted a malformed Extra")
	}
	if err := srv.SendPresence(ctx, romeoLane, psatest.Presence{}); err == nil {
		t.Error("SendPresence accepted a presence without From")
	}
	if err := srv.SendRaw(ctx, jid.MustParse("juliet@capulet.lit"), `<message/>`); !errors.Is(err, psatest.ErrNoSession) {
		t.Errorf("SendRaw to nobody: %v", err)
	}
}
