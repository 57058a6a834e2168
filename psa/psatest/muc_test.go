package psatest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
)

const mucDomain = "muc.montague.lit"

var (
	crone   = jid.MustParse("crone1@shakespeare.lit/desktop")
	mucJID  = jid.MustParse(mucDomain)
	covenAt = func(nick string) string { return "coven@" + mucDomain + "/" + nick }
)

func newMUCServer(t *testing.T) *psatest.Server {
	return newServer(t, psatest.WithUser("romeo", "pw"), psatest.WithUser("benvolio", "pw"), psatest.WithMUC(mucDomain))
}

// join sends the join presence psakit sends: caps and no history.
func (c *client) join(occupant string) {
	c.t.Helper()
	cp := c.adv.Caps()
	c.send(fmt.Sprintf(`<presence to='%s'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>`+
		`<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='%s' ver='%s'/></presence>`, occupant, cp.Node, cp.Ver))
}

// mucPresence waits for the next presence from the occupant JID from and
// decodes it.
func (c *client) mucPresence(i *int, from string) presence.Presence {
	c.t.Helper()
	p := c.next(i, isPresenceFrom(from)).presence(c.t)
	if p.MUC == nil && p.Type != stanza.ErrorPresence {
		c.t.Fatalf("presence from %s has no muc#user payload", from)
	}
	return p
}

func TestMUCJoin(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	room := srv.Room("coven")
	if err := room.AddOccupant(ctx, "firstwitch", crone, "moderator", "owner"); err != nil {
		t.Fatal(err)
	}
	if err := room.SetSubject(ctx, "Fire Burn and Cauldron Bubble!"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv, romeoLane, "pw")
	c.join(covenAt("thirdwitch"))

	var i int
	first := c.mucPresence(&i, covenAt("firstwitch"))
	if first.MUC.Item.Role != "moderator" || first.MUC.Item.Affiliation != "owner" || !first.MUC.Item.JID.Equal(crone) || len(first.MUC.Status) != 0 {
		t.Errorf("occupant presence %+v", first.MUC)
	}
	self := c.mucPresence(&i, covenAt("thirdwitch"))
	if !slices.Equal(self.MUC.Status, []int{100, 110}) || self.MUC.Item.Role != "participant" ||
		self.MUC.Item.Affiliation != "none" || !self.MUC.Item.JID.Equal(romeoLane) {
		t.Errorf("self-presence %+v", self.MUC)
	}
	if self.Caps.Ver != c.adv.Ver() {
		t.Errorf("self-presence does not repeat the caps: %+v", self.Caps)
	}
	subject := c.next(&i, func(r received) bool { return r.name == "message" })
	if subject.from != "coven@"+mucDomain || !strings.Contains(subject.raw, "Cauldron Bubble!</subject>") {
		t.Errorf("subject %s", subject.raw)
	}

	j, err := room.NextJoin(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if j.Nick != "thirdwitch" || !j.HasMUC || j.History == nil || j.History.MaxStanzas != "0" || j.Refused != "" {
		t.Errorf("join %+v", j)
	}
	if j.Presence == nil || j.Presence.Caps.Ver != c.adv.Ver() {
		t.Errorf("join presence caps not recorded: %s", j.Raw)
	}
	occ := room.Occupants()
	if len(occ) != 2 || occ[1].Nick != "thirdwitch" || occ[1].Session == nil || occ[0].Session != nil {
		t.Errorf("occupants %+v", occ)
	}

	// A second client: the first sees it arrive, without 110.
	b := dial(t, srv, benvolioPC, "pw")
	b.join(covenAt("secondwitch"))
	other := c.mucPresence(&i, covenAt("secondwitch"))
	if slices.Contains(other.MUC.Status, 110) || !other.MUC.Item.JID.Equal(benvolioPC) || other.Caps.Ver == "" {
		t.Errorf("new occupant presence %+v", other)
	}
	var k int
	b.mucPresence(&k, covenAt("firstwitch"))
	b.mucPresence(&k, covenAt("thirdwitch"))
	if p := b.mucPresence(&k, covenAt("secondwitch")); !p.MUC.Has(110) {
		t.Errorf("second self-presence %+v", p.MUC)
	}

	// A nick in use.
	dup := dial(t, srv, romeoHall, "pw")
	dup.join(covenAt("firstwitch"))
	var d int
	if p := dup.mucPresence(&d, covenAt("firstwitch")); p.Error == nil || p.Error.Condition != stanza.Conflict {
		t.Errorf("join with a nick in use: %+v", p)
	}

	// Leaving: own unavailable with 110, the others see it go.
	c.send(`<presence type='unavailable' to='` + covenAt("thirdwitch") + `'/>`)
	if p := c.mucPresence(&i, covenAt("thirdwitch")); p.Type != stanza.UnavailablePresence || !p.MUC.Has(110) {
		t.Errorf("leave: %+v", p)
	}
	if p := b.mucPresence(&k, covenAt("thirdwitch")); p.Type != stanza.UnavailablePresence || p.MUC.Has(110) {
		t.Errorf("leave seen by another: %+v", p)
	}
	// A dropped session leaves its rooms.
	sess, _ := srv.WaitSession(ctx, benvolioPC)
	c.join(covenAt("thirdwitch"))
	c.mucPresence(&i, covenAt("thirdwitch"))
	sess.Drop()
	if p := c.mucPresence(&i, covenAt("secondwitch")); p.Type != stanza.UnavailablePresence {
		t.Errorf("after drop: %+v", p)
	}
}

func TestMUCCreateAndRewrite(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	c.join("newroom@" + mucDomain + "/romeo")
	var i int
	self := c.mucPresence(&i, "newroom@"+mucDomain+"/romeo")
	if !slices.Equal(self.MUC.Status, []int{100, 110, 201}) || self.MUC.Item.Affiliation != "owner" || self.MUC.Item.Role != "moderator" {
		t.Errorf("creating join %+v", self.MUC)
	}

	room := srv.Room("coven")
	room.SetPersistent(true)
	room.SetAnonymous(true)
	room.RewriteNicks(func(nick string) string { return strings.ToUpper(nick) })
	c.join(covenAt("romeo"))
	self = c.mucPresence(&i, covenAt("ROMEO"))
	if !slices.Equal(self.MUC.Status, []int{110, 210}) || self.MUC.Item.JID.String() != "" {
		t.Errorf("rewritten nick in a semi-anonymous persistent room: %+v", self.MUC)
	}
	j, err := room.NextJoin(ctx, func(j psatest.Join) bool { return j.Nick == "romeo" })
	if err != nil || j.Refused != "" {
		t.Errorf("join %+v, %v", j, err)
	}
}

func TestMUCKick(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  []int
		aff   string
	}{
		{codes: nil, want: []int{110, 307}, aff: "none"},
		{codes: []int{301}, want: []int{110, 301}, aff: "outcast"},
		{codes: []int{321}, want: []int{110, 321}, aff: "none"},
		{codes: []int{322}, want: []int{110, 322}, aff: "none"},
		{codes: []int{332}, want: []int{110, 332}, aff: "none"},
		{codes: []int{333}, want: []int{110, 333}, aff: "none"},
	} {
		t.Run(fmt.Sprint(tc.codes), func(t *testing.T) {
			srv := newMUCServer(t)
			ctx := testContext(t)
			room := srv.Room("coven")
			room.SetPersistent(true)
			c := dial(t, srv, romeoLane, "pw")
			b := dial(t, srv, benvolioPC, "pw")
			c.join(covenAt("romeo"))
			var i, k int
			c.mucPresence(&i, covenAt("romeo"))
			b.join(covenAt("benvolio"))
			b.mucPresence(&k, covenAt("benvolio"))
			if err := room.Kick(ctx, "romeo", tc.codes...); err != nil {
				t.Fatal(err)
			}
			p := c.mucPresence(&i, covenAt("romeo"))
			if p.Type != stanza.UnavailablePresence || !slices.Equal(p.MUC.Status, tc.want) ||
				p.MUC.Item.Role != "none" || p.MUC.Item.Affiliation != tc.aff {
				t.Errorf("kicked self-presence %+v %+v", p.Type, p.MUC)
			}
			p = b.mucPresence(&k, covenAt("romeo"))
			if p.Type != stanza.UnavailablePresence || !slices.Equal(p.MUC.Status, tc.want[1:]) {
				t.Errorf("kick seen by another %+v", p.MUC)
			}
			if err := room.Kick(ctx, "romeo"); !errors.Is(err, psatest.ErrNoOccupant) {
				t.Errorf("second kick: %v", err)
			}
		})
	}
}

func TestMUCNickChange(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	room := srv.Room("coven")
	if err := room.AddOccupant(ctx, "firstwitch", jid.JID{}, "", ""); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv, romeoLane, "pw")
	c.join(covenAt("romeo"))
	var i int
	c.mucPresence(&i, covenAt("romeo"))

	// By the service.
	if err := room.ChangeNick(ctx, "romeo", "montague"); err != nil {
		t.Fatal(err)
	}
	p := c.mucPresence(&i, covenAt("romeo"))
	if p.Type != stanza.UnavailablePresence || !slices.Equal(p.MUC.Status, []int{110, 303}) || p.MUC.Item.Nick != "montague" {
		t.Errorf("303 presence %+v", p.MUC)
	}
	if p = c.mucPresence(&i, covenAt("montague")); p.Type != "" || !p.MUC.Has(110) {
		t.Errorf("new nick presence %+v", p.MUC)
	}
	if err := room.ChangeNick(ctx, "montague", "firstwitch"); !errors.Is(err, psatest.ErrNickInUse) {
		t.Errorf("change to a nick in use: %v", err)
	}

	// Of another occupant.
	if err := room.ChangeNick(ctx, "firstwitch", "hecate"); err != nil {
		t.Fatal(err)
	}
	if p = c.mucPresence(&i, covenAt("firstwitch")); p.MUC.Item.Nick != "hecate" || !slices.Equal(p.MUC.Status, []int{303}) {
		t.Errorf("303 of another %+v", p.MUC)
	}
	c.mucPresence(&i, covenAt("hecate"))

	// By the client.
	c.send(`<presence to='` + covenAt("romeo") + `'/>`)
	if p = c.mucPresence(&i, covenAt("montague")); p.MUC.Item.Nick != "romeo" || !p.MUC.Has(303) {
		t.Errorf("client nick change %+v", p.MUC)
	}
	c.mucPresence(&i, covenAt("romeo"))
	if occ := room.Occupants(); len(occ) != 2 || occ[1].Nick != "romeo" {
		t.Errorf("occupants %+v", occ)
	}
}

func TestMUCDestroy(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	room := srv.Room("coven")
	if err := room.AddOccupant(ctx, "firstwitch", crone, "", ""); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv, romeoLane, "pw")
	c.join(covenAt("romeo"))
	var i int
	c.mucPresence(&i, covenAt("romeo"))
	venue := jid.MustParse("heath@" + mucDomain)
	if err := room.Destroy(ctx, venue, "Macbeth doth come."); err != nil {
		t.Fatal(err)
	}
	p := c.mucPresence(&i, covenAt("romeo"))
	if p.Type != stanza.UnavailablePresence || p.MUC.Destroy == nil || !p.MUC.Destroy.Venue.Equal(venue) ||
		p.MUC.Destroy.Reason != "Macbeth doth come." || !p.MUC.Has(110) {
		t.Errorf("destroy presence %+v", p.MUC)
	}
	if len(room.Occupants()) != 0 {
		t.Errorf("occupants after destroy: %+v", room.Occupants())
	}
	// The next join creates the room again.
	c.join(covenAt("romeo"))
	if p := c.mucPresence(&i, covenAt("romeo")); !p.MUC.Has(201) {
		t.Errorf("join after destroy %+v", p.MUC)
	}
}

func TestMUCRefuseJoins(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	room := srv.Room("coven")
	c := dial(t, srv, romeoLane, "pw")
	var i int
	for _, tc := range []struct {
		cond stanza.Condition
		typ  stanza.ErrorType
	}{
		{stanza.Conflict, stanza.Cancel},
		{stanza.NotAuthorized, stanza.Auth},
		{stanza.RegistrationRequired, stanza.Auth},
		{stanza.Forbidden, stanza.Auth},
		{stanza.ServiceUnavailable, stanza.Wait},
		{stanza.ItemNotFound, stanza.Cancel},
		{stanza.NotAllowed, stanza.Cancel},
	} {
		room.RefuseJoins(tc.cond)
		c.join(covenAt("romeo"))
		p := c.mucPresence(&i, covenAt("romeo"))
		if p.Type != stanza.ErrorPresence || p.Error == nil || p.Error.Condition != tc.cond || p.Error.Type != tc.typ {
			t.Errorf("%s: %+v", tc.cond, p.Error)
		}
		j, err := room.NextJoin(ctx, nil)
		if err != nil || j.Refused != tc.cond {
			t.Errorf("%s: join %+v, %v", tc.cond, j, err)
		}
	}
	room.RefuseJoins("")
	c.join(covenAt("romeo"))
	if p := c.mucPresence(&i, covenAt("romeo")); !p.MUC.Has(110) {
		t.Errorf("join accepted again: %+v", p)
	}
}

func TestMUCSelfPing(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	room := srv.Room("coven")
	c := dial(t, srv, romeoLane, "pw")
	self := jid.MustParse(covenAt("romeo"))
	selfPing := func() error {
		return c.s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: self}}.TokenReader(), nil)
	}
	if err := selfPing(); !errors.Is(err, stanza.Error{Condition: stanza.NotAcceptable}) {
		t.Errorf("self-ping before joining: %v", err)
	}
	c.join(self.String())
	var i int
	c.mucPresence(&i, self.String())
	if err := selfPing(); err != nil {
		t.Errorf("self-ping when joined: %v", err)
	}
	for _, cond := range []stanza.Condition{stanza.ServiceUnavailable, stanza.RemoteServerTimeout, stanza.NotAcceptable} {
		room.SetSelfPing(psatest.SelfPingReply{Condition: cond})
		if err := selfPing(); !errors.Is(err, stanza.Error{Condition: cond}) {
			t.Errorf("self-ping answered %v, want %s", err, cond)
		}
	}

	// Unanswered: send the ping without waiting, then a ping to the server.
	// Answers come in order, so the server's answer arriving first proves the
	// self-ping got none.
	room.SetSelfPing(psatest.SelfPingReply{Ignore: true})
	c.send(`<iq type='get' id='selfping-ignored' to='` + self.String() + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if err := c.s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: montague}}.TokenReader(), nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.dump(), "selfping-ignored") {
		t.Error("an ignored self-ping was answered")
	}
	sess, _ := srv.WaitSession(ctx, romeoLane)
	if _, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.ID == "selfping-ignored" }); err != nil {
		t.Error(err)
	}

	// A room that forgot the client answers not-acceptable.
	room.SetSelfPing(psatest.SelfPingReply{})
	if err := room.Forget("romeo"); err != nil {
		t.Fatal(err)
	}
	if err := selfPing(); !errors.Is(err, stanza.Error{Condition: stanza.NotAcceptable}) {
		t.Errorf("self-ping after Forget: %v", err)
	}
	if strings.Count(c.dump(), `type="unavailable"`) != 0 {
		t.Error("Forget told the client")
	}
}

func TestMUCAnnotate(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	room := srv.Room("coven")
	if err := room.AddOccupant(ctx, "juliet", juliet, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := room.SetPresence(ctx, "juliet", "away", "On the balcony"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv, romeoLane, "pw")
	c.join(covenAt("romeo"))
	var i int
	c.mucPresence(&i, covenAt("romeo"))

	paused := psa.Annotation{Condition: psa.ConnectionPaused}
	if err := room.Annotate(ctx, "juliet", paused); err != nil {
		t.Fatal(err)
	}
	p := c.mucPresence(&i, covenAt("juliet"))
	if len(p.Annotations) != 1 || !p.Annotations[0].From.Equal(mucJID) || p.Annotations[0].Condition != psa.ConnectionPaused ||
		p.Show != presence.ShowAway || p.StatusText() != "On the balcony" || p.MUC.Item.Role != "participant" {
		t.Errorf("annotated occupant presence %+v", p)
	}
	// A spoofed annotator.
	if err := room.Annotate(ctx, "juliet", psa.Annotation{From: jid.MustParse("evil.example"), Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	if p = c.mucPresence(&i, covenAt("juliet")); len(p.Annotations) != 2 {
		t.Errorf("annotations %+v", p.Annotations)
	}
	// The user's own server annotates the occupant JID.
	if err := srv.Annotate(ctx, romeoLane, jid.MustParse(covenAt("juliet")), psa.Annotation{Condition: psa.ServerUnavailable}); err != nil {
		t.Fatal(err)
	}
	if p = c.mucPresence(&i, covenAt("juliet")); len(p.Annotations) != 1 || !p.Annotations[0].From.Equal(montague) || p.MUC == nil {
		t.Errorf("server annotation of an occupant %+v", p.Annotations)
	}

	// A later joiner sees the room's current annotations.
	b := dial(t, srv, benvolioPC, "pw")
	b.join(covenAt("benvolio"))
	var k int
	if p = b.mucPresence(&k, covenAt("juliet")); len(p.Annotations) != 2 {
		t.Errorf("joiner sees annotations %+v", p.Annotations)
	}
	// Restored by the service: an empty annotation, the other one kept.
	if err := room.Annotate(ctx, "juliet", psa.Annotation{}); err != nil {
		t.Fatal(err)
	}
	p = b.mucPresence(&k, covenAt("juliet"))
	if len(p.Annotations) != 2 || !p.Annotations[1].Restored() || !p.Annotations[1].From.Equal(mucJID) {
		t.Errorf("restored %+v", p.Annotations)
	}
	// A fresh presence carries none.
	if err := room.SetPresence(ctx, "juliet", "", "Back"); err != nil {
		t.Fatal(err)
	}
	if p = b.mucPresence(&k, covenAt("juliet")); len(p.Annotations) != 0 {
		t.Errorf("fresh presence annotations %+v", p.Annotations)
	}
	if err := room.Annotate(ctx, "nobody", paused); !errors.Is(err, psatest.ErrNoOccupant) {
		t.Errorf("annotating nobody: %v", err)
	}
	if err := room.RemoveOccupant(ctx, "juliet"); err != nil {
		t.Fatal(err)
	}
	if p = b.mucPresence(&k, covenAt("juliet")); p.Type != stanza.UnavailablePresence {
		t.Errorf("removed occupant %+v", p)
	}
}

func TestMUCDiscoAndMessages(t *testing.T) {
	srv := newMUCServer(t)
	ctx := testContext(t)
	c := dial(t, srv, romeoLane, "pw")
	b := dial(t, srv, benvolioPC, "pw")
	c.join(covenAt("romeo"))
	b.join(covenAt("benvolio"))
	var i, k int
	c.mucPresence(&i, covenAt("benvolio"))
	b.mucPresence(&k, covenAt("benvolio"))

	// disco#info of an occupant reaches its client, and the answer comes back.
	cp := b.adv.Caps()
	in, err := discoInfo(ctx, c, jid.MustParse(covenAt("benvolio")), cp.Node+"#"+cp.Ver)
	if err != nil || len(in.Features) == 0 {
		t.Errorf("disco#info through the room: %+v, %v", in, err)
	}
	if _, err := discoInfo(ctx, c, jid.MustParse("coven@"+mucDomain), ""); err != nil {
		t.Errorf("room disco#info: %v", err)
	}
	if _, err := discoInfo(ctx, c, jid.MustParse("nowhere@"+mucDomain), ""); !errors.Is(err, stanza.Error{Condition: stanza.ItemNotFound}) {
		t.Errorf("disco#info of no room: %v", err)
	}

	c.send(`<message to='coven@` + mucDomain + `' type='groupchat'><body>Hail</body></message>`)
	m := b.next(&k, func(r received) bool { return r.name == "message" && r.from == covenAt("romeo") })
	if !strings.Contains(m.raw, "Hail") {
		t.Errorf("groupchat %s", m.raw)
	}
	c.next(&i, func(r received) bool { return r.name == "message" && r.from == covenAt("romeo") })
}

func discoInfo(ctx context.Context, c *client, to jid.JID, node string) (disco.Info, error) {
	return disco.GetInfo(ctx, node, to, c.s)
}
