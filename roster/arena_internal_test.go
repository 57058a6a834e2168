package roster

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/presence"
)

func TestSizeClass(t *testing.T) {
	for _, tc := range []struct{ n, class, size int }{
		{1, 0, 16}, {16, 0, 16}, {17, 1, 32}, {100, 3, 128},
		{chunkSize, nClasses - 1, chunkSize}, {chunkSize + 1, nClasses, chunkSize + 1},
	} {
		if class, size := sizeClass(tc.n); class != tc.class || size != tc.size {
			t.Errorf("sizeClass(%d) = %d, %d; want %d, %d", tc.n, class, size, tc.class, tc.size)
		}
	}
}

// TestArena stores, rewrites and releases blobs of random sizes, large ones
// included, and checks after every step that each live blob still holds
// what was written to it: blocks never overlap, and reuse of freed blocks
// never reaches a live one.
func TestArena(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var a arena
	type entry struct {
		b    blob
		want []byte
	}
	var live []entry
	check := func(step int) {
		t.Helper()
		for i, e := range live {
			if got := a.bytes(e.b); !bytes.Equal(got, e.want) {
				t.Fatalf("step %d: blob %d (%+v) holds %d bytes %.16q..., want %d bytes %.16q...", step, i, e.b, len(got), got, len(e.want), e.want)
			}
		}
	}
	fill := func(n int) []byte {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		return d
	}
	size := func() int {
		if rng.IntN(50) == 0 {
			return chunkSize/2 + rng.IntN(chunkSize) // some exceed a chunk
		}
		return 1 + rng.IntN(300)
	}
	for step := range 3000 {
		switch op := rng.IntN(10); {
		case op < 5 || len(live) == 0:
			d := fill(size())
			live = append(live, entry{b: a.store(blob{}, d), want: d})
		case op < 8:
			i := rng.IntN(len(live))
			d := fill(size())
			live[i] = entry{b: a.store(live[i].b, d), want: d}
		default:
			i := rng.IntN(len(live))
			a.release(live[i].b)
			live = append(live[:i], live[i+1:]...)
		}
		if step%50 == 0 {
			check(step)
		}
	}
	check(-1)
	want := 0
	for _, e := range live {
		_, s := sizeClass(len(e.want))
		want += s
	}
	if a.allocated != want {
		t.Fatalf("allocated %d, live blocks hold %d", a.allocated, want)
	}
	for _, e := range live {
		a.release(e.b)
	}
	if a.allocated != 0 {
		t.Fatalf("allocated %d after releasing everything", a.allocated)
	}
}

func TestStoreEmptyReleases(t *testing.T) {
	var a arena
	b := a.store(blob{}, []byte("juliet@capulet.lit"))
	if b = a.store(b, nil); b != (blob{}) || a.allocated != 0 {
		t.Fatalf("store of nothing gave %+v, %d bytes allocated", b, a.allocated)
	}
	if a.bytes(b) != nil {
		t.Fatal("the zero blob has bytes")
	}
}

// TestStampRoundTrip checks that times come back from a stamp as they went
// in: the same instant, and the same location, so that == holds for times
// without a monotonic reading.
func TestStampRoundTrip(t *testing.T) {
	m := New(jid.MustParse("romeo@montague.lit"))
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	for _, tm := range []time.Time{
		{},
		time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 11, 24, 10, 0, 0, 5, time.Local),
		time.Date(2026, 11, 24, 10, 0, 0, 5, paris),
		time.Now().Round(0),
	} {
		if got := m.timeOf(m.stampOf(tm)); got != tm {
			t.Errorf("%v came back as %v", tm, got)
		}
	}
}

// TestStorageHoldsNoPointers keeps the model's storage out of the garbage
// collector's walk: a pointer in a slot type would make every cycle scan
// every slot again (BenchmarkMarkModel measures what that cost).
func TestStorageHoldsNoPointers(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[contactSlot](), reflect.TypeFor[resourceSlot]()} {
		if path, ok := pointerIn(typ); ok {
			t.Errorf("%v holds a pointer at %s", typ, path)
		}
	}
	// The check itself sees the pointers that matter.
	for _, typ := range []reflect.Type{reflect.TypeFor[Resource](), reflect.TypeFor[struct {
		n [2]struct{ s string }
	}]()} {
		if _, ok := pointerIn(typ); !ok {
			t.Errorf("no pointer seen in %v", typ)
		}
	}
}

// pointerIn reports whether values of typ hold a pointer, and where.
func pointerIn(typ reflect.Type) (string, bool) {
	switch typ.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return "", false
	case reflect.Array:
		return pointerIn(typ.Elem())
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			if path, ok := pointerIn(f.Type); ok {
				return f.Name + "." + path, true
			}
		}
		return "", false
	}
	return typ.String(), true
}

// TestShrink fills a model, takes most of it away, and checks that the
// storage shrank to what is left and that what is left is intact.
func TestShrink(t *testing.T) {
	account := jid.MustParse("romeo@montague.lit/lane")
	m := New(account, WithShrinkAt(1024, 4*chunkSize))
	const n, keep = 20_000, 1_000
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{JID: jid.MustParse(fmt.Sprintf("c%d@capulet.lit", i)), Name: strings.Repeat("n", i%100), Subscription: SubscriptionBoth}
	}
	m.SetItems("1", items)
	for i := range n {
		p := &presence.Presence{From: jid.MustParse(fmt.Sprintf("c%d@capulet.lit/r", i))}
		p.Status = []presence.Text{{Value: strings.Repeat("s", i%300)}}
		m.ApplyPresence(p)
	}
	full, reserved := len(m.st.contacts)+len(m.st.resources), m.st.arena.reserved
	m.SetItems("2", items[:keep]) // the rest become strangers, most dropped at the strangers limit
	for i := keep; i < n; i++ {
		p := &presence.Presence{From: jid.MustParse(fmt.Sprintf("c%d@capulet.lit/r", i)), Type: stanza.UnavailablePresence}
		m.ApplyPresence(p)
	}
	if s := m.Stats(); s.Contacts != keep || s.Resources != keep {
		t.Fatalf("stats %+v, want %d contacts and resources", s, keep)
	}
	if slots := len(m.st.contacts) + len(m.st.resources); slots > 4*2*keep {
		t.Errorf("%d slots for %d entries (%d before)", slots, 2*keep, full)
	}
	if m.st.arena.reserved > reserved/4 {
		t.Errorf("the arena keeps %d bytes, %d before", m.st.arena.reserved, reserved)
	}
	for i := range keep {
		r, ok := m.Resource(jid.MustParse(fmt.Sprintf("c%d@capulet.lit/r", i)))
		if !ok || r.StatusText() != strings.Repeat("s", i%300) {
			t.Fatalf("c%d after the shrink: %v %+v", i, ok, r)
		}
		c, _ := m.Contact(r.JID)
		if !c.InRoster || c.Item.Name != strings.Repeat("n", i%100) {
			t.Fatalf("c%d's item after the shrink: %+v", i, c.Item)
		}
	}
}
