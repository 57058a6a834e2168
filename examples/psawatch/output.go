package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// output shows what happens: as JSON lines, or as a table.
type output interface {
	// options returns the client callbacks that feed the output.
	options() []client.Option
	// attach gives the output the client whose models it renders.
	attach(m models)
	close()
}

// record is one line of -json output. The fields each event kind carries
// are listed in the package documentation; keep the two in step.
type record struct {
	Time  string `json:"time"`
	Event string `json:"event"`
	Room  string `json:"room,omitempty"`
	JID   string `json:"jid,omitempty"`
	// Fresh, Condition, By and Description say what the resource, occupant
	// or room is after the event: fresh, or marked stale by whom and why.
	Fresh       *bool  `json:"fresh,omitempty"`
	Condition   string `json:"condition,omitempty"`
	By          string `json:"by,omitempty"`
	Description string `json:"description,omitempty"`
	// Inferred is true when the mark is psakit's own finding (a remote
	// check), not an annotator's word.
	Inferred bool `json:"inferred,omitempty"`
	// Cleared is the mark a restored event removed.
	Cleared      *markRecord `json:"cleared,omitempty"`
	Show         string      `json:"show,omitempty"`
	Status       string      `json:"status,omitempty"`
	Subscription string      `json:"subscription,omitempty"`
	Name         string      `json:"name,omitempty"`
	OldNick      string      `json:"old_nick,omitempty"`
	Codes        []int       `json:"codes,omitempty"`
	Actor        string      `json:"actor,omitempty"`
	Reason       string      `json:"reason,omitempty"`
	Venue        string      `json:"venue,omitempty"`
	Verdict      string      `json:"verdict,omitempty"`
	Attempt      int         `json:"attempt,omitempty"`
	Delay        string      `json:"delay,omitempty"`
	Swept        *int        `json:"swept,omitempty"`
	Dropped      int         `json:"dropped,omitempty"`
	Error        string      `json:"error,omitempty"`
}

// markRecord is a staleness mark: its condition, annotator and description.
type markRecord struct {
	Condition   string `json:"condition"`
	By          string `json:"by"`
	Description string `json:"description,omitempty"`
	Inferred    bool   `json:"inferred,omitempty"`
}

func newMarkRecord(m psa.Mark) *markRecord {
	r := &markRecord{Condition: string(m.Condition), By: m.By.String(), Inferred: m.Inferred()}
	if d, ok := m.Description(); ok {
		r.Description = d.Text
	}
	return r
}

// timeFormat is RFC 3339 with as many fractional digits as the clock gives,
// so that events within a second keep their order and spacing.
const timeFormat = time.RFC3339Nano

func stamp(now time.Time) string { return now.Format(timeFormat) }

// rosterRecord turns a roster event into a record.
func rosterRecord(now time.Time, e roster.Event) record {
	r := record{Time: stamp(now), Event: e.Kind.String(), JID: e.JID.String()}
	switch e.Kind {
	case roster.EventItemAdded, roster.EventItemUpdated, roster.EventItemRemoved:
		r.Subscription = e.Item.Subscription
		r.Name = e.Item.Name
	case roster.EventRejected:
		r.errorField(e.Err)
	case roster.EventUnavailable:
		// Gone: nothing is left to be fresh or stale.
		r.Status = e.Resource.StatusText()
	default: // available, updated, stale, restored
		r.Show = string(e.Resource.Show)
		r.Status = e.Resource.StatusText()
		r.state(e.Fresh(), e.Kind == roster.EventStale, e.Mark, e.Resource.Marks)
		if e.Kind == roster.EventRestored {
			r.Cleared = newMarkRecord(e.Mark)
		}
	}
	return r
}

// state fills in fresh and, when stale, the mark that makes it so: set, the
// mark the event set, when isSet, else the first of marks.
func (r *record) state(fresh, isSet bool, set psa.Mark, marks psa.Marks) {
	r.Fresh = &fresh
	if fresh {
		return
	}
	m := set
	if !isSet && len(marks) > 0 {
		m = marks[0]
	}
	if m.Condition == "" {
		return
	}
	mr := newMarkRecord(m)
	r.Condition, r.By, r.Description, r.Inferred = mr.Condition, mr.By, mr.Description, mr.Inferred
}

func (r *record) errorField(err error) {
	if err != nil {
		r.Error = err.Error()
	}
}

func (r *record) removal(rm mucwatch.Removal) {
	r.Codes = rm.Codes
	r.Actor = rm.Actor
	r.Reason = rm.Reason
	if rm.Venue.String() != "" {
		r.Venue = rm.Venue.String()
	}
}

// roomRecord turns a room event into a record. A room joined again after a
// rejoin is reported as "rejoined".
func roomRecord(now time.Time, e mucwatch.Event, rejoined bool) record {
	r := record{Time: stamp(now), Event: e.Kind.String(), Room: e.Room.String(), JID: e.JID.String()}
	switch e.Kind {
	case mucwatch.EventRoomJoined:
		if rejoined {
			r.Event = "rejoined"
		}
	case mucwatch.EventRoomStale:
		r.state(e.Fresh(), true, e.Mark, nil)
	case mucwatch.EventRoomRestored:
		r.state(e.Fresh(), false, psa.Mark{}, nil)
		if e.Mark.Condition != "" {
			r.Cleared = newMarkRecord(e.Mark)
		}
	case mucwatch.EventOccupantAvailable, mucwatch.EventOccupantUpdated,
		mucwatch.EventOccupantStale, mucwatch.EventOccupantRestored:
		r.Show = string(e.Occupant.Show)
		r.Status = e.Occupant.StatusText()
		r.state(e.Fresh(), e.Kind == mucwatch.EventOccupantStale, e.Mark, e.Occupant.Marks)
		if e.Kind == mucwatch.EventOccupantRestored {
			r.Cleared = newMarkRecord(e.Mark)
		}
	case mucwatch.EventOccupantUnavailable:
		r.Status = e.Occupant.StatusText()
		r.removal(e.Removal)
	case mucwatch.EventNickChanged:
		r.OldNick = e.OldNick
	case mucwatch.EventRoomKicked, mucwatch.EventRoomDropped, mucwatch.EventRoomDestroyed, mucwatch.EventRoomLeft:
		r.removal(e.Removal)
	}
	r.errorField(e.Err)
	return r
}

func actionRecord(now time.Time, a client.RoomAction) record {
	r := record{Time: stamp(now), Event: a.Kind.String(), Room: a.Room.String(), Reason: string(a.Reason), Attempt: a.Attempt}
	if a.Kind == client.ActionSelfPing {
		r.Verdict = a.Verdict.String()
	}
	r.errorField(a.Err)
	return r
}

// rejoins remembers the rooms being rejoined, to tell a rejoin from a
// first join. Callbacks run one at a time, so it needs no lock.
type rejoins map[string]bool

// note records e and reports whether it completes a rejoin.
func (rj rejoins) note(e mucwatch.Event) bool {
	key := e.Room.String()
	switch e.Kind {
	case mucwatch.EventRejoining:
		rj[key] = true
	case mucwatch.EventRoomJoined:
		was := rj[key]
		delete(rj, key)
		return was
	case mucwatch.EventRoomLeft, mucwatch.EventRoomJoinFailed:
		delete(rj, key)
	}
	return false
}

func connRecord(now time.Time, e client.ConnEvent) record {
	r := record{Time: stamp(now), Event: e.Kind.String(), JID: e.JID.String()}
	switch e.Kind {
	case client.ConnReconnecting:
		r.Attempt = e.Attempt
		r.Delay = e.Delay.String()
	case client.ConnResynced:
		swept := e.Swept
		r.Swept = &swept
	}
	r.errorField(e.Err)
	return r
}

func verifyRecord(now time.Time, v client.VerifyResult) record {
	r := record{Time: stamp(now), Event: "verify-" + v.Outcome.String(), JID: v.JID.String()}
	r.errorField(v.Err)
	return r
}

func overflowRecord(now time.Time, dropped int) record {
	return record{Time: stamp(now), Event: "overflow", Dropped: dropped}
}

// jsonOutput prints one record per line. Callbacks run one at a time on the
// client's dispatcher, so writes never interleave.
type jsonOutput struct {
	w       io.Writer
	buf     bytes.Buffer // the encoded record
	line    []byte       // the record escaped
	now     func() time.Time
	rejoins rejoins
}

func newJSONOutput(w io.Writer) *jsonOutput {
	return &jsonOutput{w: w, now: time.Now, rejoins: rejoins{}}
}

// print writes r as one line. encoding/json escapes C0 controls, U+2028
// and U+2029, but writes DEL, C1 controls and bidi controls raw, which a
// terminal showing the lines would obey: they are escaped too.
func (o *jsonOutput) print(r record) {
	o.buf.Reset()
	enc := json.NewEncoder(&o.buf)
	if err := enc.Encode(r); err != nil {
		return
	}
	o.line = appendJSONEscaped(o.line[:0], o.buf.Bytes())
	_, _ = o.w.Write(o.line)
}

// appendJSONEscaped appends line, an encoding/json output, to dst with every
// character unsafe on a terminal written as a \u escape. Outside strings
// JSON output is ASCII punctuation, so only strings change, and they keep
// their values.
func appendJSONEscaped(dst, line []byte) []byte {
	const hex = "0123456789abcdef"
	for len(line) > 0 {
		r, size := utf8.DecodeRune(line)
		if r != '\n' && unsafeRune(r) {
			// encoding/json writes valid UTF-8, and no such rune is outside
			// the Basic Multilingual Plane.
			dst = append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		} else {
			dst = append(dst, line[:size]...)
		}
		line = line[size:]
	}
	return dst
}

func (o *jsonOutput) options() []client.Option {
	return []client.Option{
		client.OnRoster(func(e roster.Event) { o.print(rosterRecord(o.now(), e)) }),
		client.OnConnection(func(e client.ConnEvent) { o.print(connRecord(o.now(), e)) }),
		client.OnVerify(func(v client.VerifyResult) { o.print(verifyRecord(o.now(), v)) }),
		client.OnRoom(func(e mucwatch.Event) { o.print(roomRecord(o.now(), e, o.rejoins.note(e))) }),
		client.OnRoomAction(func(a client.RoomAction) { o.print(actionRecord(o.now(), a)) }),
		client.OnOverflow(func(n int) { o.print(overflowRecord(o.now(), n)) }),
	}
}

func (o *jsonOutput) attach(models) {}
func (o *jsonOutput) close()        {}

// models are what the table renders: a *client.Client.
type models interface {
	Roster() roster.View
	Rooms() mucwatch.View
}

// tableOutput redraws a table of the roster, at most a few times a second.
// On a terminal it clears the screen first, and while something is stale it
// redraws every second so that the "for 1m30s" of a stale presence
// advances; written to a file or a pipe, tables follow each other and are
// drawn only when something changed.
type tableOutput struct {
	w        io.Writer
	terminal bool
	mu       sync.Mutex
	m        models
	conn     string // the last connection event, for the header
	last     string // the last event, for the footer
	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}

	// Owned by the loop (or by a test that calls tick).
	dirty bool      // something changed since the last draw
	stale bool      // the last draw showed something stale
	drawn time.Time // when the last draw happened
}

const (
	redrawEvery = 250 * time.Millisecond
	staleRedraw = time.Second // the resolution of "for 1m30s"
)

// newTable returns a table output that draws only when tick is called.
func newTable(w io.Writer, terminal bool) *tableOutput {
	return &tableOutput{w: w, terminal: terminal, conn: "connecting",
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// newTableOutput returns a table output that draws from a goroutine of its
// own until close.
func newTableOutput(w io.Writer, terminal bool) *tableOutput {
	o := newTable(w, terminal)
	go o.loop()
	return o
}

// note records the header and footer lines; "" keeps one. Both may hold
// peer strings (JIDs, conditions, server error texts): they are cleaned.
func (o *tableOutput) note(conn, last string) {
	conn, last = clean(conn), clean(last)
	o.mu.Lock()
	if conn != "" {
		o.conn = conn
	}
	if last != "" {
		o.last = last
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *tableOutput) options() []client.Option {
	return []client.Option{
		client.OnRoster(func(e roster.Event) {
			o.note("", fmt.Sprintf("%s %s %s", e.Kind, e.JID, e.Mark.Condition))
		}),
		client.OnConnection(func(e client.ConnEvent) { o.note(connText(e), "") }),
		client.OnVerify(func(v client.VerifyResult) { o.note("", fmt.Sprintf("verified %s: %s", v.JID, v.Outcome)) }),
		client.OnRoom(func(e mucwatch.Event) { o.note("", fmt.Sprintf("%s %s %s", e.Kind, e.JID, e.Mark.Condition)) }),
		client.OnRoomAction(func(a client.RoomAction) {
			s := fmt.Sprintf("%s %s (%s)", a.Kind, a.Room, a.Reason)
			if a.Kind == client.ActionSelfPing {
				s += ": " + a.Verdict.String()
			}
			o.note("", s)
		}),
		client.OnOverflow(func(n int) { o.note("", fmt.Sprintf("%d events dropped", n)) }),
	}
}

// connText is the table's header line for a connection event: for
// reconnecting, which attempt, in how long, and why.
func connText(e client.ConnEvent) string {
	s := e.Kind.String()
	if e.JID.String() != "" {
		s += " as " + e.JID.String()
	}
	if e.Kind == client.ConnReconnecting {
		s += fmt.Sprintf(" (attempt %d) in %v", e.Attempt, e.Delay.Round(time.Millisecond))
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (o *tableOutput) attach(m models) {
	o.mu.Lock()
	o.m = m
	o.mu.Unlock()
	o.note("", "")
}

func (o *tableOutput) close() {
	close(o.quit)
	<-o.done
}

// loop draws until close: on each tick when something changed, and every
// staleRedraw while a terminal shows something stale. The ticker stops
// with it.
func (o *tableOutput) loop() {
	defer close(o.done)
	tick := time.NewTicker(redrawEvery)
	defer tick.Stop()
	for {
		select {
		case <-o.quit:
			if o.dirty {
				o.draw(time.Now())
			}
			return
		case <-o.wake:
			o.dirty = true
		case now := <-tick.C:
			o.tick(now)
		}
	}
}

// tick draws the table if something changed, or if a terminal shows
// something stale and was last drawn staleRedraw ago.
func (o *tableOutput) tick(now time.Time) {
	if !o.dirty && !(o.terminal && o.stale && now.Sub(o.drawn) >= staleRedraw) {
		return
	}
	o.stale = o.draw(now)
	o.drawn = now
	o.dirty = false
}

// draw writes the table and reports whether it shows something stale.
func (o *tableOutput) draw(now time.Time) bool {
	o.mu.Lock()
	m, conn, last := o.m, o.conn, o.last
	o.mu.Unlock()
	var b strings.Builder
	if o.terminal {
		b.WriteString("\x1b[H\x1b[2J") // home, clear screen
	} else {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "psawatch: %s\n\n", conn)
	stale := false
	if m != nil {
		stale = renderRoster(&b, m.Roster(), now)
		stale = renderRooms(&b, m.Rooms(), now) || stale
	}
	if last != "" {
		fmt.Fprintf(&b, "\nlast event: %s\n", last)
	}
	_, _ = io.WriteString(o.w, b.String())
	return stale
}

// renderRoster writes the roster as a table: one line per resource, and one
// per contact that is offline. It reports whether a resource is stale.
func renderRoster(w io.Writer, m roster.View, now time.Time) (stale bool) {
	contacts := slices.Collect(m.Contacts())
	slices.SortFunc(contacts, func(a, b roster.Contact) int { return cmp.Compare(a.JID.String(), b.JID.String()) })
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	row(tw, "CONTACT", "RESOURCE", "SHOW", "STATUS", "STATE")
	for _, c := range contacts {
		name := c.JID.String()
		if c.Item.Name != "" {
			name = c.Item.Name + " <" + name + ">"
		}
		if !c.Online() {
			row(tw, name, "-", "offline", "", "")
			continue
		}
		for _, r := range c.Resources {
			show := string(r.Show)
			if show == "" {
				show = "online"
			}
			row(tw, name, r.JID.Resourcepart(), show, clip(clean(r.StatusText()), 40), state(r.Marks, now))
			stale = stale || !r.Fresh()
		}
	}
	_ = tw.Flush()
	return stale
}

// renderRooms writes each room with its state, then its occupants. It
// reports whether a room or an occupant is stale.
func renderRooms(w io.Writer, m mucwatch.View, now time.Time) (stale bool) {
	rooms := slices.Collect(m.Rooms())
	slices.SortFunc(rooms, func(a, b mucwatch.Room) int { return cmp.Compare(a.JID.String(), b.JID.String()) })
	for _, r := range rooms {
		line := fmt.Sprintf("ROOM %s as %s: %s", r.JID, r.Nick, r.State)
		switch {
		case r.Stale && r.Marks.Stale():
			line += fmt.Sprintf(" (STALE: %s)", state(r.Marks, now))
		case r.Stale:
			// Our own occupant is marked, or a self-ping found us out.
			line += " (STALE)"
		}
		stale = stale || r.Stale
		fmt.Fprintf(w, "\n%s\n", clean(line))
		occupants := slices.Collect(m.Occupants(r.JID))
		slices.SortFunc(occupants, func(a, b mucwatch.Occupant) int { return cmp.Compare(a.Nick, b.Nick) })
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		row(tw, "NICK", "ROLE", "SHOW", "STATUS", "STATE")
		for _, o := range occupants {
			nick := o.Nick
			if o.Self {
				nick += " (you)"
			}
			show := string(o.Show)
			if show == "" {
				show = "online"
			}
			row(tw, nick, o.Role, show, clip(clean(o.StatusText()), 40), state(o.Marks, now))
			stale = stale || !o.Fresh()
		}
		_ = tw.Flush()
	}
	return stale
}

// state describes the marks of a resource: "fresh", or why it is stale.
func state(marks psa.Marks, now time.Time) string {
	if !marks.Stale() {
		return "fresh"
	}
	parts := make([]string, 0, len(marks))
	for _, m := range marks {
		since := now.Sub(m.Since).Truncate(time.Second)
		if d, ok := m.InferredDomain(); ok {
			// psakit's own finding, not a server's word.
			parts = append(parts, fmt.Sprintf("STALE %s inferred (%s out of reach) for %s", m.Condition, d, since))
			continue
		}
		parts = append(parts, fmt.Sprintf("STALE %s by %s for %s", m.Condition, m.By, since))
	}
	return strings.Join(parts, "; ")
}

func clip(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// row writes one table row, each cell cleaned.
func row(w io.Writer, cells ...string) {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteByte('\t')
		}
		b.WriteString(clean(c))
	}
	b.WriteByte('\n')
	_, _ = io.WriteString(w, b.String())
}

// clean makes s, which may come from anyone on the network (nicknames,
// status texts, roster names, JIDs, condition names, error texts), safe to
// print on one line of a terminal: every character that could move the
// cursor, start an escape sequence, break or reorder the line becomes
// U+FFFD, as does invalid UTF-8.
func clean(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return utf8.RuneError
		}
		return r
	}, s)
}

// unsafeRune reports whether r must not reach a terminal raw: C0 and C1
// controls and DEL (tab and line breaks included), the line and paragraph
// separators, the bidi controls (LRM, RLM, ALM, the embeddings and overrides
// U+202A–U+202E, the isolates U+2066–U+2069), and the replacement of
// invalid UTF-8.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) ||
		r == utf8.RuneError
}
