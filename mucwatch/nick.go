package mucwatch

import (
	"strings"

	"golang.org/x/text/secure/precis"
)

// nickKey returns the key under which a nick is filed: its PRECIS Nickname
// comparison key (RFC 8266 §2.4: width and space mapping, lower case, NFKC),
// so that "Juliet", "juliet" and "Ｊｕｌｉｅｔ" are one occupant.
//
// A nick the profile refuses (one made only of spaces, say; the resourcepart
// rules that mellium applies are looser) is kept as it is, compared byte for
// byte, behind a NUL byte that no comparison key contains.
func nickKey(nick string) string {
	if asciiSimple(nick) {
		// The comparison key of printable ASCII without leading, trailing or
		// doubled spaces is its lower case (checked against the profile in the
		// tests). This is the common case, and it allocates nothing when the
		// nick is already lower case.
		return strings.ToLower(nick)
	}
	k, err := precis.Nickname.CompareKey(nick)
	if err != nil {
		return "\x00" + nick
	}
	return k
}

// asciiSimple reports whether s is non-empty printable ASCII with no leading,
// trailing or consecutive spaces.
func asciiSimple(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || (c == ' ' && s[i-1] == ' ') {
			return false
		}
	}
	return true
}
