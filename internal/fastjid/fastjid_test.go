package fastjid_test

import (
	"strings"
	"sync"
	"testing"
	"unsafe"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/fastjid"
)

// jidSeeds are JIDs the fast path must take, and JIDs near its edges.
var jidSeeds = []string{
	"juliet@capulet.lit/balcony",
	"romeo@montague.lit",
	"montague.lit",
	"orchard@chats.shakespeare.lit/Juliet Capulet",
	"room@conference.example.org/nick/with/slashes",
	"user+tag@example.com/phone.abc123",
	"1@2.3/4", "127.0.0.1", "[::1]", "user@[::1]/r", "a@b@c", "@b", "a@/r", "a/", "/r",
	"Juliet@capulet.lit", "juliet@Capulet.lit", "juliet@capulet.lit.", "juliet@xn--caf-dma.example",
	"juliet@ab--c.example", "juliet@-a.example", "juliet@a-.example", "juliet@a..b", "juliet@.a",
	"ju\"liet@a", "ju&liet@a", "ju'liet@a", "ju:liet@a", "ju<liet@a", "ju>liet@a", "ju liet@a",
	"a@b/ ", "a@b/\t", "a@b/\x7f", "a@b_c", "a@b/é", "é@b", "a@é", "!#$%*+-.=?^_`{|}~@x.y",
	"0@0", "-@x", "a@b/" + strings.Repeat("r", 1024), strings.Repeat("l", 1024) + "@b",
	"a@" + strings.Repeat("d", 1024),
}

func TestFastJIDTakesTypicalJIDs(t *testing.T) {
	for _, s := range []string{
		"juliet@capulet.lit/balcony", "montague.lit", "romeo@montague.lit",
		"orchard@chats.shakespeare.lit/Juliet Capulet", "user.name_1+x@mail.example.co.uk/Conversations.AbC1",
	} {
		j, ok := fastjid.FastPath(s)
		if !ok {
			t.Errorf("FastPath(%q) declined", s)
			continue
		}
		if j.String() != s {
			t.Errorf("FastPath(%q) = %q", s, j.String())
		}
	}
}

func TestFastJIDDeclines(t *testing.T) {
	for _, s := range []string{
		"", "Juliet@capulet.lit", "juliet@Capulet.lit", "juliet@capulet.lit.", "juliet@xn--caf-dma.example",
		"[::1]", "a@b/é", "a/", "@b", "a@b_c", "ju'liet@a",
	} {
		if _, ok := fastjid.FastPath(s); ok {
			t.Errorf("FastPath(%q) accepted", s)
		}
	}
}

func TestFastJIDAgreesWithParse(t *testing.T) {
	for _, s := range jidSeeds {
		checkJID(t, s)
	}
}

// FuzzFastJID checks that the fast path either declines or returns exactly
// what jid.Parse returns, and that Parse always agrees with jid.Parse.
func FuzzFastJID(f *testing.F) {
	for _, s := range jidSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkJID(t, s)
		// Random bytes rarely make a JID the fast path takes: also try the
		// input lowered and reduced to printable ASCII.
		ascii := strings.Map(func(r rune) rune {
			if r < 0x20 || r > 0x7e {
				return -1
			}
			return r
		}, s)
		checkJID(t, ascii)
		checkJID(t, strings.ToLower(ascii))
	})
}

func checkJID(t *testing.T, s string) {
	t.Helper()
	want, werr := jid.Parse(s)
	if j, ok := fastjid.FastPath(s); ok {
		if werr != nil {
			t.Fatalf("FastPath(%q) accepted what jid.Parse rejects: %v", s, werr)
		}
		sameJID(t, s, j, want)
		if j.String() != s {
			t.Fatalf("FastPath(%q) is not canonical: %q", s, j.String())
		}
	}
	j, canonical, err := fastjid.Parse(s)
	if (err == nil) != (werr == nil) {
		t.Fatalf("Parse(%q) error %v, jid.Parse error %v", s, err, werr)
	}
	if err != nil {
		return
	}
	sameJID(t, s, j, want)
	if canonical && j.String() != s {
		t.Fatalf("Parse(%q) canonical, but String() = %q", s, j.String())
	}
}

func sameJID(t *testing.T, s string, got, want jid.JID) {
	t.Helper()
	if !got.Equal(want) || !want.Equal(got) || got.String() != want.String() ||
		got.Localpart() != want.Localpart() || got.Domainpart() != want.Domainpart() ||
		got.Resourcepart() != want.Resourcepart() || !got.Bare().Equal(want.Bare()) || !got.Domain().Equal(want.Domain()) {
		t.Fatalf("%q: got %q (%q %q %q), jid.Parse %q (%q %q %q)", s,
			got, got.Localpart(), got.Domainpart(), got.Resourcepart(),
			want, want.Localpart(), want.Domainpart(), want.Resourcepart())
	}
}

func TestJIDCache(t *testing.T) {
	var c fastjid.Cache
	for range 3 {
		for _, s := range jidSeeds {
			want, werr := jid.Parse(s)
			j, canonical, err := c.Parse(s)
			if (err == nil) != (werr == nil) {
				t.Fatalf("%q: error %v, jid.Parse error %v", s, err, werr)
			}
			if err == nil {
				sameJID(t, s, j, want)
				if canonical != (j.String() == s) && canonical {
					t.Fatalf("%q: canonical but String() = %q", s, j.String())
				}
			}
		}
	}
	// A hit allocates nothing.
	if _, _, err := c.Parse("romeo@montague.lit/lane"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = c.Parse("romeo@montague.lit/lane") }); n != 0 {
		t.Errorf("a cache hit allocates %v times", n)
	}
}

func TestJIDCacheConcurrent(t *testing.T) {
	var c fastjid.Cache
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				s := jidSeeds[(i+g)%len(jidSeeds)]
				want, werr := jid.Parse(s)
				j, _, err := c.Parse(s)
				if (err == nil) != (werr == nil) || (err == nil && !j.Equal(want)) {
					t.Errorf("%q: %v %v", s, j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkParseJID(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"full", "juliet@capulet.lit/balcony"},
		{"domain", "montague.lit"},
		{"upper", "Juliet@capulet.lit/balcony"},
	} {
		b.Run(bc.name+"/jid.Parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jid.Parse(bc.s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/Parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := fastjid.Parse(bc.s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/Cache", func(b *testing.B) {
			var c fastjid.Cache
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.Parse(bc.s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestInterner(t *testing.T) {
	var in fastjid.Interner
	a := in.Intern(strings.Clone("http://conversations.im"))
	b := in.Intern(strings.Clone("http://conversations.im"))
	if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("not shared: %q %q", a, b)
	}
	long := strings.Repeat("x", fastjid.MaxIntern+1)
	if in.Intern(long) != long || in.Intern("") != "" {
		t.Error("long or empty strings changed")
	}
	s := strings.Clone("en")
	in.Intern(s)
	if n := testing.AllocsPerRun(100, func() { _ = in.Intern(s) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
	// From bytes: the same shared copy, no allocation on a hit.
	if c := in.InternBytes([]byte("http://conversations.im")); unsafe.StringData(c) != unsafe.StringData(a) {
		t.Errorf("InternBytes did not share %q", c)
	}
	bs := []byte("sha-1")
	in.InternBytes(bs)
	if n := testing.AllocsPerRun(100, func() { _ = in.InternBytes(bs) }); n != 0 {
		t.Errorf("a hit from bytes allocates %v times", n)
	}
	if got := in.InternBytes([]byte(long)); got != long {
		t.Error("long bytes changed")
	}
	// Many distinct strings: each comes back equal.
	for i := range 10_000 {
		v := strings.Repeat("v", i%100) + string(rune('a'+i%26))
		if got := in.Intern(v); got != v {
			t.Fatalf("Intern(%q) = %q", v, got)
		}
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct{ s, bare, resource string }{
		{"juliet@capulet.lit/balcony", "juliet@capulet.lit", "balcony"},
		{"capulet.lit", "capulet.lit", ""},
		{"capulet.lit/", "capulet.lit", ""},
		{"orchard@chats.shakespeare.lit/Nick/With/Slash", "orchard@chats.shakespeare.lit", "Nick/With/Slash"},
	} {
		if bare, resource := fastjid.Split(c.s); bare != c.bare || resource != c.resource {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", c.s, bare, resource, c.bare, c.resource)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = fastjid.Split("juliet@capulet.lit/balcony") }); n != 0 {
		t.Errorf("Split allocates %v times", n)
	}
}
