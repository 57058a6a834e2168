package fastjid

import (
	"hash/maphash"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// sameSet returns n distinct strings, made with mk, whose hashes pick the
// same set of a cache with sets sets.
func sameSet(t *testing.T, n, sets int, mk func(int) string) []string {
	t.Helper()
	bySet := map[uint64][]string{}
	for i := range 1_000_000 {
		s := mk(i)
		k := maphash.String(jidSeed, s) % uint64(sets)
		if bySet[k] = append(bySet[k], s); len(bySet[k]) == n {
			return bySet[k]
		}
	}
	t.Fatalf("no %d strings in one set", n)
	return nil
}

// hot is how many strings whose hashes pick the same set must all stay
// cached: which strings collide depends on the per-process seed, and a
// client's few hot strings (its own JID, its server, caps, xml:lang) must
// not evict one another on every stanza.
const hot = 4

func TestCollidingStringsStayCached(t *testing.T) {
	t.Run("JIDCache", func(t *testing.T) {
		var c Cache
		jids := sameSet(t, hot, len(c.sets), func(i int) string { return "user" + strconv.Itoa(i) + "@example.org/r" })
		for _, s := range jids {
			if _, _, err := c.Parse(s); err != nil {
				t.Fatal(err)
			}
		}
		n := testing.AllocsPerRun(100, func() {
			for _, s := range jids {
				_, _, _ = c.Parse(s)
			}
		})
		if n != 0 {
			t.Errorf("%d JIDs of one set: %v allocations per round, want 0", hot, n)
		}
	})
	t.Run("Interner", func(t *testing.T) {
		var in Interner
		strs := sameSet(t, hot, len(in.sets), func(i int) string { return "node" + strconv.Itoa(i) })
		first := make([]string, len(strs))
		for i, s := range strs {
			first[i] = in.Intern(s)
		}
		for i, s := range strs {
			if got := in.Intern(strings.Clone(s)); unsafe.StringData(got) != unsafe.StringData(first[i]) {
				t.Errorf("%q is no longer shared after %d strings of its set", s, hot)
			}
		}
	})
	t.Run("oldest goes", func(t *testing.T) {
		var in Interner
		strs := sameSet(t, cacheWays+1, len(in.sets), func(i int) string { return "ver" + strconv.Itoa(i) })
		oldest := in.Intern(strs[0])
		for _, s := range strs[1:] {
			in.Intern(s)
		}
		if got := in.Intern(strings.Clone(strs[0])); unsafe.StringData(got) == unsafe.StringData(oldest) {
			t.Errorf("%q still cached after %d newer strings of its set", strs[0], cacheWays)
		}
	})
}
