// Command demo shows psakit at work with no server to set up: it starts an
// in-process XMPP server (package psatest) with a multi-user chat service,
// connects a psakit client to it, and plays the three cases of XEP-0310,
// Presence State Annotations, and what psakit adds:
//
//  1. a remote server becomes unreachable, then comes back: the user's own
//     server annotates a contact's presence;
//  2. a contact's session is paused, then resumed;
//  3. the MUC service loses its link to a room occupant's server, then gets
//     it back: the room annotates the occupant's presence;
//  4. psakit's own connection is lost, then recovered: psakit marks every
//     presence itself, reconnects, rejoins the room, and sweeps what the
//     server no longer sends.
//
// It prints a timeline of what the client's roster and room show: which
// presence is fresh, which is stale, why, and by whose word.
//
//	go run ./examples/demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/client/clientflag"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/psa/psatest"
	"github.com/psakit/psakit/roster"
)

var (
	romeo    = jid.MustParse("romeo@montague.lit")
	juliet   = jid.MustParse("juliet@capulet.lit/balcony")
	benvolio = jid.MustParse("benvolio@montague.lit/street")
	nurse    = jid.MustParse("nurse@capulet.lit/kitchen")
	montague = jid.MustParse("montague.lit")
	// The room: Juliet sits in it too, from capulet.lit.
	mucDomain = "conference.montague.lit"
	orchard   = jid.MustParse("orchard@conference.montague.lit")
	julietOcc = jid.MustParse("orchard@conference.montague.lit/Juliet")
	romeoOcc  = jid.MustParse("orchard@conference.montague.lit/Romeo")
)

const password = "wherefore-art-thou"

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	code := clientflag.ExitCode(err)
	if code == 1 {
		fmt.Fprintln(os.Stderr, "demo:", err)
	}
	os.Exit(code)
}

// about is what -h says.
const about = `demo shows psakit at work with no server to set up: it starts an in-process
XMPP server, connects a psakit client to it, and plays the three cases of
XEP-0310 Presence State Annotations: a remote server becomes unreachable; a
contact's session is paused; the client's own connection is lost, and a
room occupant's server becomes unreachable from the room. It prints a
timeline of what the client shows: which presence is fresh, which is
stale, why, and by whose word. It needs no password and takes no flags.

Usage:

  go run ./examples/demo
`

// event is anything the client's callbacks reported.
type event struct {
	roster *roster.Event
	conn   *client.ConnEvent
	room   *mucwatch.Event
}

// timeline prints events as they come, and lets the script wait for one.
type timeline struct {
	w      io.Writer
	start  time.Time
	events chan event
	c      *client.Client
}

func (tl *timeline) printf(format string, args ...any) {
	fmt.Fprintf(tl.w, "%6.3fs  "+format+"\n", append([]any{time.Since(tl.start).Seconds()}, args...)...)
}

func (tl *timeline) say(text string) { fmt.Fprintf(tl.w, "\n%s\n", text) }

// await prints events until each of wanted has matched one of them, in any
// order.
func (tl *timeline) await(ctx context.Context, what string, wanted ...func(event) bool) error {
	for len(wanted) > 0 {
		select {
		case e := <-tl.events:
			tl.print(e)
			for i, w := range wanted {
				if w(e) {
					wanted = append(wanted[:i], wanted[i+1:]...)
					break
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
	return nil
}

func (tl *timeline) print(e event) {
	switch {
	case e.conn != nil:
		c := e.conn
		switch c.Kind {
		case client.ConnConnected:
			tl.printf("connected as %s", c.JID)
		case client.ConnDisconnected:
			var de *client.DisconnectError
			if errors.As(c.Err, &de) {
				tl.printf("DISCONNECTED (%s)", de.Reason)
			} else {
				tl.printf("DISCONNECTED: %v", c.Err)
			}
		case client.ConnReconnecting:
			tl.printf("reconnecting (attempt %d, after %v)", c.Attempt, c.Delay.Round(time.Millisecond))
		case client.ConnResynced:
			tl.printf("settle window over: %d resource(s) the server did not send again removed", c.Swept)
		}
	case e.roster != nil:
		r := e.roster
		switch r.Kind {
		case roster.EventItemAdded:
			tl.printf("roster item    %s", r.JID)
		case roster.EventAvailable:
			tl.printf("available      %-28s %s", r.JID, describe(r.Resource))
		case roster.EventUnavailable:
			tl.printf("unavailable    %s", r.JID)
		case roster.EventUpdated:
			tl.printf("updated        %-28s %s", r.JID, describe(r.Resource))
		case roster.EventStale:
			tl.printStale(r.JID, r.Mark, "says")
		case roster.EventRestored:
			tl.printRestored(r.JID, r.Mark, r.Fresh(), "the server")
		case roster.EventRejected:
			tl.printf("rejected       %s: %v", r.JID, r.Err)
		}
	case e.room != nil:
		tl.printRoom(e.room)
	}
}

// printStale prints that j went stale by mark m; says introduces the
// annotator ("says", for a contact).
func (tl *timeline) printStale(j jid.JID, m psa.Mark, says string) {
	if m.Condition == psa.LocalDisconnected {
		tl.printf("STALE          %-28s psakit's own mark: our stream is down", j)
		return
	}
	why := string(m.Condition)
	if d, ok := m.Description(); ok {
		why += ": " + d.Text
	}
	tl.printf("STALE          %-28s %s %s (%s)", j, says, m.By, why)
}

// printRestored prints that mark m left j, which is now fresh or not;
// sender is who sent the presence again after our own disconnect.
func (tl *timeline) printRestored(j jid.JID, m psa.Mark, fresh bool, sender string) {
	if m.Condition == psa.LocalDisconnected {
		tl.printf("refreshed      %-28s %s sent it again: fresh", j, sender)
		return
	}
	state := "now fresh"
	if !fresh {
		state = "still stale"
	}
	tl.printf("restored       %-28s %s cleared %s, %s", j, m.By, m.Condition, state)
}

func (tl *timeline) printRoom(r *mucwatch.Event) {
	switch r.Kind {
	case mucwatch.EventRoomJoined:
		tl.printf("joined         %-28s as %s", r.Room, r.JID.Resourcepart())
	case mucwatch.EventRejoining:
		tl.printf("rejoining      %s", r.Room)
	case mucwatch.EventOccupantAvailable:
		if !r.Occupant.Self {
			tl.printf("occupant       %-28s %s", r.JID, describeState(r.Occupant.State, r.Fresh()))
		}
	case mucwatch.EventOccupantStale:
		tl.printStale(r.JID, r.Mark, "the room says, as")
	case mucwatch.EventOccupantRestored:
		tl.printRestored(r.JID, r.Mark, r.Fresh(), "the room")
	case mucwatch.EventRoomStale:
		tl.printf("ROOM STALE     %-28s %s: we may no longer be in it", r.Room, r.Mark.Condition)
	case mucwatch.EventRoomRestored:
		tl.printf("room fresh     %s", r.Room)
	case mucwatch.EventRoomJoinFailed, mucwatch.EventRejected:
		tl.printf("%-14s %s: %v", r.Kind, r.JID, r.Err)
	}
}

func describe(r roster.Resource) string { return describeState(r.State, r.Fresh()) }

func describeState(st presence.State, fresh bool) string {
	show := string(st.Show)
	if show == "" {
		show = "online"
	}
	s := show
	if text := st.StatusText(); text != "" {
		s += fmt.Sprintf(" %q", text)
	}
	if !fresh {
		s += " (stale)"
	}
	return s
}

// pause lets a moment pass, so that the timeline reads like one.
const pause = 300 * time.Millisecond

// show prints what the roster shows, a moment later when wait is set.
func (tl *timeline) show(wait bool) {
	if wait {
		time.Sleep(pause)
	}
	fmt.Fprintf(tl.w, "%6.3fs  the roster shows:\n", time.Since(tl.start).Seconds())
	for _, j := range []jid.JID{juliet, benvolio, nurse} {
		r, ok := tl.c.Roster().Resource(j)
		switch {
		case !ok:
			fmt.Fprintf(tl.w, "           %-28s offline\n", j)
		case r.Fresh():
			fmt.Fprintf(tl.w, "           %-28s %s, fresh\n", j, describe(r))
		default:
			m := r.Marks[0]
			by := m.By.String() + "'s word"
			if m.Condition == psa.LocalDisconnected {
				by = "psakit itself"
			}
			fmt.Fprintf(tl.w, "           %-28s %s, STALE (%s) for %v, by %s\n", j, describe(r), m.Condition,
				time.Since(m.Since).Round(time.Millisecond), by)
		}
	}
}

// showRoom prints what the client shows of the room.
func (tl *timeline) showRoom(wait bool) {
	if wait {
		time.Sleep(pause)
	}
	r, ok := tl.c.Rooms().Room(orchard)
	if !ok {
		fmt.Fprintf(tl.w, "%6.3fs  not in %s\n", time.Since(tl.start).Seconds(), orchard)
		return
	}
	state := "our place in it is fresh"
	if r.Stale {
		state = "our place in it is STALE"
	}
	fmt.Fprintf(tl.w, "%6.3fs  the room %s shows (%s, %s):\n", time.Since(tl.start).Seconds(), r.JID, r.State, state)
	for o := range tl.c.Rooms().Occupants(orchard) {
		nick := o.Nick
		if o.Self {
			nick += " (us)"
		}
		if o.Fresh() {
			fmt.Fprintf(tl.w, "           %-28s %s, fresh\n", nick, describeState(o.State, true))
			continue
		}
		m := o.Marks[0]
		fmt.Fprintf(tl.w, "           %-28s %s, STALE (%s) for %v, by %s\n", nick, describeState(o.State, false), m.Condition,
			time.Since(m.Since).Round(time.Millisecond), m.By)
	}
}

func isRoster(kind roster.EventKind, j jid.JID) func(event) bool {
	return func(e event) bool { return e.roster != nil && e.roster.Kind == kind && e.roster.JID.Equal(j) }
}

func isRoom(kind mucwatch.EventKind, j jid.JID) func(event) bool {
	return func(e event) bool {
		return e.room != nil && e.room.Kind == kind && (e.room.JID.Equal(j) || e.room.Room.Equal(j))
	}
}

func isConn(kind client.ConnEventKind) func(event) bool {
	return func(e event) bool { return e.conn != nil && e.conn.Kind == kind }
}

// run parses args, then plays the demo, writing the timeline to w.
func run(ctx context.Context, args []string, w, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := clientflag.Parse(fs, about, args); err != nil {
		return err
	}
	srv := psatest.NewServer(psatest.WithUser("romeo", password), psatest.WithMUC(mucDomain))
	defer srv.Close()
	srv.SetRoster(romeo, "1",
		roster.Item{JID: juliet.Bare(), Name: "Juliet", Subscription: roster.SubscriptionBoth},
		roster.Item{JID: benvolio.Bare(), Name: "Benvolio", Subscription: roster.SubscriptionBoth},
		roster.Item{JID: nurse.Bare(), Name: "Nurse", Subscription: roster.SubscriptionBoth})
	for _, p := range []string{
		`<presence from='juliet@capulet.lit/balcony'><show>away</show><status>on the balcony</status></presence>`,
		`<presence from='benvolio@montague.lit/street'><status>He ran this way</status></presence>`,
		`<presence from='nurse@capulet.lit/kitchen'><show>dnd</show></presence>`,
	} {
		if err := srv.SetContactPresence(romeo, p); err != nil {
			return err
		}
	}

	room := srv.Room(orchard.Localpart())
	room.SetPersistent(true)
	if err := room.AddOccupant(ctx, "Juliet", juliet, "participant", "member"); err != nil {
		return err
	}

	tl := &timeline{w: w, start: time.Now(), events: make(chan event, 1024)}
	fmt.Fprintln(w, "psakit demo: a psakit client connected to an in-process XMPP server that speaks XEP-0310.")
	tl.say("== Romeo connects; his server sends the presence of his contacts.")
	c, err := client.Dial(ctx, romeo, password,
		client.WithAddress(srv.Addr()), client.WithTLS(client.PlainText), client.WithResource("lane"),
		client.WithReconnect(50*time.Millisecond, time.Second), client.WithSettle(time.Second),
		client.WithVerify(client.VerifyOff, 0),
		client.OnRoster(func(e roster.Event) { tl.events <- event{roster: &e} }),
		client.OnConnection(func(e client.ConnEvent) { tl.events <- event{conn: &e} }),
		client.OnRoom(func(e mucwatch.Event) { tl.events <- event{room: &e} }))
	if err != nil {
		return err
	}
	defer c.Close()
	tl.c = c
	if err := tl.await(ctx, "the contacts", isConn(client.ConnConnected),
		isRoster(roster.EventAvailable, juliet), isRoster(roster.EventAvailable, benvolio), isRoster(roster.EventAvailable, nurse)); err != nil {
		return err
	}
	tl.show(true)

	tl.say("== 1. capulet.lit becomes unreachable: montague.lit re-sends Juliet's presence, annotated.")
	err = srv.Annotate(ctx, c.JID(), juliet, psa.Annotation{From: montague, Condition: psa.ServerUnavailable,
		Descriptions: []psa.Description{{Lang: "en", Text: "The capulet.lit server is no longer available"}}})
	if err != nil {
		return err
	}
	if err := tl.await(ctx, "juliet stale", isRoster(roster.EventStale, juliet)); err != nil {
		return err
	}
	tl.show(true)
	tl.say("   The link is back: an empty annotation from montague.lit.")
	if err := srv.Annotate(ctx, c.JID(), juliet, psa.Annotation{From: montague}); err != nil {
		return err
	}
	if err := tl.await(ctx, "juliet restored", isRoster(roster.EventRestored, juliet)); err != nil {
		return err
	}

	tl.say("== 2. Benvolio's session is paused (XEP-0198 hibernation), then resumed.")
	err = srv.Annotate(ctx, c.JID(), benvolio, psa.Annotation{From: montague, Condition: psa.ConnectionPaused,
		Descriptions: []psa.Description{{Lang: "en", Text: "benvolio's session has been paused"}}})
	if err != nil {
		return err
	}
	if err := tl.await(ctx, "benvolio stale", isRoster(roster.EventStale, benvolio)); err != nil {
		return err
	}
	tl.show(true)
	if err := srv.Annotate(ctx, c.JID(), benvolio, psa.Annotation{From: montague}); err != nil {
		return err
	}
	if err := tl.await(ctx, "benvolio restored", isRoster(roster.EventRestored, benvolio)); err != nil {
		return err
	}

	tl.say("== 3. Romeo joins the room orchard, where Juliet is too. Then the MUC service,\n" +
		"   conference.montague.lit, loses its link to capulet.lit: it re-sends Juliet's\n" +
		"   presence in the room, annotated by the room.")
	if err := c.Join(ctx, romeoOcc); err != nil {
		return err
	}
	if err := tl.await(ctx, "the room", isRoom(mucwatch.EventOccupantAvailable, julietOcc), isRoom(mucwatch.EventRoomJoined, orchard)); err != nil {
		return err
	}
	err = room.Annotate(ctx, "Juliet", psa.Annotation{Condition: psa.ServerUnavailable,
		Descriptions: []psa.Description{{Lang: "en", Text: "capulet.lit cannot be reached from the room"}}})
	if err != nil {
		return err
	}
	if err := tl.await(ctx, "juliet stale in the room", isRoom(mucwatch.EventOccupantStale, julietOcc)); err != nil {
		return err
	}
	tl.showRoom(true)
	tl.say("   The room reaches capulet.lit again: an empty annotation from conference.montague.lit.")
	if err := room.Annotate(ctx, "Juliet", psa.Annotation{}); err != nil {
		return err
	}
	if err := tl.await(ctx, "juliet restored in the room", isRoom(mucwatch.EventOccupantRestored, julietOcc)); err != nil {
		return err
	}

	tl.say("== 4. Romeo's own connection drops. While he is away, the Nurse goes offline.")
	sess, err := srv.WaitAvailable(ctx, c.JID())
	if err != nil {
		return err
	}
	sess.Drop()
	if err := tl.await(ctx, "everything marked", isConn(client.ConnDisconnected),
		isRoster(roster.EventStale, juliet), isRoster(roster.EventStale, benvolio), isRoster(roster.EventStale, nurse),
		isRoom(mucwatch.EventRoomStale, orchard)); err != nil {
		return err
	}
	// Now, while Romeo is away (the server would tell a session that is
	// online).
	srv.ClearContactPresence(romeo, nurse)
	tl.show(false) // right away: the client is already reconnecting
	tl.say("   psakit reconnects, fetches the roster by version, rejoins the room and waits for the server to send presence again.")
	if err := tl.await(ctx, "resynced", isConn(client.ConnConnected),
		isRoster(roster.EventRestored, juliet), isRoster(roster.EventRestored, benvolio),
		isRoster(roster.EventUnavailable, nurse), isConn(client.ConnResynced),
		isRoom(mucwatch.EventRoomJoined, orchard), isRoom(mucwatch.EventRoomRestored, orchard)); err != nil {
		return err
	}
	tl.show(true)
	tl.showRoom(false)
	tl.say("Done: every presence the roster and the room showed was either fresh or marked stale, with a reason.")
	return nil
}
