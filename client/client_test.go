package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"github.com/psakit/psakit/caps"
	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/leaktest"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

var (
	romeo    = jid.MustParse("romeo@montague.lit")
	juliet   = jid.MustParse("juliet@capulet.lit/balcony")
	nurse    = jid.MustParse("nurse@capulet.lit/kitchen")
	montague = jid.MustParse("montague.lit")
)

const password = "wherefore"

// recorder collects what the client's callbacks receive. Callbacks run on
// the client's dispatcher goroutine; tests read from the channels.
type recorder struct {
	roster   chan roster.Event
	room     chan mucwatch.Event
	action   chan client.RoomAction
	conn     chan client.ConnEvent
	verify   chan client.VerifyResult
	presence chan presence.Presence
	overflow chan int
}

func newRecorder() *recorder {
	return &recorder{
		roster:   make(chan roster.Event, 100_000),
		room:     make(chan mucwatch.Event, 100_000),
		action:   make(chan client.RoomAction, 100),
		conn:     make(chan client.ConnEvent, 100),
		verify:   make(chan client.VerifyResult, 100),
		presence: make(chan presence.Presence, 100),
		overflow: make(chan int, 100),
	}
}

// options returns the callbacks that feed the recorder, for Dial.
func (r *recorder) options() []client.Option {
	opts := []client.Option{client.OnConnection(func(e client.ConnEvent) { r.conn <- e })}
	for _, o := range r.trackerOptions() {
		opts = append(opts, o)
	}
	return opts
}

// trackerOptions returns the callbacks that feed the recorder, but
// OnConnection: a Tracker has no connection.
func (r *recorder) trackerOptions() []client.TrackerOption {
	return []client.TrackerOption{
		client.OnRoster(func(e roster.Event) { r.roster <- e }),
		client.OnRoom(func(e mucwatch.Event) { r.room <- e }),
		client.OnRoomAction(func(a client.RoomAction) { r.action <- a }),
		client.OnVerify(func(v client.VerifyResult) { r.verify <- v }),
		client.OnPresence(func(p presence.Presence) { r.presence <- p }),
		client.OnOverflow(func(n int) { r.overflow <- n }),
	}
}

// nextRoster waits for the next roster event that match accepts, skipping
// the others.
func (r *recorder) nextRoster(ctx context.Context, t *testing.T, what string, match func(roster.Event) bool) roster.Event {
	t.Helper()
	for {
		select {
		case e := <-r.roster:
			if match(e) {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("no roster event: %s", what)
		}
	}
}

// waitRoster waits until every predicate has matched one event (in any
// order), skipping events no predicate wants.
func (r *recorder) waitRoster(ctx context.Context, t *testing.T, what string, preds ...func(roster.Event) bool) {
	t.Helper()
	for len(preds) > 0 {
		select {
		case e := <-r.roster:
			for i, p := range preds {
				if p(e) {
					preds = slices.Delete(preds, i, i+1)
					break
				}
			}
		case <-ctx.Done():
			t.Fatalf("%s: %d events never came", what, len(preds))
		}
	}
}

// nextRoom waits for the next room event of kind, skipping the others.
func (r *recorder) nextRoom(ctx context.Context, t *testing.T, kind mucwatch.EventKind) mucwatch.Event {
	t.Helper()
	for {
		select {
		case e := <-r.room:
			if e.Kind == kind {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("no %s room event", kind)
		}
	}
}

// nextAction waits for the next room policy action of kind.
func (r *recorder) nextAction(ctx context.Context, t *testing.T, kind client.RoomActionKind) client.RoomAction {
	t.Helper()
	for {
		select {
		case a := <-r.action:
			if a.Kind == kind {
				return a
			}
		case <-ctx.Done():
			t.Fatalf("no %s room action", kind)
		}
	}
}

func (r *recorder) nextConn(ctx context.Context, t *testing.T, kind client.ConnEventKind) client.ConnEvent {
	t.Helper()
	for {
		select {
		case e := <-r.conn:
			if e.Kind == kind {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("no %s connection event", kind)
		}
	}
}

func kindJID(kind roster.EventKind, j jid.JID) func(roster.Event) bool {
	return func(e roster.Event) bool { return e.Kind == kind && e.JID.Equal(j) }
}

// setup starts a server with romeo and returns it with a test context.
func setup(t *testing.T, opts ...psatest.Option) (*psatest.Server, context.Context) {
	t.Helper()
	leaktest.Check(t)
	srv := psatest.NewServer(append([]psatest.Option{psatest.WithUser("romeo", password)}, opts...)...)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return srv, ctx
}

// dial connects romeo in plain text, as resource "lane".
func dial(ctx context.Context, t *testing.T, srv *psatest.Server, rec *recorder, opts ...client.Option) *client.Client {
	t.Helper()
	all := []client.Option{
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText), client.WithResource("lane"),
		client.WithReconnect(time.Millisecond, 20*time.Millisecond),
	}
	if rec != nil {
		all = append(all, rec.options()...)
	}
	c, err := client.Dial(ctx, romeo, password, append(all, opts...)...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnectAdvertiseTrack(t *testing.T) {
	srv, ctx := setup(t)
	srv.SetRoster(romeo, "v1",
		roster.Item{JID: juliet.Bare(), Name: "Juliet", Subscription: roster.SubscriptionBoth},
		roster.Item{JID: nurse.Bare(), Subscription: roster.SubscriptionTo})
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'><show>away</show><status>on the balcony</status></presence>`); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithPresence(presence.ShowChat, "here", 3))

	// The resource we asked for was bound.
	if got := c.JID().String(); got != "romeo@montague.lit/lane" {
		t.Fatalf("bound %s, want romeo@montague.lit/lane", got)
	}
	if e := rec.nextConn(ctx, t, client.ConnConnected); !e.JID.Equal(c.JID()) {
		t.Fatalf("connected as %s", e.JID)
	}
	rec.nextRoster(ctx, t, "item juliet", kindJID(roster.EventItemAdded, juliet.Bare()))
	e := rec.nextRoster(ctx, t, "juliet available", kindJID(roster.EventAvailable, juliet))
	if e.Resource.Show != presence.ShowAway || e.Resource.StatusText() != "on the balcony" || !e.Fresh() {
		t.Fatalf("juliet: %+v", e.Resource)
	}
	if m := c.Roster(); m.Version() != "v1" || m.Stats().Items != 2 {
		t.Fatalf("roster version %q, stats %+v", m.Version(), m.Stats())
	}

	// What the server saw: presence with show, status, priority and caps;
	// the caps verify against the client's disco#info, which lists psa.
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	last, _ := sess.LastPresence()
	if p := last.Presence; p == nil || p.Show != presence.ShowChat || p.StatusText() != "here" || p.Priority != 3 {
		t.Fatalf("presence sent: %s", last.Raw)
	}
	pc, ok := sess.Caps()
	if !ok || pc.Hash != "sha-1" || pc.Node != caps.DefaultNode {
		t.Fatalf("caps %+v, %v", pc, ok)
	}
	for _, node := range []string{"", pc.Node + "#" + pc.Ver} {
		answer, err := srv.DiscoInfo(ctx, c.JID(), node)
		if err != nil {
			t.Fatalf("disco#info %q: %v", node, err)
		}
		if err := caps.Verify(answer, pc.Hash, pc.Ver); err != nil {
			t.Fatalf("disco#info %q: %v", node, err)
		}
		if !slices.ContainsFunc(answer.Features, func(f info.Feature) bool { return f.Var == psa.NS }) {
			t.Fatalf("disco#info %q lacks %s", node, psa.NS)
		}
	}
	if _, err := srv.DiscoInfo(ctx, c.JID(), "other#node"); err == nil {
		t.Fatal("disco#info for another node answered")
	}
	if err := srv.Ping(ctx, c.JID()); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// The first case of XEP-0310 on the wire, and the restore policy.
func TestAnnotationsAndVerify(t *testing.T) {
	srv, ctx := setup(t)
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'><status>Available</status></presence>`); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithVerify(client.VerifyPing, 1000))
	rec.nextRoster(ctx, t, "juliet available", kindJID(roster.EventAvailable, juliet))

	err := srv.Annotate(ctx, c.JID(), juliet, psa.Annotation{From: montague, Condition: psa.ServerUnavailable,
		Descriptions: []psa.Description{{Text: "The capulet.lit server is no longer available"}}})
	if err != nil {
		t.Fatal(err)
	}
	e := rec.nextRoster(ctx, t, "juliet stale", kindJID(roster.EventStale, juliet))
	if e.Fresh() || e.Mark.Condition != psa.ServerUnavailable || !e.Mark.By.Equal(montague) || !e.Resent {
		t.Fatalf("stale event %+v", e)
	}
	if r, _ := c.Roster().Resource(juliet); r.Fresh() {
		t.Fatal("model fresh after the stale event")
	}

	if err := srv.Annotate(ctx, c.JID(), juliet, psa.Annotation{From: montague}); err != nil {
		t.Fatal(err)
	}
	e = rec.nextRoster(ctx, t, "juliet restored", kindJID(roster.EventRestored, juliet))
	if !e.Fresh() {
		t.Fatalf("restored event %+v", e)
	}

	// The restore policy pings juliet; the test plays capulet.lit's answers:
	// her session is gone.
	sess, _ := srv.WaitAvailable(ctx, c.JID())
	answerIQ(ctx, t, srv, sess, c.JID(), nsPing, errorAnswer("service-unavailable"))
	answerIQ(ctx, t, srv, sess, c.JID(), nsDiscoInfo, errorAnswer("service-unavailable"))
	v := nextVerify(ctx, t, rec)
	if !v.JID.Equal(juliet) || v.Outcome != client.VerifyGone || v.Policy != client.VerifyPing || condition(v.Err) != "service-unavailable" {
		t.Fatalf("verify %+v", v)
	}
}

const (
	nsPing      = "urn:xmpp:ping"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
)

// TestVerifyPing checks what VerifyPing makes of the answers a contact's
// resource or its server give: a client without XEP-0199 support answers the
// ping service-unavailable, as a server does for a resource that is gone,
// and only then a disco#info query follows.
func TestVerifyPing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ping    string // the answer to the ping: "result" or an error condition
		disco   string // the answer to disco#info, "" when none is expected
		outcome client.VerifyOutcome
		err     string // the condition of VerifyResult.Err
	}{
		{"the client answers", "result", "", client.VerifyAlive, ""},
		{"the client says ping is not implemented", "feature-not-implemented", "", client.VerifyAlive, ""},
		{"the server says the resource is gone", "item-not-found", "", client.VerifyGone, "item-not-found"},
		{"a client without ping", "service-unavailable", "result", client.VerifyAlive, ""},
		{"the server, for both", "service-unavailable", "service-unavailable", client.VerifyGone, "service-unavailable"},
		{"a server error", "internal-server-error", "", client.VerifyUnknown, "internal-server-error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, ctx := setup(t)
			if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			c := dial(ctx, t, srv, rec, client.WithVerify(client.VerifyPing, 1000))
			rec.nextRoster(ctx, t, "juliet available", kindJID(roster.EventAvailable, juliet))
			for _, a := range []psa.Annotation{{From: montague, Condition: psa.ServerUnavailable}, {From: montague}} {
				if err := srv.Annotate(ctx, c.JID(), juliet, a); err != nil {
					t.Fatal(err)
				}
			}
			rec.nextRoster(ctx, t, "juliet restored", kindJID(roster.EventRestored, juliet))

			sess, _ := srv.WaitAvailable(ctx, c.JID())
			answerIQ(ctx, t, srv, sess, c.JID(), nsPing, answer(tc.ping))
			if tc.disco != "" {
				answerIQ(ctx, t, srv, sess, c.JID(), nsDiscoInfo, answer(tc.disco))
			}
			v := nextVerify(ctx, t, rec)
			if !v.JID.Equal(juliet) || v.Outcome != tc.outcome || string(condition(v.Err)) != tc.err {
				t.Fatalf("verify %+v (%v), want %s with %q", v, v.Err, tc.outcome, tc.err)
			}
			if tc.disco == "" {
				// The verification is over: no disco#info query came before it.
				for _, st := range sess.Stanzas() {
					if st.To.Equal(juliet) && strings.Contains(string(st.Raw), nsDiscoInfo) {
						t.Errorf("a disco#info query after a decisive ping answer: %s", st.Raw)
					}
				}
			}
		})
	}
}

// answer returns the answer to an IQ: a result, or an error of condition.
func answer(condition string) func(id string, to, from jid.JID, payload string) string {
	if condition == "result" {
		return func(id string, to, from jid.JID, _ string) string {
			return fmt.Sprintf(`<iq type='result' id='%s' from='%s' to='%s'/>`, id, from, to)
		}
	}
	return errorAnswer(condition)
}

// errorAnswer returns an IQ error answer of condition.
func errorAnswer(condition string) func(id string, to, from jid.JID, payload string) string {
	return func(id string, to, from jid.JID, payload string) string {
		return fmt.Sprintf(`<iq type='error' id='%s' from='%s' to='%s'>%s<error type='cancel'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, id, from, to, payload, condition)
	}
}

// answerIQ waits for the client's IQ get to juliet with a payload in ns and
// sends juliet's answer (or her server's), which reply writes.
func answerIQ(ctx context.Context, t *testing.T, srv *psatest.Server, sess *psatest.Session, account jid.JID, ns string, reply func(id string, to, from jid.JID, payload string) string) {
	t.Helper()
	iq, err := sess.Next(ctx, func(st psatest.Stanza) bool {
		return st.Name == "iq" && st.Type == "get" && st.To.Equal(juliet) && strings.Contains(string(st.Raw), ns)
	})
	if err != nil {
		t.Fatalf("no IQ in %s to juliet: %v", ns, err)
	}
	if err := srv.SendRaw(ctx, account, reply(iq.ID, account, juliet, "")); err != nil {
		t.Fatal(err)
	}
}

func nextVerify(ctx context.Context, t *testing.T, rec *recorder) client.VerifyResult {
	t.Helper()
	select {
	case v := <-rec.verify:
		return v
	case <-ctx.Done():
		t.Fatal("no verify result")
		return client.VerifyResult{}
	}
}

// condition returns the condition of a stanza error, "" for nil.
func condition(err error) stanza.Condition {
	var se stanza.Error
	if errors.As(err, &se) {
		return se.Condition
	}
	return ""
}

// The trust rule on the wire: annotations nobody may send are rejected and
// never applied.
func TestSpoofedAnnotations(t *testing.T) {
	srv, ctx := setup(t)
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	c := dial(ctx, t, srv, rec)
	rec.nextRoster(ctx, t, "juliet available", kindJID(roster.EventAvailable, juliet))

	for _, tc := range []struct {
		name, stanza string
		err          error
	}{
		{"from the contact herself", `<presence from='juliet@capulet.lit/balcony'><state-annotation xmlns='urn:xmpp:psa' from='juliet@capulet.lit'><server-unavailable/></state-annotation></presence>`, psa.ErrMalformed},
		{"from a foreign domain", `<presence from='juliet@capulet.lit/balcony'><state-annotation xmlns='urn:xmpp:psa' from='evil.example'><server-unavailable/></state-annotation></presence>`, psa.ErrUntrusted},
		{"on unavailable presence", `<presence from='nurse@capulet.lit/kitchen' type='unavailable'><state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`, psa.ErrExcluded},
		{"on a subscription request", `<presence from='tybalt@capulet.lit' type='subscribe'><state-annotation xmlns='urn:xmpp:psa' from='capulet.lit'><server-unavailable/></state-annotation></presence>`, psa.ErrExcluded},
	} {
		if err := srv.SendRaw(ctx, c.JID(), tc.stanza); err != nil {
			t.Fatal(err)
		}
		e := rec.nextRoster(ctx, t, tc.name, func(e roster.Event) bool { return e.Kind == roster.EventRejected })
		if !errors.Is(e.Err, tc.err) {
			t.Fatalf("%s: rejected with %v, want %v", tc.name, e.Err, tc.err)
		}
	}
	if r, _ := c.Roster().Resource(juliet); !r.Fresh() {
		t.Fatalf("a spoofed mark was applied: %+v", r.Marks)
	}
	if s := c.Roster().Stats(); s.Stale != 0 || s.Resources != 1 {
		t.Fatalf("stats %+v", s)
	}
	// The subscription request still reaches the application.
	select {
	case p := <-rec.presence:
		if p.Type != "subscribe" {
			t.Fatalf("presence %+v", p)
		}
	case <-ctx.Done():
		t.Fatal("subscription request not delivered")
	}
}

// A burst of 10,000 annotated presences: all applied, all delivered.
func TestBurst(t *testing.T) {
	srv, ctx := setup(t)
	const n = 10_000
	items := make([]roster.Item, n)
	for i := range items {
		items[i] = roster.Item{JID: jid.MustParse(fmt.Sprintf("c%d@capulet.lit", i)), Subscription: roster.SubscriptionBoth}
	}
	srv.SetRoster(romeo, "v1", items...)
	rec := newRecorder()
	c := dial(ctx, t, srv, rec)
	rec.nextConn(ctx, t, client.ConnConnected)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `<presence from='c%d@capulet.lit/r'><status>s</status></presence>`, i)
	}
	for i := range n {
		fmt.Fprintf(&b, `<presence from='c%d@capulet.lit/r'><status>s</status><state-annotation xmlns='urn:xmpp:psa' from='montague.lit'><server-unavailable/></state-annotation></presence>`, i)
	}
	if err := srv.SendRaw(ctx, c.JID(), b.String()); err != nil {
		t.Fatal(err)
	}
	available, stale := 0, 0
	for available < n || stale < n {
		select {
		case e := <-rec.roster:
			switch e.Kind {
			case roster.EventAvailable:
				available++
			case roster.EventStale:
				stale++
			case roster.EventItemAdded:
			default:
				t.Fatalf("unexpected %s", e.Kind)
			}
		case <-ctx.Done():
			t.Fatalf("%d available and %d stale events of %d", available, stale, n)
		}
	}
	if s := c.Roster().Stats(); s.Resources != n || s.Stale != n {
		t.Fatalf("stats %+v", s)
	}
}

// A callback that blocks never stalls the stream: the server's ping is
// answered while the callback waits, and the events that did not fit the
// queue are counted.
func TestSlowCallbackAndOverflow(t *testing.T) {
	srv, ctx := setup(t)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	blocked := make(chan struct{})
	overflow := make(chan int, 10)
	var delivered atomic.Int64
	c := dial(ctx, t, srv, nil, client.WithQueueSize(10),
		client.OnRoster(func(e roster.Event) {
			if delivered.Add(1) == 1 {
				close(blocked)
				<-release
			}
		}),
		client.OnOverflow(func(n int) { overflow <- n }))
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, `<presence from='c%d@capulet.lit/r'/>`, i)
	}
	if err := srv.SendRaw(ctx, c.JID(), b.String()); err != nil {
		t.Fatal(err)
	}
	<-blocked
	// The stream goes on while the callback is stuck: a ping round trip...
	if err := srv.Ping(ctx, c.JID()); err != nil {
		t.Fatalf("ping while the callback blocks: %v", err)
	}
	// ...and the model is current.
	if n := c.Roster().Stats().Resources; n != 100 {
		t.Fatalf("model has %d resources, want 100", n)
	}
	close(release)
	// Depending on when the dispatcher took the first event, the drops come
	// in one or two reports. Each comes after the events queued before it,
	// and every presence was already applied, so once the last report is in
	// everything is accounted for.
	dropped := 0
	for delivered.Load()+int64(dropped) != 100 {
		select {
		case n := <-overflow:
			dropped += n
		case <-ctx.Done():
			t.Fatalf("%d delivered and %d dropped, want 100 in all", delivered.Load(), dropped)
		}
	}
	// What got through: the events the dispatcher had taken when the
	// callback blocked, and the 10 the queue held; whatever the timing, some
	// of the 100 did not fit.
	if dropped == 0 {
		t.Fatalf("%d delivered and nothing dropped with a queue of 10", delivered.Load())
	}
}

// The third case: our own connection is lost and recovered. Every entry is
// marked local-disconnected, the roster is fetched again by version, and the
// entries the server does not send again are swept after the settle window.
func TestReconnectAndSettle(t *testing.T) {
	srv, ctx := setup(t)
	srv.SetRoster(romeo, "v1", roster.Item{JID: juliet.Bare()}, roster.Item{JID: nurse.Bare()})
	for _, p := range []string{`<presence from='juliet@capulet.lit/balcony'/>`, `<presence from='nurse@capulet.lit/kitchen'/>`} {
		if err := srv.SetContactPresence(romeo, p); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	c := dial(ctx, t, srv, rec, client.WithSettle(3*time.Second))
	rec.waitRoster(ctx, t, "both available", kindJID(roster.EventAvailable, nurse), kindJID(roster.EventAvailable, juliet))
	first, _ := srv.WaitAvailable(ctx, c.JID())
	rec.nextConn(ctx, t, client.ConnConnected)

	// The nurse goes offline while we are away: after the drop, so that
	// the server has no session of ours to tell (cleared first, her
	// unavailable could still reach us before the connection closed).
	first.Drop()
	srv.ClearContactPresence(romeo, nurse)

	d := rec.nextConn(ctx, t, client.ConnDisconnected)
	var de *client.DisconnectError
	if !errors.As(d.Err, &de) || de.Reason != client.ReasonNetwork {
		t.Fatalf("disconnected with %v", d.Err)
	}
	for range 2 {
		e := rec.nextRoster(ctx, t, "local-disconnected", func(e roster.Event) bool { return e.Kind == roster.EventStale })
		if e.Mark.Condition != psa.LocalDisconnected || e.Fresh() {
			t.Fatalf("stale event %+v", e)
		}
	}
	if r := rec.nextConn(ctx, t, client.ConnReconnecting); r.Attempt != 1 {
		t.Fatalf("reconnecting %+v", r)
	}
	rec.nextConn(ctx, t, client.ConnConnected)
	e := rec.nextRoster(ctx, t, "juliet refreshed", kindJID(roster.EventRestored, juliet))
	if e.Mark.Condition != psa.LocalDisconnected || !e.Fresh() {
		t.Fatalf("restored %+v", e)
	}
	if s := rec.nextConn(ctx, t, client.ConnResynced); s.Swept != 1 {
		t.Fatalf("resynced %+v", s)
	}
	e = rec.nextRoster(ctx, t, "nurse swept", kindJID(roster.EventUnavailable, nurse))
	if !e.Fresh() {
		t.Fatalf("unavailable %+v", e)
	}

	// The second session asked for the roster with the version it had.
	second, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Next(ctx, func(st psatest.Stanza) bool {
		return st.Name == "iq" && strings.Contains(string(st.Raw), `ver="v1"`)
	}); err != nil {
		t.Fatalf("no versioned roster fetch: %v", err)
	}
	if s := c.Roster().Stats(); s.Resources != 1 || s.Stale != 0 || s.Items != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRosterPushes(t *testing.T) {
	srv, ctx := setup(t)
	rec := newRecorder()
	c := dial(ctx, t, srv, rec)
	rec.nextConn(ctx, t, client.ConnConnected)
	if err := srv.PushRoster(ctx, romeo, "v2", roster.Item{JID: juliet.Bare(), Name: "Juliet", Subscription: roster.SubscriptionBoth, Groups: []string{"Capulets"}}); err != nil {
		t.Fatal(err)
	}
	e := rec.nextRoster(ctx, t, "item added", kindJID(roster.EventItemAdded, juliet.Bare()))
	if e.Item.Name != "Juliet" || !slices.Equal(e.Item.Groups, []string{"Capulets"}) || c.Roster().Version() != "v2" {
		t.Fatalf("item %+v, version %q", e.Item, c.Roster().Version())
	}
	// A spoofed push is answered with an error and applied nowhere.
	sess, _ := srv.WaitAvailable(ctx, c.JID())
	err := srv.SendRaw(ctx, c.JID(), `<iq type='set' id='spoof' from='mallory@evil.example/x'><query xmlns='jabber:iq:roster'><item jid='mallory@evil.example' subscription='both'/></query></iq>`)
	if err != nil {
		t.Fatal(err)
	}
	e = rec.nextRoster(ctx, t, "push rejected", func(e roster.Event) bool { return e.Kind == roster.EventRejected })
	if !errors.Is(e.Err, roster.ErrSpoofedPush) {
		t.Fatalf("rejected with %v", e.Err)
	}
	reply, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Name == "iq" && st.ID == "spoof" })
	if err != nil || reply.Type != "error" || !strings.Contains(string(reply.Raw), "service-unavailable") {
		t.Fatalf("reply to the spoofed push: %s, %v", reply.Raw, err)
	}
	if c.Roster().Stats().Items != 1 {
		t.Fatalf("stats %+v", c.Roster().Stats())
	}
}

func TestAuthFailure(t *testing.T) {
	srv, ctx := setup(t)
	_, err := client.Dial(ctx, romeo, "wrong", client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText))
	if !errors.Is(err, client.ErrAuth) {
		t.Fatalf("Dial with a wrong password: %v, want ErrAuth", err)
	}

	// Refused while reconnecting: the client stops for good.
	rec := newRecorder()
	c := dial(ctx, t, srv, rec)
	sess, _ := srv.WaitAvailable(ctx, c.JID())
	srv.RefuseLogins(true)
	sess.Drop()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the client kept trying")
	}
	var de *client.DisconnectError
	if !errors.Is(c.Err(), client.ErrAuth) || !errors.As(c.Err(), &de) || de.Reason != client.ReasonAuth || !de.Fatal() {
		t.Fatalf("Err() = %v", c.Err())
	}
	if e := rec.nextConn(ctx, t, client.ConnClosed); !errors.Is(e.Err, client.ErrAuth) {
		t.Fatalf("closed with %v", e.Err)
	}
}

func TestStreamErrors(t *testing.T) {
	t.Run("system-shutdown reconnects", func(t *testing.T) {
		srv, ctx := setup(t)
		rec := newRecorder()
		c := dial(ctx, t, srv, rec)
		rec.nextConn(ctx, t, client.ConnConnected)
		if err := srv.CloseStream(ctx, c.JID(), stream.SystemShutdown); err != nil {
			t.Fatal(err)
		}
		d := rec.nextConn(ctx, t, client.ConnDisconnected)
		var de *client.DisconnectError
		if !errors.As(d.Err, &de) || de.Reason != client.ReasonStreamError || !errors.Is(de, stream.SystemShutdown) || de.Fatal() {
			t.Fatalf("disconnected with %v", d.Err)
		}
		rec.nextConn(ctx, t, client.ConnConnected)
	})
	t.Run("conflict stops", func(t *testing.T) {
		srv, ctx := setup(t)
		rec := newRecorder()
		c := dial(ctx, t, srv, rec)
		rec.nextConn(ctx, t, client.ConnConnected)
		if err := srv.CloseStream(ctx, c.JID(), stream.Conflict); err != nil {
			t.Fatal(err)
		}
		<-c.Done()
		if !errors.Is(c.Err(), client.ErrConflict) {
			t.Fatalf("Err() = %v", c.Err())
		}
	})
	t.Run("server restart", func(t *testing.T) {
		srv, ctx := setup(t)
		rec := newRecorder()
		c := dial(ctx, t, srv, rec)
		rec.nextConn(ctx, t, client.ConnConnected)
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		rec.nextConn(ctx, t, client.ConnDisconnected)
		rec.nextConn(ctx, t, client.ConnConnected)
		if _, err := srv.WaitAvailable(ctx, c.JID()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTLS(t *testing.T) {
	srv, ctx := setup(t, psatest.WithTLS())
	rec := newRecorder()
	c, err := client.Dial(ctx, romeo, password, append(rec.options(),
		client.WithAddress(srv.Addr()), client.WithTLSConfig(srv.ClientTLSConfig()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec.nextConn(ctx, t, client.ConnConnected)
	// Plain text against a server that requires TLS fails rather than
	// sending the password in the clear.
	if _, err := client.Dial(ctx, romeo, password, client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText)); err == nil {
		t.Fatal("plain text login to a TLS-only server")
	}
}

func TestDirectTLS(t *testing.T) {
	srv, ctx := setup(t, psatest.WithDirectTLS())
	rec := newRecorder()
	c, err := client.Dial(ctx, romeo, password, append(rec.options(),
		client.WithAddress(srv.Addr()), client.WithTLS(client.DirectTLS), client.WithTLSConfig(srv.ClientTLSConfig()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec.nextConn(ctx, t, client.ConnConnected)
	// A server certificate that does not verify is refused.
	_, err = client.Dial(ctx, romeo, password, client.WithAddress(srv.Addr()), client.WithTLS(client.DirectTLS))
	var cerr *tls.CertificateVerificationError
	if !errors.As(err, &cerr) {
		t.Fatalf("Dial without the CA: %v, want a certificate verification error", err)
	}
}

func TestPlainTextOnlyOnLoopback(t *testing.T) {
	leaktest.Check(t)
	ctx := context.Background()
	// 192.0.2.1 (TEST-NET-1) is never contacted: the check comes first.
	_, err := client.Dial(ctx, romeo, password, client.WithAddress("192.0.2.1:5222"), client.WithTLS(client.PlainText))
	if !errors.Is(err, client.ErrInsecure) {
		t.Fatalf("Dial: %v, want ErrInsecure", err)
	}
}

func TestSetPresenceAndClose(t *testing.T) {
	srv, ctx := setup(t)
	rec := newRecorder()
	c := dial(ctx, t, srv, rec)
	sess, _ := srv.WaitAvailable(ctx, c.JID())
	if err := c.SetPresence(ctx, presence.ShowDND, "busy", 0); err != nil {
		t.Fatal(err)
	}
	st, err := sess.Next(ctx, func(st psatest.Stanza) bool {
		return st.Presence != nil && st.Presence.Show == presence.ShowDND
	})
	if err != nil || st.Presence.Caps.Ver == "" {
		t.Fatalf("presence %s, %v", st.Raw, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Close said goodbye: unavailable presence, then the stream closed.
	if _, err := sess.Next(ctx, func(st psatest.Stanza) bool { return st.Presence != nil && st.Type == "unavailable" }); err != nil {
		t.Fatalf("no unavailable presence: %v", err)
	}
	if e := rec.nextConn(ctx, t, client.ConnClosed); e.Err != nil {
		t.Fatalf("closed with %v", e.Err)
	}
	if c.Err() != nil {
		t.Fatalf("Err() = %v after Close", c.Err())
	}
	if err := c.SetPresence(ctx, presence.ShowNone, "", 0); !errors.Is(err, client.ErrNotConnected) {
		t.Fatalf("SetPresence after Close: %v", err)
	}
}

// TestConnectedComesFirst checks that ConnConnected reaches the callbacks
// before the presence the server sends in answer to ours, in the first
// session and after a reconnect: the callbacks share one ordered queue, and
// an application (psawatch, for one) reads "connected" as the start of what
// follows. The client used to push it after sending its presence, so a quick
// server's answer could come first.
func TestConnectedComesFirst(t *testing.T) {
	srv, ctx := setup(t)
	srv.SetRoster(romeo, "v1", roster.Item{JID: juliet.Bare(), Subscription: roster.SubscriptionBoth})
	if err := srv.SetContactPresence(romeo, `<presence from='juliet@capulet.lit/balcony'/>`); err != nil {
		t.Fatal(err)
	}
	// One channel for both kinds of callbacks keeps their order.
	order := make(chan string, 1000)
	dial(ctx, t, srv, nil,
		client.OnConnection(func(e client.ConnEvent) { order <- e.Kind.String() }),
		client.OnRoster(func(e roster.Event) {
			if e.JID.Equal(juliet) && (e.Kind == roster.EventAvailable || e.Kind == roster.EventRestored) {
				order <- "juliet " + e.Kind.String()
			}
		}))
	expectNext := func(want string) {
		t.Helper()
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no %q", want)
		}
	}
	expectNext("connected")
	expectNext("juliet available")
	srv.DropAll()
	expectNext("disconnected")
	expectNext("reconnecting")
	expectNext("connected")
	// Juliet's presence, sent again, clears the local-disconnected mark.
	expectNext("juliet restored")
}
