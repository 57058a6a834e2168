package mucwatch_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
)

// bigStatus is the most status text the decoder keeps: MaxStatuses texts
// of MaxStatusBytes each.
func bigStatus() string {
	var b strings.Builder
	text := strings.Repeat("x", presence.MaxStatusBytes)
	for i := range presence.MaxStatuses {
		fmt.Fprintf(&b, `<status xml:lang="l%d">%s</status>`, i, text)
	}
	return b.String()
}

// liveHeap returns the bytes of live heap objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A room whose occupants all carry the most status text the decoder keeps,
// at the default limits: what the model holds stays within the default
// room budget, measured on the heap (4,000 such occupants hold 64 MiB).
func TestRoomBytesDefault(t *testing.T) {
	big := bigStatus()
	before := liveHeap()
	m, _ := newModel(t)
	m.Joining(occJID("romeo"))
	rejected := 0
	for i := range 4000 {
		evs, _ := m.ApplyPresence(avail(t, fmt.Sprintf("n%d", i), big, x(participant)))
		for _, e := range evs {
			if e.Kind == mucwatch.EventRejected && errors.Is(e.Err, mucwatch.ErrLimit) {
				rejected++
			}
		}
	}
	held := liveHeap() - before
	runtime.KeepAlive(m)
	if slack := uint64(2 << 20); held > mucwatch.DefaultMaxRoomBytes+slack {
		t.Fatalf("the model holds %d bytes of heap, over the %d-byte budget", held, mucwatch.DefaultMaxRoomBytes)
	}
	if rejected == 0 {
		t.Fatalf("no presence was rejected")
	}
	checkModel(t, m)
}

func TestRoomBytes(t *testing.T) {
	big := bigStatus()
	m, _ := newModel(t, mucwatch.WithMaxRoomBytes(3*len(big)))
	join(t, m, "a")
	expect(t, apply(t, m, avail(t, "b", big, x(participant))), "occupant-available")
	expect(t, apply(t, m, avail(t, "c", big, x(participant))), "occupant-available")
	evs := apply(t, m, avail(t, "d", big, x(participant)))
	if kinds(evs) != "rejected" || !errors.Is(evs[0].Err, mucwatch.ErrLimit) {
		t.Fatalf("events %+v", evs)
	}
	// A known occupant may not grow past the budget; it keeps its state.
	expect(t, apply(t, m, avail(t, "a", big, x(participant))), "rejected")
	if o, _ := m.Occupant(occJID("a")); len(o.Status) != 0 {
		t.Fatalf("a rejected update was applied: %+v", o)
	}
	// Our own presence always fits.
	expect(t, apply(t, m, avail(t, "romeo", big, x(moderator, 110))), "occupant-updated")
	// Shrinking is always allowed, and someone leaving makes room.
	expect(t, apply(t, m, avail(t, "b", x(participant))), "occupant-updated")
	apply(t, m, unavail(t, "c", x(gone)))
	expect(t, apply(t, m, avail(t, "d", big, x(participant))), "occupant-available")
	if r := state(t, m); r.Bytes > 3*len(big)+len(big)+4096 {
		t.Fatalf("room %+v", r)
	}
	checkModel(t, m)
}

// MarkDisconnectedUpTo marks every occupant but builds occupant events
// within the bound; the room's own events always come.
func TestMarkDisconnectedUpTo(t *testing.T) {
	big := bigStatus()
	m, _ := newModel(t)
	join(t, m)
	for i := range 40 {
		apply(t, m, avail(t, fmt.Sprintf("n%d", i), big, x(participant)))
	}
	bound := 10 * len(big)
	evs, omitted := m.MarkDisconnectedUpTo(bound)
	size, occupants := 0, 0
	for _, e := range evs {
		switch e.Kind {
		case mucwatch.EventOccupantStale:
			occupants++
			for _, s := range e.Occupant.Status {
				size += len(s.Value)
			}
		case mucwatch.EventRoomStale:
		default:
			t.Fatalf("event %+v", e)
		}
	}
	if kinds(evs[:1]) != "room-stale" || size > bound || occupants == 0 || occupants+omitted != 41 {
		t.Fatalf("%d occupant events holding %d bytes of status, %d omitted: %s", occupants, size, omitted, kinds(evs))
	}
	if r := state(t, m); r.StaleOccupants != 41 {
		t.Fatalf("room %+v: not every occupant was marked", r)
	}
	checkModel(t, m)
}
