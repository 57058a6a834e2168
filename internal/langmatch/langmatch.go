// Package langmatch picks, among texts in several languages (a presence's
// status texts, an annotation's descriptions), the one that best fits a
// user's preferred languages. psa and presence share it so that both pick
// the same way.
package langmatch

import "golang.org/x/text/language"

// Best returns the index in items of the item that best fits prefs, most
// preferred first, or -1 when items is empty. lang gives an item's
// xml:lang. Without preferences, or when none matches, it picks the first
// item in defaultLang, else the first item. Tags that do not parse match
// nothing.
func Best[T any](items []T, lang func(T) string, defaultLang string, prefs []language.Tag) int {
	if len(items) == 0 {
		return -1
	}
	fallback := 0
	for i, it := range items {
		if lang(it) == defaultLang {
			fallback = i
			break
		}
	}
	if len(items) == 1 || len(prefs) == 0 {
		return fallback
	}
	// language.Matcher falls back to its first tag: put the fallback there and
	// keep a map from matcher index to item index.
	tags := make([]language.Tag, 0, len(items))
	index := make([]int, 0, len(items))
	tags = append(tags, parseTag(lang(items[fallback])))
	index = append(index, fallback)
	for i, it := range items {
		if i == fallback {
			continue
		}
		tags = append(tags, parseTag(lang(it)))
		index = append(index, i)
	}
	_, i, conf := language.NewMatcher(tags).Match(prefs...)
	if conf == language.No {
		return fallback
	}
	return index[i]
}

func parseTag(s string) language.Tag {
	if s == "" {
		return language.Und
	}
	t, err := language.Parse(s)
	if err != nil {
		return language.Und
	}
	return t
}
