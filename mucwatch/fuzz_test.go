package mucwatch_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// FuzzModel applies an arbitrary sequence of operations — presences with
// any mix of status codes, annotations and types, and every intent — drawn
// from small pools of rooms and nicks so that they collide (nicks that
// differ only in case or width included), and checks after each one that
// the model's counts and derived staleness match its contents, that no
// limit is exceeded, and that a presence without status 110 changed neither
// our own occupant nor our place in the room.
func FuzzModel(f *testing.F) {
	// We join as romeo; Romeo, without 110, is someone else, and leaves.
	f.Add([]byte{5, 0, 0, 1, 0, 0, 0, 6, 0, 0, 6, 0x60})
	// We join as romeo; our own server's mark on juliet is about juliet.
	f.Add([]byte{5, 0, 0, 1, 0, 0, 0x90, 12, 0})
	f.Add([]byte{5, 0, 0, 0, 1, 0, 0, 0x40, 1, 9, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0x40, 1})
	f.Add([]byte{5, 0, 0, 0, 0x10, 0x20, 0, 0x40, 0x81, 0, 0x30, 0x22, 0, 0x40, 0x84, 11, 0, 2, 7, 0, 0, 0, 0x40, 0x88})
	f.Add([]byte{5, 8, 0, 0, 0x18, 0x41, 0, 0x48, 0x41, 1, 0x18, 0x0f, 2, 0x48, 0xff, 10, 8, 0, 9, 0, 0})
	f.Fuzz(runOps)
}

// The pools fuzzed operations draw from.
var (
	fzRooms      = []string{"coven@chat.shakespeare.lit", "heath@chat.shakespeare.lit", "x@muc.evil.example"}
	fzNicks      = []string{"romeo", "Romeo", "ＲＯＭＥＯ", "juliet", "Juliet ", "nurse", " ", "tybalt"}
	fzAnnotators = []string{"montague.lit", "chat.shakespeare.lit", "muc.evil.example", "capulet.lit", "juliet@capulet.lit"}
	fzConditions = []string{"", "server-unavailable", "connection-paused", "odd"}
	fzTypes      = []string{"", "", "", "unavailable", "unavailable", "error", "subscribe", "probe"}
	fzCodes      = []int{110, 201, 210, 303, 301, 307, 332, 333}
	fzConds      = []string{"conflict", "forbidden", "item-not-found", "gone", ""}
)

// runOps applies the operations encoded in ops, checking the model after each.
func runOps(t *testing.T, ops []byte) {
	if len(ops) > 600 {
		ops = ops[:600]
	}
	// A byte budget per room of one to nine occupants or so.
	budget := 1 << 30
	if len(ops) > 0 {
		budget = 512 + int(ops[0])*16
	}
	clk := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := mucwatch.New(jid.MustParse("romeo@montague.lit/lane"),
		mucwatch.WithMaxRooms(2), mucwatch.WithMaxOccupants(3), mucwatch.WithMaxRoomBytes(budget),
		mucwatch.WithClock(func() time.Time { return clk }))
	for i := 0; i+2 < len(ops); i += 3 {
		op, a, b := ops[i], ops[i+1], ops[i+2]
		clk = clk.Add(time.Second)
		room := fzRooms[int(a)%len(fzRooms)]
		nick := fzNicks[int(a>>2)%len(fzNicks)]
		roomJID := jid.MustParse(room)
		var evs []mucwatch.Event
		switch op % 12 {
		case 0, 1, 2, 3, 4:
			p := genPresence(t, room, nick, b, op, a)
			tracked := m.Tracks(p.From)
			me, hadMe := m.Self(roomJID)
			before, _ := m.Room(roomJID)
			var handled bool
			evs, handled = m.ApplyPresence(p)
			if handled != tracked {
				t.Fatalf("presence from %s: handled %v, tracked %v", p.From, handled, tracked)
			}
			if !p.MUC.Has(110) && p.Type != stanza.ErrorPresence && (p.MUC == nil || p.MUC.Destroy == nil) {
				// Without 110, a presence changes neither our own occupant nor
				// our place in the room (a destruction concerns the whole room,
				// an error may answer our join).
				got, hasMe := m.Self(roomJID)
				after, _ := m.Room(roomJID)
				if hasMe != hadMe || !reflect.DeepEqual(got, me) || after.Nick != before.Nick || after.State != before.State ||
					after.Stale != before.Stale || after.Verdict != before.Verdict {
					t.Fatalf("presence from %s without 110 (%s) changed our own place: %+v %+v, was %+v %+v",
						p.From, kinds(evs), after, got, before, me)
				}
			}
		case 5:
			evs = m.Joining(jid.MustParse(room + "/" + nick))
		case 6:
			evs = m.Rejoining(roomJID)
		case 7:
			evs = m.Leaving(roomJID)
		case 8:
			evs = m.Forget(roomJID)
		case 9:
			// psakit's own finding that a service is out of reach, or back.
			domain := jid.MustParse([]string{"chat.shakespeare.lit", "muc.evil.example", "capulet.lit"}[int(a)%3])
			budget := []int{-1, 0, 200, 1 << 20}[int(a>>2)%4]
			switch b >> 6 {
			case 3:
				var omitted int
				evs, omitted = m.MarkUnreachable(domain, budget)
				checkInferred(t, m, domain, true, evs, omitted)
			case 2:
				var omitted int
				evs, omitted = m.ClearUnreachable(domain, budget)
				checkInferred(t, m, domain, false, evs, omitted)
			default:
				evs = m.MarkDisconnected()
			}
		case 10:
			if b%2 == 1 {
				// A resumed stream (XEP-0198) instead of a sweep.
				evs, _ = m.ClearDisconnected(int(b) * 16)
			} else {
				evs = m.Sweep(roomJID)
			}
		case 11:
			evs = m.RecordSelfPing(roomJID, mucwatch.Verdict(b%4))
		}
		if testing.Verbose() {
			t.Logf("op %d %d %d: %s %s -> %s", op%12, a, b, room, nick, kinds(evs))
		}
		checkEvents(t, evs)
		checkModel(t, m)
		if s := m.Stats(); s.Rooms > 2 {
			t.Fatalf("stats %+v", s)
		}
		for r := range m.Rooms() {
			if r.Occupants > 3+1 {
				t.Fatalf("%s has %d occupants", r.JID, r.Occupants)
			}
		}
	}
}

// checkInferred checks the model after MarkUnreachable (marked) or
// ClearUnreachable of domain: every room on domain that we are in is stale
// with the inferred mark, and so is each of its occupants, or no room or
// occupant there carries it; the events are about rooms on domain and
// carry that mark.
func checkInferred(t *testing.T, m *mucwatch.Model, domain jid.JID, marked bool, evs []mucwatch.Event, omitted int) {
	t.Helper()
	if omitted < 0 {
		t.Fatalf("omitted %d", omitted)
	}
	for _, e := range evs {
		d, ok := e.Mark.InferredDomain()
		if e.Room.Domainpart() != domain.Domainpart() || !ok || !d.Equal(domain) {
			t.Fatalf("inferred mark of %s (marked %v): event %+v", domain, marked, e)
		}
	}
	by := domain.Domainpart() + "/psakit-inferred"
	has := func(marks []psa.Mark) bool {
		for _, mk := range marks {
			if mk.By.String() == by {
				return true
			}
		}
		return false
	}
	for r := range m.Rooms() {
		if r.JID.Domainpart() != domain.Domainpart() {
			continue
		}
		if marked && r.Joined() && (!r.Stale || !has(r.Marks)) {
			t.Fatalf("%s after the inferred mark of %s: %+v", r.JID, domain, r)
		}
		if !marked && has(r.Marks) {
			t.Fatalf("%s after the inferred mark of %s was cleared: %+v", r.JID, domain, r.Marks)
		}
		for o := range m.Occupants(r.JID) {
			if (marked && r.Joined()) && !has(o.Marks) || !marked && has(o.Marks) {
				t.Fatalf("%s after the inferred mark of %s (marked %v): %+v", o.JID, domain, marked, o.Marks)
			}
		}
	}
}

// genPresence builds a presence from fuzz bytes: its type, status codes, a
// new nick for 303, a destroy element, an annotation, an error condition.
func genPresence(t *testing.T, room, nick string, b, op, a byte) *presence.Presence {
	typ := fzTypes[int(b>>5)%len(fzTypes)]
	var body strings.Builder
	fmt.Fprintf(&body, `<show>%s</show>`, []string{"away", "dnd", "xa", "chat"}[op>>6])
	fmt.Fprintf(&body, `<x xmlns="%s"><item affiliation="none" role="%s" nick="%s"/>`, nsMUC,
		[]string{"participant", "moderator"}[b&1], fzNicks[int(op>>3)%len(fzNicks)])
	for j, c := range fzCodes {
		if (int(b)*7+int(op))>>(j%8)&1 == 1 && (j < 2 || a&0x80 != 0 || c == 303 && op&0x20 != 0) {
			fmt.Fprintf(&body, `<status code="%d"/>`, c)
		}
	}
	if typ == "unavailable" && op&0x40 != 0 && a&0x01 != 0 {
		body.WriteString(`<destroy jid="heath@chat.shakespeare.lit"><reason>gone</reason></destroy>`)
	}
	body.WriteString(`</x>`)
	if op&0x80 != 0 || b&0x10 != 0 {
		fmt.Fprintf(&body, `<state-annotation xmlns="urn:xmpp:psa" from="%s">%s</state-annotation>`,
			fzAnnotators[int(b>>1)%len(fzAnnotators)], cond(fzConditions[int(op>>4)%len(fzConditions)]))
	}
	if typ == "error" {
		if c := fzConds[int(b>>1)%len(fzConds)]; c != "" {
			fmt.Fprintf(&body, `<error type="cancel"><%s xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error>`, c)
		}
	}
	from := room + "/" + nick
	if b&0x0e == 0x0e {
		from = room // the room itself
	}
	p, err := presence.Unmarshal([]byte(fmt.Sprintf(`<presence from="%s" type="%s">%s</presence>`, from, typ, body.String())))
	if err != nil {
		t.Fatalf("bad generated presence: %v", err)
	}
	return &p
}

func cond(c string) string {
	if c == "" {
		return ""
	}
	return "<" + c + "/>"
}

// checkEvents checks what every event must carry.
func checkEvents(t *testing.T, evs []mucwatch.Event) {
	t.Helper()
	for _, e := range evs {
		if e.Kind.String() == "unknown" || e.Room.Equal(jid.JID{}) {
			t.Fatalf("event %+v", e)
		}
		switch e.Kind {
		case mucwatch.EventRejected:
			if e.Err == nil {
				t.Fatalf("rejection without error: %+v", e)
			}
		case mucwatch.EventRoomJoinFailed, mucwatch.EventRoomError:
			var je *mucwatch.JoinError
			if !errors.As(e.Err, &je) || je.Condition == "" {
				t.Fatalf("event %+v", e)
			}
		case mucwatch.EventOccupantAvailable, mucwatch.EventOccupantUpdated, mucwatch.EventOccupantUnavailable,
			mucwatch.EventOccupantStale, mucwatch.EventOccupantRestored, mucwatch.EventNickChanged:
			if !e.JID.Bare().Equal(e.Room) || (e.Kind != mucwatch.EventNickChanged && !e.Occupant.JID.Equal(e.JID)) ||
				(e.Kind == mucwatch.EventOccupantStale || e.Kind == mucwatch.EventOccupantRestored) && e.Mark.Condition == "" {
				t.Fatalf("event %+v", e)
			}
		}
	}
}
