package e2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

const (
	montague   = prosodytest.Montague
	capulet    = prosodytest.Capulet
	conference = prosodytest.Conference
	pw         = prosodytest.Password
)

// shakespeare is prosodytest.Shakespeare.
func shakespeare(t *testing.T, tweak func(mont, capu *prosodytest.Spec)) *prosodytest.Network {
	t.Helper()
	return prosodytest.Shakespeare(t, tweak)
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// clientOptions are the options every psakit client of these tests uses:
// plain text to the server's loopback port (see dialTLS for StartTLS), a
// fixed resource, quick reconnects and a short settle window. The remote
// checks are off: these tests are about what mod_psa says, and a check
// landing at a random time in a cut would add psakit's own marks to the
// server's (remote_test.go turns them on).
func clientOptions(srv *prosodytest.Server, resource string) []client.Option {
	return []client.Option{
		client.WithAddress(srv.C2SAddr),
		client.WithTLS(client.PlainText),
		client.WithResource(resource),
		client.WithReconnect(50*time.Millisecond, 500*time.Millisecond),
		client.WithSettle(2 * time.Second),
		client.WithRemoteCheck(0),
	}
}

// dial connects a psakit client for user@srv.Domain/resource whose callbacks
// feed rec, and waits until srv has enabled annotations for the session (it
// verified the client's caps). extra options come last and win.
func dial(ctx context.Context, t testing.TB, srv *prosodytest.Server, user, resource string, rec *recorder, extra ...client.Option) *client.Client {
	t.Helper()
	opts := append(clientOptions(srv, resource), rec.options()...)
	opts = append(opts, extra...)
	mark := srv.LogMark()
	account := jid.MustParse(user + "@" + srv.Domain)
	c, err := client.Dial(ctx, account, pw, opts...)
	if err != nil {
		t.Fatalf("dialing %s: %v", account, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	awaitAnnotations(ctx, t, srv, mark, c.JID().String())
	return c
}

// awaitAnnotations waits until srv's log says, after mark, that annotations
// are on for the session full (mod_psa verified its caps).
func awaitAnnotations(ctx context.Context, t testing.TB, srv *prosodytest.Server, mark int, full string) {
	t.Helper()
	if _, _, err := srv.WaitLog(ctx, mark, "Annotations for "+full+": on"); err != nil {
		t.Fatal(err)
	}
}

// awaitOccupantAnnotations waits until the MUC component on srv enabled
// annotations for the occupant whose real JID is full.
func awaitOccupantAnnotations(ctx context.Context, t testing.TB, srv *prosodytest.Server, mark int, full string) {
	t.Helper()
	if _, _, err := srv.WaitLog(ctx, mark, "Annotations for occupant "+full+": on"); err != nil {
		t.Fatal(err)
	}
}

// awaitPresenceFrom waits until the raw client c has received presence from
// the full JID from: between two domains, both s2s directions are then up.
func awaitPresenceFrom(ctx context.Context, t testing.TB, c *rawclient.Client, from string) {
	t.Helper()
	if _, err := c.Expect(ctx, func(e *rawclient.Element) bool {
		return e.Is(rawclient.NSClient, "presence") && e.Attr("from") == from
	}); err != nil {
		t.Fatal(err)
	}
}

// raw connects a raw client for user@srv.Domain/resource and sends its
// available presence with children (raw XML).
func raw(ctx context.Context, t testing.TB, srv *prosodytest.Server, user, resource string, cfg rawclient.Config, children string) *rawclient.Client {
	t.Helper()
	cfg.Addr, cfg.Domain, cfg.User, cfg.Password, cfg.Resource = srv.C2SAddr, srv.Domain, user, pw, resource
	c, err := rawclient.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting %s@%s: %v", user, srv.Domain, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	must(t, c.SendPresence(ctx, children))
	return c
}

// romeoSeesJuliet connects juliet (raw, on capulet.lit, with the presence
// children) and romeo (psakit, on montague.lit, with opts), and returns
// once romeo has her presence and she has his: both s2s directions are up.
func romeoSeesJuliet(ctx context.Context, t *testing.T, n *prosodytest.Network, children string, opts ...client.Option) (juliet *rawclient.Client, rec *recorder, romeo *client.Client) {
	t.Helper()
	return romeoSeesJulietWith(ctx, t, n, rawclient.Config{}, children, opts...)
}

// romeoSeesJulietWith is romeoSeesJuliet with juliet's client configured by
// cfg.
func romeoSeesJulietWith(ctx context.Context, t *testing.T, n *prosodytest.Network, cfg rawclient.Config, children string, opts ...client.Option) (juliet *rawclient.Client, rec *recorder, romeo *client.Client) {
	t.Helper()
	juliet = raw(ctx, t, n.Server(capulet), "juliet", "balcony", cfg, children)
	rec = newRecorder()
	romeo = dial(ctx, t, n.Server(montague), "romeo", "lane", rec, opts...)
	rec.expect(ctx, t, "juliet available", rosterEvent(roster.EventAvailable, juliet.JID()))
	awaitPresenceFrom(ctx, t, juliet, romeo.JID().String())
	return juliet, rec, romeo
}

// nurseInRoom makes romeo join room on conference.montague.lit, waits until
// the MUC service turned annotations on for him, then has the nurse (raw,
// on capulet.lit) join as "Nurse", and returns her client.
func nurseInRoom(ctx context.Context, t *testing.T, n *prosodytest.Network, romeo *client.Client, room string) *rawclient.Client {
	t.Helper()
	mont := n.Server(montague)
	mark := mont.LogMark()
	must(t, romeo.Join(ctx, jid.MustParse(room+"/Romeo")))
	awaitOccupantAnnotations(ctx, t, mont, mark, romeo.JID().String())
	nurse := raw(ctx, t, n.Server(capulet), "nurse", "garden", rawclient.Config{}, "")
	must(t, nurse.JoinMUC(ctx, room, "Nurse"))
	return nurse
}

// event is anything a psakit client's callbacks reported, with the time the
// callback ran. Exactly one of the pointers is set.
type event struct {
	at     time.Time
	roster *roster.Event
	room   *mucwatch.Event
	action *client.RoomAction
	conn   *client.ConnEvent
	verify *client.VerifyResult
}

func (e event) String() string {
	at := e.at.Format("15:04:05.000")
	mark := func(m psa.Mark) string {
		if m.Condition == "" {
			return ""
		}
		return fmt.Sprintf(" %s by %s", m.Condition, m.By)
	}
	switch {
	case e.roster != nil:
		return fmt.Sprintf("%s roster %s %s%s fresh=%v resent=%v", at, e.roster.Kind, e.roster.JID, mark(e.roster.Mark), e.roster.Fresh(), e.roster.Resent)
	case e.room != nil:
		return fmt.Sprintf("%s room %s %s %s%s fresh=%v resent=%v", at, e.room.Kind, e.room.Room, e.room.JID, mark(e.room.Mark), e.room.Fresh(), e.room.Resent)
	case e.action != nil:
		return fmt.Sprintf("%s action %s %s reason=%s verdict=%s attempt=%d err=%v", at, e.action.Kind, e.action.Room, e.action.Reason, e.action.Verdict, e.action.Attempt, e.action.Err)
	case e.conn != nil:
		return fmt.Sprintf("%s conn %s jid=%s attempt=%d swept=%d err=%v", at, e.conn.Kind, e.conn.JID, e.conn.Attempt, e.conn.Swept, e.conn.Err)
	case e.verify != nil:
		return fmt.Sprintf("%s verify %s %s %s err=%v", at, e.verify.JID, e.verify.Policy, e.verify.Outcome, e.verify.Err)
	}
	return at + " ?"
}

// recorder keeps every event a psakit client's callbacks received, in order,
// and lets a test wait for one. Callbacks run on the client's dispatcher
// goroutine; tests wait on other goroutines.
type recorder struct {
	mu     sync.Mutex
	events []event
	notify chan struct{}
	cursor int // where expect starts looking
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) add(e event) {
	e.at = time.Now()
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.notify)
	r.notify = make(chan struct{})
	r.mu.Unlock()
}

// options returns the callbacks that feed the recorder.
func (r *recorder) options() []client.Option {
	return []client.Option{
		client.OnRoster(func(e roster.Event) { r.add(event{roster: &e}) }),
		client.OnRoom(func(e mucwatch.Event) { r.add(event{room: &e}) }),
		client.OnRoomAction(func(a client.RoomAction) { r.add(event{action: &a}) }),
		client.OnConnection(func(e client.ConnEvent) { r.add(event{conn: &e}) }),
		client.OnVerify(func(v client.VerifyResult) { r.add(event{verify: &v}) }),
	}
}

// mark returns the index the next event will have.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// since returns the events from index from on.
func (r *recorder) since(from int) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events[min(from, len(r.events)):]...)
}

// find returns the index of the first event at or after from that match
// accepts, or -1 and a channel closed on the next event.
func (r *recorder) find(from int, match func(event) bool) (int, event, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := from; i < len(r.events); i++ {
		if match(r.events[i]) {
			return i, r.events[i], nil
		}
	}
	return -1, event{}, r.notify
}

// waitFrom waits for the first event at or after index from that match
// accepts, and returns it with its index. It fails the test, with the events
// seen since from, when ctx ends first.
func (r *recorder) waitFrom(ctx context.Context, t testing.TB, from int, what string, match func(event) bool) (event, int) {
	t.Helper()
	for {
		i, e, next := r.find(from, match)
		if i >= 0 {
			return e, i
		}
		select {
		case <-next:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v\nevents since:\n%s", what, ctx.Err(), dumpEvents(r.since(from)))
		}
	}
}

// expect waits for the next event match accepts after the last one expect
// returned, skipping the others (they stay in the record).
func (r *recorder) expect(ctx context.Context, t testing.TB, what string, match func(event) bool) event {
	t.Helper()
	r.mu.Lock()
	from := r.cursor
	r.mu.Unlock()
	e, i := r.waitFrom(ctx, t, from, what, match)
	r.mu.Lock()
	r.cursor = i + 1
	r.mu.Unlock()
	return e
}

// skip moves expect's cursor to the end of what was recorded so far.
func (r *recorder) skip() {
	r.mu.Lock()
	r.cursor = len(r.events)
	r.mu.Unlock()
}

// until waits until cond holds. It checks cond now and after every event:
// the models change only with events, so nothing is polled.
func (r *recorder) until(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	from := r.mark()
	for {
		r.mu.Lock()
		next := r.notify
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-next:
		case <-ctx.Done():
			t.Fatalf("waiting until %s: %v\nevents since:\n%s", what, ctx.Err(), dumpEvents(r.since(from)))
		}
	}
}

// count returns how many events from index from on match accepts.
func (r *recorder) count(from int, match func(event) bool) int {
	n := 0
	for _, e := range r.since(from) {
		if match(e) {
			n++
		}
	}
	return n
}

// dumpEvents formats events for a failure message: the first and the last
// hundred when there are more.
func dumpEvents(es []event) string {
	const half = 100
	var b strings.Builder
	for i, e := range es {
		if len(es) > 2*half && i == half {
			fmt.Fprintf(&b, "  ... %d more events\n", len(es)-2*half)
		}
		if len(es) > 2*half && i >= half && i < len(es)-half {
			continue
		}
		b.WriteString("  ")
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Matchers.

// rosterEvent matches a roster event of kind for the full JID full.
func rosterEvent(kind roster.EventKind, full string) func(event) bool {
	return func(e event) bool {
		return e.roster != nil && e.roster.Kind == kind && e.roster.JID.String() == full
	}
}

// marked matches a roster event of kind (EventStale or EventRestored) for
// full whose mark has condition cond and was set by by.
func marked(kind roster.EventKind, full string, cond psa.Condition, by string) func(event) bool {
	return func(e event) bool {
		return rosterEvent(kind, full)(e) && e.roster.Mark.Condition == cond && e.roster.Mark.By.String() == by
	}
}

// roomEvent matches a room event of kind for room (bare) and, unless jid is
// empty, for the occupant JID jid.
func roomEvent(kind mucwatch.EventKind, room, occupant string) func(event) bool {
	return func(e event) bool {
		return e.room != nil && e.room.Kind == kind && e.room.Room.String() == room &&
			(occupant == "" || e.room.JID.String() == occupant)
	}
}

// occupantMarked matches an occupant event of kind whose mark has condition
// cond and was set by by.
func occupantMarked(kind mucwatch.EventKind, room, occupant string, cond psa.Condition, by string) func(event) bool {
	return func(e event) bool {
		return roomEvent(kind, room, occupant)(e) && e.room.Mark.Condition == cond && e.room.Mark.By.String() == by
	}
}

func connEvent(kind client.ConnEventKind) func(event) bool {
	return func(e event) bool { return e.conn != nil && e.conn.Kind == kind }
}

func actionEvent(kind client.RoomActionKind, room string, reason client.RoomReason) func(event) bool {
	return func(e event) bool {
		return e.action != nil && e.action.Kind == kind && e.action.Room.String() == room && e.action.Reason == reason
	}
}

func verifyEvent(full string) func(event) bool {
	return func(e event) bool { return e.verify != nil && e.verify.JID.String() == full }
}

// resource returns the model's resource full, failing the test when it has
// none.
func resource(t testing.TB, c *client.Client, full string) roster.Resource {
	t.Helper()
	r, ok := c.Roster().Resource(jid.MustParse(full))
	if !ok {
		t.Fatalf("the roster has no resource %s", full)
	}
	return r
}

// roundTrip pings c's server on c's current session and waits for the
// answer. The server handles a session's stanzas in order, and the client
// applies each presence to its models before it reads the next stanza: when
// roundTrip returns, the models reflect everything the server sent the
// client before.
func roundTrip(ctx context.Context, t testing.TB, c *client.Client) {
	t.Helper()
	s := c.Session()
	if s == nil {
		t.Fatal("round trip: the client is not connected")
	}
	server := c.JID().Domain()
	err := s.UnmarshalIQ(ctx, ping.IQ{IQ: stanza.IQ{Type: stanza.GetIQ, To: server}}.TokenReader(), nil)
	if err != nil {
		t.Fatalf("round trip to %s: %v", server, err)
	}
}

// timing logs a measured delay in a form that is easy to grep.
func timing(t testing.TB, what string, d time.Duration) {
	t.Helper()
	t.Logf("timing: %-40s %v", what, d.Round(100*time.Microsecond))
}

// findLog returns the first line of srv's log after mark that contains
// substr, without waiting.
func findLog(srv *prosodytest.Server, mark int, substr string) (string, bool) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	line, _, err := srv.WaitLog(ctx, mark, substr)
	return line, err == nil
}
