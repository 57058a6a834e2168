package mucwatch_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
)

const bigRoom = 10_000

// bigPresences decodes n occupant presences of coven with the given extra
// children, once, so that the tests and benchmarks measure the model.
func bigPresences(tb testing.TB, n int, children string) []*presence.Presence {
	tb.Helper()
	ps := make([]*presence.Presence, n)
	for i := range ps {
		ps[i] = avail(tb, fmt.Sprintf("occupant%05d", i), x(participant), children)
	}
	return ps
}

// joinBig joins coven with n other occupants.
func joinBig(tb testing.TB, m *mucwatch.Model, n int) {
	tb.Helper()
	m.Joining(occJID("romeo"))
	var evs []mucwatch.Event
	for _, p := range bigPresences(tb, n, "") {
		evs, _ = m.AppendPresence(evs, p)
	}
	evs, _ = m.AppendPresence(evs, avail(tb, "romeo", x(moderator, 110)))
	if len(evs) != n+2 || count(evs, mucwatch.EventOccupantAvailable) != n+1 || evs[n+1].Kind != mucwatch.EventRoomJoined {
		tb.Fatalf("join: %d events", len(evs))
	}
}

// A room of 10,000 occupants: the join burst, a burst of marks from the MUC
// service, a burst from our own server (the room is stale when it reaches
// our own occupant), and the bursts that restore them.
func TestLargeRoom(t *testing.T) {
	m, _ := newModel(t, mucwatch.WithMaxOccupants(bigRoom))
	joinBig(t, m, bigRoom)
	if s := m.Stats(); s.Occupants != bigRoom+1 || s.Joined != 1 || s.StaleOccupants != 0 {
		t.Fatalf("stats %+v", s)
	}
	// The limit: one more is rejected.
	evs, _ := m.ApplyPresence(avail(t, "onetoomany", x(participant)))
	expect(t, evs, "rejected")

	burst := func(children string) []mucwatch.Event {
		var evs []mucwatch.Event
		for _, p := range bigPresences(t, bigRoom, children) {
			evs, _ = m.AppendPresence(evs, p)
		}
		return evs
	}

	// The service cannot reach anyone's server: every occupant is stale, the
	// room is not (the service still has us).
	evs = burst(ann(service, "server-unavailable"))
	if len(evs) != bigRoom || count(evs, mucwatch.EventOccupantStale) != bigRoom {
		t.Fatalf("service burst: %d events", len(evs))
	}
	if r := state(t, m); r.Stale || r.StaleOccupants != bigRoom {
		t.Fatalf("room %+v", r)
	}
	// Our server's link to the service is down: it re-sends every occupant
	// annotated, ours too, and ours makes the room stale, once.
	evs = burst(ann(ownSrv, "server-unavailable"))
	if len(evs) != bigRoom || count(evs, mucwatch.EventOccupantStale) != bigRoom || state(t, m).Stale {
		t.Fatalf("own burst: %d events, %q...", len(evs), kinds(evs[:2]))
	}
	evs, _ = m.ApplyPresence(avail(t, "romeo", x(moderator, 110), ann(ownSrv, "server-unavailable")))
	expect(t, evs, "occupant-stale,room-stale")
	checkModel(t, m)
	// Our server's link is back: the room is restored with our occupant.
	evs = burst(ann(ownSrv, ""))
	if len(evs) != bigRoom || count(evs, mucwatch.EventOccupantRestored) != bigRoom || !state(t, m).Stale {
		t.Fatalf("own restore: %d events", len(evs))
	}
	evs, _ = m.ApplyPresence(avail(t, "romeo", x(moderator, 110), ann(ownSrv, "")))
	expect(t, evs, "occupant-restored,room-restored")
	if r := state(t, m); r.Stale || r.StaleOccupants != bigRoom || r.State != mucwatch.StateJoined {
		t.Fatalf("room %+v", r)
	}
	evs = burst(ann(service, ""))
	if len(evs) != bigRoom || count(evs, mucwatch.EventOccupantRestored) != bigRoom {
		t.Fatalf("service restore: %d events", len(evs))
	}
	checkModel(t, m)

	// Our stream drops, and a rejoin finds half of them.
	evs = m.MarkDisconnected()
	if len(evs) != bigRoom+2 || evs[0].Kind != mucwatch.EventRoomStale {
		t.Fatalf("disconnect: %d events", len(evs))
	}
	m.Rejoining(coven)
	evs = nil
	for i, p := range bigPresences(t, bigRoom, "") {
		if i%2 == 0 {
			evs, _ = m.AppendPresence(evs, p)
		}
	}
	evs, _ = m.AppendPresence(evs, avail(t, "romeo", x(moderator, 110)))
	if count(evs, mucwatch.EventOccupantRestored) != bigRoom/2+1 || count(evs, mucwatch.EventOccupantUnavailable) != bigRoom/2 ||
		count(evs, mucwatch.EventRoomJoined) != 1 || count(evs, mucwatch.EventRoomRestored) != 1 {
		t.Fatalf("rejoin: %d events", len(evs))
	}
	if s := m.Stats(); s.Occupants != bigRoom/2+1 || s.StaleOccupants != 0 || s.StaleRooms != 0 {
		t.Fatalf("stats %+v", s)
	}
	checkModel(t, m)
}

// Readers take snapshots from other goroutines while the model changes;
// `go test -race` checks that this is safe.
func TestConcurrentReaders(t *testing.T) {
	m, _ := newModel(t)
	join(t, m, "juliet")
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for r := range m.Rooms() {
					_ = r.Stale
					for _, mk := range r.Marks {
						_ = mk.Condition
					}
					for o := range m.Occupants(r.JID) {
						_ = o.Fresh()
						_ = o.StatusText()
						for _, mk := range o.Marks {
							_ = mk.Condition
						}
					}
				}
				m.Occupant(occJID("c1"))
				m.Self(coven)
				m.Tracks(occJID("c1"))
				m.Stats()
			}
		})
	}
	for i := range 3000 {
		nick := fmt.Sprintf("c%d", i%50)
		var p *presence.Presence
		switch i % 6 {
		case 0:
			p = avail(t, nick, `<status>hi</status>`, x(participant))
		case 1:
			p = avail(t, nick, x(participant), ann(ownSrv, "server-unavailable"))
		case 2:
			p = avail(t, nick, x(participant), ann(service, ""))
		case 3:
			p = unavail(t, nick, x(gone))
		case 4:
			p = unavail(t, nick, x(`<item role="participant" nick="`+nick+`x"/>`, 303))
		case 5:
			if i%600 == 5 {
				m.MarkDisconnected()
				m.Rejoining(coven)
				p = avail(t, "romeo", x(moderator, 110))
			} else {
				p = avail(t, nick, x(participant), ann(ownSrv, ""))
			}
		}
		m.ApplyPresence(p)
	}
	close(done)
	wg.Wait()
	checkModel(t, m)
}
