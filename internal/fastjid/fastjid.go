// Package fastjid parses the JIDs psakit's decoders read from attributes,
// with exactly jid.Parse's result but without its cost for the common case,
// and keeps the small caches the decoders share: Cache for JIDs that repeat
// from stanza to stanza, Interner for repeated strings (caps, xml:lang).
// Every cache has a fixed size and is safe for concurrent use.
package fastjid

import (
	"hash/maphash"
	"sync/atomic"

	"mellium.im/xmpp/jid"
)

// Parse parses a JID found in an attribute, as jid.Parse does and with
// exactly its result. canonical reports that s is already the JID's
// normalized string form (j.String() == s), so callers may use s as a map
// key instead of calling j.String().
//
// Most JIDs on the wire are lower-case ASCII and already normalized; for
// those FastPath builds the JID without PRECIS and IDNA, which cost most of
// jid.Parse's time and allocations.
func Parse(s string) (j jid.JID, canonical bool, err error) {
	if j, ok := FastPath(s); ok {
		return j, true, nil
	}
	j, err = jid.Parse(s)
	return j, false, err
}

// FastPath returns the JID s when s is provably what jid.Parse would return
// unchanged: ASCII only, with
//   - a localpart of printable characters without upper-case letters (which
//     PRECIS UsernameCaseMapped would lower) nor the ones RFC 7622 forbids;
//   - a domainpart of LDH labels (IDNA with STD3 rules): lower-case letters,
//     digits and hyphens, no label starting or ending with a hyphen, no
//     "--" in the third and fourth positions (which covers punycode "xn--"
//     labels, that IDNA would turn into Unicode), no empty label, no
//     trailing dot;
//   - a resourcepart of printable characters or spaces (PRECIS OpaqueString
//     leaves them as they are);
//   - each part at most 1023 bytes.
//
// ok is false, and the caller must use jid.Parse, for anything else. The
// package's fuzz test checks that FastPath either declines or agrees with
// jid.Parse byte for byte.
func FastPath(s string) (j jid.JID, ok bool) {
	if s == "" {
		return jid.JID{}, false
	}
	// Split as jid.SplitString does: the first '/' ends the domainpart, then
	// the first '@' before it ends the localpart.
	local, domain, resource := "", s, ""
	hasResource := false
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			domain, resource, hasResource = s[:i], s[i+1:], true
			break
		}
	}
	if hasResource && !validResource(resource) {
		return jid.JID{}, false
	}
	for i := 0; i < len(domain); i++ {
		if domain[i] == '@' {
			local, domain = domain[:i], domain[i+1:]
			if !validLocal(local) {
				return jid.JID{}, false
			}
			break
		}
	}
	if !validDomain(domain) {
		return jid.JID{}, false
	}
	return jid.NewUnsafe(local, domain, resource).JID, true
}

func validLocal(s string) bool {
	if len(s) == 0 || len(s) > 1023 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !localOK[s[i]] {
			return false
		}
	}
	return true
}

func validResource(s string) bool {
	if len(s) == 0 || len(s) > 1023 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func validDomain(s string) bool {
	if len(s) == 0 || len(s) > 1023 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if !ldh[s[i]] {
				return false
			}
			continue
		}
		label := s[start:i]
		if len(label) == 0 || label[0] == '-' || label[len(label)-1] == '-' ||
			(len(label) >= 4 && label[2] == '-' && label[3] == '-') {
			return false
		}
		start = i + 1
	}
	return true
}

var localOK, ldh = func() (local, ldh [256]bool) {
	for c := 0x21; c <= 0x7e; c++ {
		local[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		local[c] = false
	}
	for _, c := range `"&'/:<>@` {
		local[c] = false
	}
	for c := 'a'; c <= 'z'; c++ {
		ldh[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		ldh[c] = true
	}
	ldh['-'] = true
	return local, ldh
}()

// Split cuts the string form of a JID into its bare JID and its
// resourcepart, without allocating: s cut at the first slash (no localpart
// or domainpart holds one). For presence.Presence.FromString's result it
// gives the bare JID the models key their maps with.
func Split(s string) (bare, resource string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// Cache remembers the last JIDs parsed, for attributes that repeat from
// stanza to stanza: the to of every stanza (the account's own JID) and the
// annotators of state annotations (a few domains). It holds a fixed number
// of entries, is safe for concurrent use, and a hit allocates nothing. Do
// not use it for values that rarely repeat: a miss costs an entry.
//
// Caching is invisible to callers: a jid.JID is immutable, so one value may
// be shared by every stanza that carried the same string.
type Cache struct {
	sets [cacheSlots / cacheWays][cacheWays]atomic.Pointer[cachedJID]
}

const cacheSlots = 64

// cacheWays is the number of entries per set of Cache and Interner. A
// string may sit in any entry of the set its hash picks, so a few hot
// strings that hash to the same set (the per-process seed decides) still
// all stay cached instead of evicting one another on every stanza.
const cacheWays = 4

// insert puts e first in set, shifting the others down and dropping the
// last: the set keeps the most recently missed entries. Concurrent inserts
// may interleave; each slot always holds a whole entry, which is all a
// lookup relies on.
func insert[E any](set *[cacheWays]atomic.Pointer[E], e *E) {
	for i := cacheWays - 1; i > 0; i-- {
		set[i].Store(set[i-1].Load())
	}
	set[0].Store(e)
}

type cachedJID struct {
	s         string
	j         jid.JID
	canonical bool
}

var jidSeed = maphash.MakeSeed()

// Parse is the package's Parse through the cache. Invalid JIDs are not cached. A nil
// cache parses without caching.
func (c *Cache) Parse(s string) (j jid.JID, canonical bool, err error) {
	if c == nil {
		return Parse(s)
	}
	set := &c.sets[maphash.String(jidSeed, s)%uint64(len(c.sets))]
	for i := range set {
		if e := set[i].Load(); e != nil && e.s == s {
			return e.j, e.canonical, nil
		}
	}
	j, canonical, err = Parse(s)
	if err == nil {
		insert(set, &cachedJID{s: s, j: j, canonical: canonical})
	}
	return j, canonical, err
}

// Interner returns one shared copy of strings that repeat from stanza to
// stanza: caps nodes and verification strings, xml:lang values. A model
// that keeps such a string per entry then keeps one copy instead of one per
// entry, and comparing two of them stops at the pointer instead of reading
// both from memory, which in a model of a million entries is a cache miss.
// It holds a fixed number of entries, is safe for concurrent use, and a hit
// allocates nothing; a miss replaces the oldest entry of its set.
type Interner struct {
	sets [internSlots / cacheWays][cacheWays]atomic.Pointer[string]
}

const internSlots = 256

// MaxIntern is the longest string an Interner keeps; longer ones are
// returned as they are.
const MaxIntern = 128

// Intern returns a string equal to s, shared with earlier calls when
// possible. A nil Interner returns s.
func (in *Interner) Intern(s string) string {
	if in == nil || s == "" || len(s) > MaxIntern {
		return s
	}
	set := &in.sets[maphash.String(jidSeed, s)%uint64(len(in.sets))]
	for i := range set {
		if e := set[i].Load(); e != nil && *e == s {
			return *e
		}
	}
	e := new(string) // not &s, which would move every s to the heap
	*e = s
	insert(set, e)
	return s
}

// InternBytes is Intern for a string held as bytes: a hit returns the
// shared copy without allocating, a miss allocates the string once.
func (in *Interner) InternBytes(b []byte) string {
	if in == nil || len(b) == 0 || len(b) > MaxIntern {
		return string(b)
	}
	set := &in.sets[maphash.Bytes(jidSeed, b)%uint64(len(in.sets))]
	for i := range set {
		if e := set[i].Load(); e != nil && *e == string(b) {
			return *e
		}
	}
	e := new(string)
	*e = string(b)
	insert(set, e)
	return *e
}
