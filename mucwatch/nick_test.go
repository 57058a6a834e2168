package mucwatch

import (
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/text/secure/precis"
)

// The ASCII fast path of nickKey must give the Nickname profile's comparison
// key: every printable ASCII string of up to two characters, and random
// longer ones rich in spaces and capitals.
func TestNickKeyFastPath(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := precis.Nickname.CompareKey(s)
		if err != nil {
			want = "\x00" + s
		}
		if got := nickKey(s); got != want {
			t.Fatalf("nickKey(%q) = %q, profile %q (%v)", s, got, want, err)
		}
	}
	for a := ' '; a <= '~'; a++ {
		check(string(a))
		for b := ' '; b <= '~'; b++ {
			check(string(a) + string(b))
		}
	}
	const alphabet = "  aAzZ09~!_-.@/\\'\"\t"
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		check(b.String())
	}
	for _, s := range []string{"Juliet", "Ｊｕｌｉｅｔ", "Julíet", "Ω", "\u00a0juliet", "", " ", "\u00a0", "😀"} {
		check(s)
	}
}

func TestNickKeyFallback(t *testing.T) {
	// Valid resourceparts that the Nickname profile refuses are compared as
	// they are, apart from every real key.
	if nickKey(" ") == nickKey("\u00a0") || nickKey(" ") == "" || nickKey(" ")[0] != 0 {
		t.Fatalf("%q %q", nickKey(" "), nickKey("\u00a0"))
	}
}

func BenchmarkNickKey(b *testing.B) {
	for _, nick := range []string{"juliet", "Juliet", "Ｊｕｌｉｅｔ"} {
		b.Run(nick, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				nickKey(nick)
			}
		})
	}
}
