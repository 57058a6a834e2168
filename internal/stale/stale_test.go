package stale_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/internal/stale"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

var (
	account = jid.MustParse("romeo@montague.lit/lane")
	t0      = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC) // when the existing marks were set
	now     = t0.Add(time.Hour)                            // when the presence arrives
)

// Marks set before the presence arrives.
var (
	ownMark     = psa.Mark{Condition: psa.ServerUnavailable, By: jid.MustParse("montague.lit"), Since: t0}
	contactMark = psa.Mark{Condition: psa.ConnectionPaused, By: jid.MustParse("capulet.lit"), Since: t0}
	localMark   = stale.LocalMark(account, t0)
)

// annotation returns a state-annotation element from annotator with the
// given condition element ("" for an empty annotation).
func annotation(from, condition string) string {
	if condition == "" {
		return fmt.Sprintf("<state-annotation xmlns='urn:xmpp:psa' from='%s'/>", from)
	}
	return fmt.Sprintf("<state-annotation xmlns='urn:xmpp:psa' from='%s'><%s/></state-annotation>", from, condition)
}

// stanza returns a presence with the given attributes (from and type, say)
// and children.
func stanza(attrs string, children ...string) string {
	return "<presence xmlns='jabber:client' " + attrs + ">" + strings.Join(children, "") + "</presence>"
}

// TestApply applies one decoded presence to existing marks and checks the
// marks left, the changes reported and the annotations rejected.
func TestApply(t *testing.T) {
	const juliet = "from='juliet@capulet.lit/balcony'"
	tests := []struct {
		name    string
		stanza  string
		marks   psa.Marks
		want    []string // the marks left: condition, annotator and since (t0 or now)
		changes []string // kind, condition and annotator
		reject  []string // why (excluded, untrusted or malformed) and the annotator, if decoded
	}{
		// Marks set and cleared by trusted annotators.
		{
			name:    "own server's annotation sets a mark",
			stanza:  stanza(juliet, annotation("montague.lit", "server-unavailable")),
			want:    []string{"server-unavailable montague.lit now"},
			changes: []string{"added server-unavailable montague.lit"},
		},
		{
			name:    "the contact's server's annotation sets a mark",
			stanza:  stanza(juliet, annotation("capulet.lit", "connection-paused")),
			marks:   psa.Marks{ownMark},
			want:    []string{"server-unavailable montague.lit t0", "connection-paused capulet.lit now"},
			changes: []string{"added connection-paused capulet.lit"},
		},
		{
			name:    "another condition from the same annotator replaces its mark",
			stanza:  stanza(juliet, annotation("montague.lit", "connection-paused")),
			marks:   psa.Marks{ownMark, contactMark},
			want:    []string{"connection-paused montague.lit now", "connection-paused capulet.lit t0"},
			changes: []string{"replaced connection-paused montague.lit"},
		},
		{
			name:   "a repeated annotation keeps the mark's since and changes nothing",
			stanza: stanza(juliet, annotation("montague.lit", "server-unavailable")),
			marks:  psa.Marks{ownMark},
			want:   []string{"server-unavailable montague.lit t0"},
		},
		{
			name:    "an unknown condition is kept by its name",
			stanza:  stanza(juliet, annotation("capulet.lit", "volcano-erupted")),
			want:    []string{"volcano-erupted capulet.lit now"},
			changes: []string{"added volcano-erupted capulet.lit"},
		},
		{
			name:    "an empty annotation clears its annotator's mark only",
			stanza:  stanza(juliet, annotation("capulet.lit", "")),
			marks:   psa.Marks{ownMark, contactMark},
			want:    []string{"server-unavailable montague.lit t0"},
			changes: []string{"removed connection-paused capulet.lit"},
		},
		{
			name:   "an empty annotation from an annotator without a mark clears nothing",
			stanza: stanza(juliet, annotation("capulet.lit", "")),
			marks:  psa.Marks{ownMark},
			want:   []string{"server-unavailable montague.lit t0"},
		},
		{
			name:    "a trusted and a rejected annotation: the trusted one applies, the rest stays",
			stanza:  stanza(juliet, annotation("verona.lit", ""), annotation("montague.lit", "")),
			marks:   psa.Marks{ownMark, contactMark},
			want:    []string{"connection-paused capulet.lit t0"},
			changes: []string{"removed server-unavailable montague.lit"},
			reject:  []string{"untrusted verona.lit"},
		},

		// Presence without annotations, and with rejected ones only.
		{
			name:    "a plain available presence clears every mark",
			stanza:  stanza(juliet, "<show>away</show>"),
			marks:   psa.Marks{ownMark, contactMark, localMark},
			changes: []string{"removed server-unavailable montague.lit", "removed connection-paused capulet.lit", "removed local-disconnected montague.lit"},
		},
		{
			name:   "a plain available presence without marks changes nothing",
			stanza: stanza(juliet),
		},
		{
			name:   "a presence with an untrusted annotation only clears nothing",
			stanza: stanza(juliet, annotation("verona.lit", "")),
			marks:  psa.Marks{ownMark, contactMark},
			want:   []string{"server-unavailable montague.lit t0", "connection-paused capulet.lit t0"},
			reject: []string{"untrusted verona.lit"},
		},
		{
			name:   "a presence with a malformed annotation only clears nothing",
			stanza: stanza(juliet, "<state-annotation xmlns='urn:xmpp:psa'/>"),
			marks:  psa.Marks{ownMark},
			want:   []string{"server-unavailable montague.lit t0"},
			reject: []string{"malformed"},
		},

		// The local-disconnected mark.
		{
			name:    "local-disconnected: cleared by a plain presence",
			stanza:  stanza(juliet),
			marks:   psa.Marks{localMark},
			changes: []string{"removed local-disconnected montague.lit"},
		},
		{
			name:    "local-disconnected: cleared by an annotated presence",
			stanza:  stanza(juliet, annotation("capulet.lit", "connection-paused")),
			marks:   psa.Marks{localMark},
			want:    []string{"connection-paused capulet.lit now"},
			changes: []string{"added connection-paused capulet.lit", "removed local-disconnected montague.lit"},
		},
		{
			name:    "local-disconnected: cleared by a presence with only rejected annotations",
			stanza:  stanza(juliet, annotation("verona.lit", "server-unavailable")),
			marks:   psa.Marks{contactMark, localMark},
			want:    []string{"connection-paused capulet.lit t0"},
			changes: []string{"removed local-disconnected montague.lit"},
			reject:  []string{"untrusted verona.lit"},
		},
		{
			name:    "local-disconnected: an empty annotation from the own server clears it as any presence does, not as its annotator",
			stanza:  stanza(juliet, annotation("montague.lit", "")),
			marks:   psa.Marks{localMark},
			changes: []string{"removed local-disconnected montague.lit"},
		},

		// Types that cannot carry annotations: the marks stay (the models
		// remove the entry on unavailable), the annotations are reported.
		{
			name:   "excluded: unavailable",
			stanza: stanza(juliet+" type='unavailable'", annotation("capulet.lit", "server-unavailable"), "<state-annotation xmlns='urn:xmpp:psa' from='juliet@capulet.lit'/>"),
			marks:  psa.Marks{ownMark},
			want:   []string{"server-unavailable montague.lit t0"},
			reject: []string{"malformed", "excluded capulet.lit"},
		},
		{
			name:   "excluded: error",
			stanza: stanza(juliet+" type='error'", annotation("montague.lit", "")),
			marks:  psa.Marks{ownMark},
			want:   []string{"server-unavailable montague.lit t0"},
			reject: []string{"excluded montague.lit"},
		},
		{
			name:   "excluded: subscribe",
			stanza: stanza("from='juliet@capulet.lit' type='subscribe'", annotation("capulet.lit", "server-unavailable")),
			reject: []string{"excluded capulet.lit"},
		},
		{
			name:   "excluded: subscribed",
			stanza: stanza("from='juliet@capulet.lit' type='subscribed'", annotation("capulet.lit", "")),
			marks:  psa.Marks{contactMark},
			want:   []string{"connection-paused capulet.lit t0"},
			reject: []string{"excluded capulet.lit"},
		},
		{
			name:   "excluded: probe",
			stanza: stanza("from='juliet@capulet.lit' type='probe'", annotation("capulet.lit", "server-unavailable")),
			reject: []string{"excluded capulet.lit"},
		},

		// At most presence.MaxAnnotations elements are decoded: the fifth is
		// neither applied nor reported, and the presence is still a re-send.
		{
			name: "the annotation limit",
			stanza: stanza(juliet,
				annotation("a.example", "server-unavailable"),
				annotation("b.example", "server-unavailable"),
				"<state-annotation xmlns='urn:xmpp:psa'/>",
				annotation("d.example", "server-unavailable"),
				annotation("capulet.lit", "server-unavailable")),
			marks:  psa.Marks{ownMark},
			want:   []string{"server-unavailable montague.lit t0"},
			reject: []string{"malformed", "untrusted a.example", "untrusted b.example", "untrusted d.example"},
		},
		{
			name: "the annotation limit: four trusted ones apply",
			stanza: stanza(juliet,
				annotation("montague.lit", "connection-paused"),
				annotation("capulet.lit", "server-unavailable"),
				annotation("montague.lit", ""),
				annotation("capulet.lit", "connection-paused"),
				annotation("montague.lit", "server-unavailable")),
			marks:   psa.Marks{ownMark},
			want:    []string{"connection-paused capulet.lit now"},
			changes: []string{"replaced connection-paused montague.lit", "added server-unavailable capulet.lit", "removed connection-paused montague.lit", "replaced connection-paused capulet.lit"},
		},

		// The trust rule.
		{
			name:    "trust: the account's domain on a third party's presence",
			stanza:  stanza("from='mercutio@verona.lit/street'", annotation("montague.lit", "server-unavailable")),
			want:    []string{"server-unavailable montague.lit now"},
			changes: []string{"added server-unavailable montague.lit"},
		},
		{
			name:   "trust: a third domain",
			stanza: stanza(juliet, annotation("verona.lit", "server-unavailable")),
			reject: []string{"untrusted verona.lit"},
		},
		{
			name:   "trust: a parent domain of the presence's from",
			stanza: stanza("from='room@chat.capulet.lit/nurse'", annotation("capulet.lit", "server-unavailable")),
			reject: []string{"untrusted capulet.lit"},
		},
		{
			name:    "trust: a MUC service for its occupant",
			stanza:  stanza("from='room@chat.capulet.lit/nurse'", annotation("chat.capulet.lit", "server-unavailable")),
			want:    []string{"server-unavailable chat.capulet.lit now"},
			changes: []string{"added server-unavailable chat.capulet.lit"},
		},
		{
			name:    "trust: a server for its own presence",
			stanza:  stanza("from='capulet.lit'", annotation("capulet.lit", "server-unavailable")),
			want:    []string{"server-unavailable capulet.lit now"},
			changes: []string{"added server-unavailable capulet.lit"},
		},
		{
			name:   "trust: a full JID as annotator, even the presence's own",
			stanza: stanza(juliet, "<state-annotation xmlns='urn:xmpp:psa' from='juliet@capulet.lit/balcony'><server-unavailable/></state-annotation>"),
			marks:  psa.Marks{contactMark},
			want:   []string{"connection-paused capulet.lit t0"},
			reject: []string{"malformed"},
		},
		{
			name:   "trust: a domain with a resource as annotator",
			stanza: stanza(juliet, "<state-annotation xmlns='urn:xmpp:psa' from='capulet.lit/relay'><server-unavailable/></state-annotation>"),
			reject: []string{"malformed"},
		},
		{
			name:   "trust: the contact's bare JID as annotator",
			stanza: stanza(juliet, "<state-annotation xmlns='urn:xmpp:psa' from='juliet@capulet.lit'><server-unavailable/></state-annotation>"),
			reject: []string{"malformed"},
		},
		{
			name:    "trust: presence without from (the account's own): the own domain",
			stanza:  stanza("", annotation("montague.lit", "server-unavailable")),
			want:    []string{"server-unavailable montague.lit now"},
			changes: []string{"added server-unavailable montague.lit"},
		},
		{
			name:   "trust: presence without from (the account's own): any other domain",
			stanza: stanza("", annotation("capulet.lit", "server-unavailable")),
			reject: []string{"untrusted capulet.lit"},
		},
		{
			name:    "trust: the own domain in upper case",
			stanza:  stanza(juliet, annotation("MONTAGUE.LIT", "server-unavailable")),
			want:    []string{"server-unavailable montague.lit now"},
			changes: []string{"added server-unavailable montague.lit"},
		},
		{
			name:    "trust: the from's domain in mixed case, clearing a mark set in lower case",
			stanza:  stanza(juliet, annotation("Capulet.Lit", "")),
			marks:   psa.Marks{contactMark},
			changes: []string{"removed connection-paused capulet.lit"},
		},
		{
			name:    "trust: the presence's from in upper case",
			stanza:  stanza("from='JULIET@CAPULET.LIT/balcony'", annotation("capulet.lit", "server-unavailable")),
			want:    []string{"server-unavailable capulet.lit now"},
			changes: []string{"added server-unavailable capulet.lit"},
		},
		{
			name:    "trust: the own domain with a trailing dot",
			stanza:  stanza(juliet, annotation("montague.lit.", "server-unavailable")),
			want:    []string{"server-unavailable montague.lit now"},
			changes: []string{"added server-unavailable montague.lit"},
		},
		{
			name:    "trust: the from's domain with a trailing dot, clearing a mark set without",
			stanza:  stanza(juliet, annotation("capulet.lit.", "")),
			marks:   psa.Marks{contactMark},
			changes: []string{"removed connection-paused capulet.lit"},
		},
		{
			name:    "trust: the presence's from with a trailing dot",
			stanza:  stanza("from='juliet@capulet.lit./balcony'", annotation("capulet.lit", "server-unavailable")),
			want:    []string{"server-unavailable capulet.lit now"},
			changes: []string{"added server-unavailable capulet.lit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := presence.Unmarshal([]byte(tt.stanza))
			if err != nil {
				t.Fatalf("decoding %s: %v", tt.stanza, err)
			}
			before := slices.Clone(tt.marks)
			var res stale.Result
			got := stale.Apply(tt.marks, &p, account, now, &res)
			if !slices.EqualFunc(tt.marks, before, markEqual) {
				t.Errorf("Apply changed the marks it was given: %v, was %v", tt.marks, before)
			}
			if s := markStrings(got); !slices.Equal(s, tt.want) {
				t.Errorf("marks %q, want %q", s, tt.want)
			}
			if s := changeStrings(res.Changes); !slices.Equal(s, tt.changes) {
				t.Errorf("changes %q, want %q", s, tt.changes)
			}
			if s := rejectStrings(res.Rejected); !slices.Equal(s, tt.reject) {
				t.Errorf("rejected %q, want %q", s, tt.reject)
			}
		})
	}
}

// TestResultReset checks that a reused Result reports only the last
// presence.
func TestResultReset(t *testing.T) {
	var res stale.Result
	p, err := presence.Unmarshal([]byte(stanza("from='juliet@capulet.lit/balcony'", annotation("verona.lit", ""), annotation("capulet.lit", "server-unavailable"))))
	if err != nil {
		t.Fatal(err)
	}
	marks := stale.Apply(nil, &p, account, now, &res)
	res.Reset()
	plain, err := presence.Unmarshal([]byte(stanza("from='juliet@capulet.lit/balcony'")))
	if err != nil {
		t.Fatal(err)
	}
	stale.Apply(marks, &plain, account, now, &res)
	if s := changeStrings(res.Changes); !slices.Equal(s, []string{"removed server-unavailable capulet.lit"}) || len(res.Rejected) != 0 {
		t.Errorf("after Reset: changes %q, rejected %q", s, rejectStrings(res.Rejected))
	}
}

// TestLocal checks the local-disconnected helpers the models use around a
// reconnect.
func TestLocal(t *testing.T) {
	if !stale.HasLocal(psa.Marks{contactMark, localMark}, account) {
		t.Error("HasLocal misses the local mark")
	}
	if stale.HasLocal(psa.Marks{ownMark, contactMark}, account) {
		t.Error("HasLocal takes the own server's mark for the local one")
	}
	if localMark.By.String() != "romeo@montague.lit" || localMark.Condition != psa.LocalDisconnected {
		t.Errorf("LocalMark = %+v", localMark)
	}
	var res stale.Result
	got := stale.ClearLocal(psa.Marks{ownMark, localMark}, account, &res)
	if s := markStrings(got); !slices.Equal(s, []string{"server-unavailable montague.lit t0"}) {
		t.Errorf("ClearLocal left %q", s)
	}
	if s := changeStrings(res.Changes); !slices.Equal(s, []string{"removed local-disconnected montague.lit"}) {
		t.Errorf("ClearLocal reported %q", s)
	}
}

func markEqual(a, b psa.Mark) bool {
	return a.Condition == b.Condition && a.By.Equal(b.By) && a.Since.Equal(b.Since)
}

func markStrings(ms psa.Marks) []string {
	var s []string
	for _, m := range ms {
		since := m.Since.String()
		switch {
		case m.Since.Equal(t0):
			since = "t0"
		case m.Since.Equal(now):
			since = "now"
		}
		s = append(s, fmt.Sprintf("%s %s %s", m.Condition, byString(m), since))
	}
	return s
}

// byString names an annotator; the local mark is by the account's bare JID,
// shown as its domain so that the tables read alike.
func byString(m psa.Mark) string {
	if m.Condition == psa.LocalDisconnected {
		return m.By.Domainpart()
	}
	return m.By.String()
}

func changeStrings(cs []stale.Change) []string {
	var s []string
	for _, c := range cs {
		s = append(s, fmt.Sprintf("%s %s %s", c.Kind, c.Mark.Condition, byString(c.Mark)))
	}
	return s
}

func rejectStrings(rs []stale.Rejected) []string {
	var s []string
	for _, r := range rs {
		var why string
		switch {
		case errors.Is(r.Err, psa.ErrExcluded):
			why = "excluded"
		case errors.Is(r.Err, psa.ErrUntrusted):
			why = "untrusted"
		case errors.Is(r.Err, psa.ErrMalformed):
			why = "malformed"
		default:
			why = "other (" + r.Err.Error() + ")"
		}
		if !r.Annotation.From.Equal(jid.JID{}) {
			why += " " + r.Annotation.From.String()
		}
		s = append(s, why)
	}
	return s
}
