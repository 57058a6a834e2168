package langmatch_test

import (
	"testing"

	"golang.org/x/text/language"

	"github.com/psakit/psakit/internal/langmatch"
)

func TestBest(t *testing.T) {
	id := func(s string) string { return s }
	for _, tc := range []struct {
		langs []string
		def   string
		prefs []language.Tag
		want  int
	}{
		{nil, "", nil, -1},
		{[]string{"de"}, "", []language.Tag{language.French}, 0},
		{[]string{"en", "", "fr"}, "", nil, 1},
		{[]string{"en", "fr"}, "fr", nil, 1},
		{[]string{"en", "fr"}, "", nil, 0},
		{[]string{"en", "fr"}, "en", []language.Tag{language.French}, 1},
		{[]string{"en", "fr"}, "fr", []language.Tag{language.Japanese}, 1},
		{[]string{"not a tag!", "en"}, "", []language.Tag{language.English}, 1},
		{[]string{"en-GB", "de"}, "de", []language.Tag{language.AmericanEnglish}, 0},
	} {
		if got := langmatch.Best(tc.langs, id, tc.def, tc.prefs); got != tc.want {
			t.Errorf("Best(%q, %q, %v) = %d, want %d", tc.langs, tc.def, tc.prefs, got, tc.want)
		}
	}
}
