package bind

import (
	"errors"
	"testing"

	"mellium.im/xmpp/jid"
)

func TestCheckBound(t *testing.T) {
	account := jid.MustParse("romeo@montague.lit")
	for _, tc := range []struct {
		raw  string
		want string // the bound JID; "" for an error
		err  error  // nil: any error
	}{
		{"romeo@montague.lit/lane", "romeo@montague.lit/lane", nil},
		// The server chooses the resource.
		{"romeo@montague.lit/other", "romeo@montague.lit/other", nil},
		// Case and IDNA forms are normalized before comparing.
		{"ROMEO@Montague.LIT/lane", "romeo@montague.lit/lane", nil},
		{"romeo@montague.lit./lane", "romeo@montague.lit/lane", nil},
		{"x@evil.example/r", "", ErrMismatch},
		{"juliet@montague.lit/lane", "", ErrMismatch},
		{"montague.lit/lane", "", ErrMismatch},
		{"romeo@capulet.lit/lane", "", ErrMismatch},
		{"romeo@montague.lit", "", nil}, // no resource
		{"", "", nil},
		{"romeo@@montague.lit/lane", "", nil},
	} {
		got, err := checkBound(account, tc.raw)
		switch {
		case tc.want != "" && (err != nil || got.String() != tc.want):
			t.Errorf("checkBound(%q) = %s, %v; want %s", tc.raw, got, err, tc.want)
		case tc.want == "" && err == nil:
			t.Errorf("checkBound(%q) = %s, want an error", tc.raw, got)
		case tc.want == "" && tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("checkBound(%q): %v, want %v", tc.raw, err, tc.err)
		case tc.want == "" && tc.err == nil && errors.Is(err, ErrMismatch):
			t.Errorf("checkBound(%q): %v, want an invalid JID error", tc.raw, err)
		}
	}
	// The account may be given as a full JID.
	if _, err := checkBound(jid.MustParse("romeo@montague.lit/lane"), "romeo@montague.lit/x"); err != nil {
		t.Error(err)
	}
}
