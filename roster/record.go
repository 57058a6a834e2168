package roster

import (
	"encoding/binary"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/fastjid"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// The records the Model keeps in its arena. Each is a sequence of fields:
// strings as a uvarint length and the bytes, small enumerations as one byte
// (a code for the values the RFCs define, else codeOther and the string),
// numbers as varints. The encoding of a value is unique, so two records are
// equal exactly when their values are: comparing a presence's state with
// the stored one is comparing bytes.
//
//	key:   bare JID
//	state: full JID, show, priority, caps hash, node, ver, statuses (count,
//	       then lang and value of each)
//	marks: count, then per mark: condition, annotator JID, since (stamp),
//	       descriptions (count, then lang and text of each)
//	item:  name, subscription, ask and approved (one byte of flags),
//	       groups (count, then each)

const codeOther = 0xff

var shows = [...]presence.Show{presence.ShowNone, presence.ShowAway, presence.ShowChat, presence.ShowDND, presence.ShowXA}

var subscriptions = [...]string{"", SubscriptionNone, SubscriptionTo, SubscriptionFrom, SubscriptionBoth}

var conditions = [...]psa.Condition{psa.ServerUnavailable, psa.ConnectionPaused, psa.LocalDisconnected}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendCode appends the index of s in known, or codeOther and s.
func appendCode[S ~string](b []byte, s S, known []S) []byte {
	for i, k := range known {
		if k == s {
			return append(b, byte(i))
		}
	}
	return appendString(append(b, codeOther), string(s))
}

func appendStamp(b []byte, s stamp) []byte {
	b = binary.AppendVarint(b, s.sec)
	b = binary.AppendUvarint(b, uint64(s.nsec))
	return append(b, s.loc)
}

// appendState appends the state record of the resource full.
func appendState(b []byte, full string, s *presence.State) []byte {
	b = appendString(b, full)
	b = appendCode(b, s.Show, shows[:])
	b = append(b, byte(s.Priority))
	b = appendString(b, s.Caps.Hash)
	b = appendString(b, s.Caps.Node)
	b = appendString(b, s.Caps.Ver)
	b = binary.AppendUvarint(b, uint64(len(s.Status)))
	for _, t := range s.Status {
		b = appendString(b, t.Lang)
		b = appendString(b, t.Value)
	}
	return b
}

func appendItem(b []byte, it *Item) []byte {
	b = appendString(b, it.Name)
	b = appendCode(b, it.Subscription, subscriptions[:])
	var flags byte
	if it.Ask {
		flags |= 1
	}
	if it.Approved {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(it.Groups)))
	for _, g := range it.Groups {
		b = appendString(b, g)
	}
	return b
}

// reader reads a record the Model wrote. Records never come from outside,
// so a short or malformed record is a bug in this package: reader then
// panics, as an index out of range would.
type reader struct {
	b []byte
}

func (r *reader) uvarint() uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 {
		// One byte: every length of a decoded presence's strings but the
		// longest status texts.
		v := uint64(r.b[0])
		r.b = r.b[1:]
		return v
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		panic("roster: corrupt record")
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		panic("roster: corrupt record")
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns the next string field without copying it.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) string() string { return string(r.bytes()) }

func readCode[S ~string](r *reader, known []S) S {
	if c := r.byte(); c != codeOther {
		return known[c]
	}
	return S(r.string())
}

func (r *reader) stamp() stamp {
	return stamp{sec: r.varint(), nsec: int32(r.uvarint()), loc: r.byte()}
}

func (r *reader) texts() []presence.Text {
	n := r.uvarint()
	if n == 0 {
		return nil
	}
	ts := make([]presence.Text, n)
	for i := range ts {
		ts[i] = presence.Text{Lang: r.string(), Value: r.string()}
	}
	return ts
}

// stateMatches reports whether the state record rec holds s (its delay
// aside), comparing field by field instead of encoding s.
func stateMatches(rec []byte, s *presence.State) bool {
	r := reader{rec}
	r.bytes() // the full JID, which the caller found the record by
	if readCode(&r, shows[:]) != s.Show || int8(r.byte()) != s.Priority ||
		string(r.bytes()) != s.Caps.Hash || string(r.bytes()) != s.Caps.Node || string(r.bytes()) != s.Caps.Ver ||
		r.uvarint() != uint64(len(s.Status)) {
		return false
	}
	for _, t := range s.Status {
		if string(r.bytes()) != t.Lang || string(r.bytes()) != t.Value {
			return false
		}
	}
	return true
}

// stateJID returns the full JID of a state record, without copying.
func stateJID(rec []byte) []byte {
	r := reader{rec}
	return r.bytes()
}

// readState decodes a state record into its full JID and state (without
// the delay, which the slot keeps). known, when not nil, is the JID the
// record holds, which then need not be parsed.
func (m *Model) readState(rec []byte, known *jid.JID) (jid.JID, presence.State) {
	r := reader{rec}
	var full jid.JID
	if b := r.bytes(); known != nil {
		full = *known
	} else {
		full = m.parseJID(b)
	}
	var s presence.State
	s.Show = readCode(&r, shows[:])
	s.Priority = int8(r.byte())
	s.Caps = presence.Caps{Hash: m.intern(r.bytes()), Node: m.intern(r.bytes()), Ver: m.intern(r.bytes())}
	s.Status = r.texts()
	return full, s
}

func (m *Model) readItem(bare jid.JID, rec []byte) Item {
	r := reader{rec}
	it := Item{JID: bare, Name: r.string()}
	it.Subscription = readCode(&r, subscriptions[:])
	flags := r.byte()
	it.Ask, it.Approved = flags&1 != 0, flags&2 != 0
	if n := r.uvarint(); n > 0 {
		it.Groups = make([]string, n)
		for i := range it.Groups {
			it.Groups[i] = r.string()
		}
	}
	return it
}

func (m *Model) appendMarks(b []byte, ms psa.Marks) []byte {
	if len(ms) == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for i := range ms {
		mk := &ms[i]
		b = appendCode(b, mk.Condition, conditions[:])
		b = appendString(b, m.jidString(mk.By))
		b = appendStamp(b, m.stampOf(mk.Since))
		b = binary.AppendUvarint(b, uint64(len(mk.Descriptions)))
		for _, d := range mk.Descriptions {
			b = appendString(b, d.Lang)
			b = appendString(b, d.Text)
		}
	}
	return b
}

func (m *Model) readMarks(rec []byte) psa.Marks {
	if len(rec) == 0 {
		return nil
	}
	r := reader{rec}
	ms := make(psa.Marks, r.uvarint())
	for i := range ms {
		ms[i].Condition = readCode(&r, conditions[:])
		ms[i].By = m.parseJID(r.bytes())
		ms[i].Since = m.timeOf(r.stamp())
		if n := r.uvarint(); n > 0 {
			ds := make([]psa.Description, n)
			for j := range ds {
				ds[j] = psa.Description{Lang: r.string(), Text: r.string()}
			}
			ms[i].Descriptions = ds
		}
	}
	return ms
}

// stamp is a time.Time without pointers: its instant, and its location as
// an index in Model.locs.
type stamp struct {
	sec  int64
	nsec int32
	loc  uint8 // 0 is UTC
}

// maxLocs is how many locations a Model remembers for its stamps; times in
// further locations are kept in UTC (the same instant).
const maxLocs = 255

func (m *Model) stampOf(t time.Time) stamp {
	s := stamp{sec: t.Unix(), nsec: int32(t.Nanosecond())}
	loc := t.Location()
	if loc == time.UTC {
		return s
	}
	for i, l := range m.locs {
		if l == loc {
			s.loc = uint8(i + 1)
			return s
		}
	}
	if len(m.locs) < maxLocs {
		m.locs = append(m.locs, loc)
		s.loc = uint8(len(m.locs))
	}
	return s
}

func (m *Model) timeOf(s stamp) time.Time {
	t := time.Unix(s.sec, int64(s.nsec))
	if s.loc == 0 {
		return t.UTC()
	}
	return t.In(m.locs[s.loc-1])
}

// jidString returns j.String(), remembering the last result: the marks of
// a burst all come from one annotator.
func (m *Model) jidString(j jid.JID) string {
	if !j.Equal(m.lastJID) || m.lastJIDString == "" {
		m.lastJID, m.lastJIDString = j, j.String()
	}
	return m.lastJIDString
}

// parseJID returns the JID whose string the Model stored. It was valid when
// stored, so parsing cannot fail; the last result is remembered, as in
// jidString.
func (m *Model) parseJID(b []byte) jid.JID {
	if m.lastJIDString != "" && string(b) == m.lastJIDString {
		return m.lastJID
	}
	s := string(b)
	j, ok := fastjid.FastPath(s)
	if !ok {
		var err error
		if j, err = jid.Parse(s); err != nil {
			panic("roster: corrupt JID in record: " + err.Error())
		}
	}
	return j
}

// intern returns the string of b, shared with earlier calls for the short
// values that repeat across contacts (caps).
func (m *Model) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return m.strings.InternBytes(b)
}
