package presence

import (
	"strconv"
	"testing"
)

// parseInt8 must agree with strconv.ParseInt(s, 10, 8), which it replaces
// to save an allocation per priority.
func TestParseInt8(t *testing.T) {
	const alphabet = "+-0123456789 a"
	var check func(s string, depth int)
	check = func(s string, depth int) {
		n, ok := parseInt8([]byte(s))
		want, err := strconv.ParseInt(s, 10, 8)
		if ok != (err == nil) || (ok && int64(n) != want) {
			t.Fatalf("parseInt8(%q) = %d, %v; strconv: %d, %v", s, n, ok, want, err)
		}
		if depth == 0 {
			return
		}
		for _, c := range alphabet {
			check(s+string(c), depth-1)
		}
	}
	check("", 4)
	for _, s := range []string{"127", "128", "-128", "-129", "+127", "00000127", "99999999", "-0", "+0", "٣"} {
		check(s, 0)
	}
}
