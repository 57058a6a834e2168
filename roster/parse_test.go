package roster_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/psakit/psakit/roster"
)

// readQuery parses a query element with ReadItems, as the client does after
// reading its start.
func readQuery(t *testing.T, s string) ([]roster.Item, error) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			return roster.ReadItems(d)
		}
	}
}

func TestReadItems(t *testing.T) {
	many := strings.Repeat("<group>g</group>", roster.MaxGroups+5)
	for _, tc := range []struct {
		name  string
		query string
		want  []string // JID|name|subscription|ask|approved|[groups], per item
		bad   bool
	}{
		{"empty", `<query xmlns='jabber:iq:roster'/>`, nil, false},
		{"one item with everything",
			`<query xmlns='jabber:iq:roster'><item jid='juliet@capulet.lit/balcony' name='Juliet' subscription='both' ask='subscribe' approved='true'><group>Friends</group><group>Lovers</group></item></query>`,
			[]string{"juliet@capulet.lit|Juliet|both|true|true|[Friends Lovers]"}, false},
		{"unknown elements and namespaced attributes are skipped",
			`<query xmlns='jabber:iq:roster'><foo/><item xmlns:x='urn:x' x:name='no' jid='nurse@capulet.lit' approved='1'><x:bar/></item></query>`,
			[]string{"nurse@capulet.lit|||false|true|[]"}, false},
		{"a malformed item is skipped, the others kept",
			`<query xmlns='jabber:iq:roster'><item jid='@@'/><item jid='romeo@montague.lit'/><item name='nobody'/><item jid='tybalt@capulet.lit' subscription='enemy'/></query>`,
			[]string{"romeo@montague.lit|||false|false|[]"}, true},
		{"groups past MaxGroups are dropped",
			`<query xmlns='jabber:iq:roster'><item jid='romeo@montague.lit'>` + many + `</item></query>`,
			[]string{"romeo@montague.lit|||false|false|[" + strings.TrimSpace(strings.Repeat("g ", roster.MaxGroups)) + "]"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := readQuery(t, tc.query)
			if tc.bad != errors.Is(err, roster.ErrBadItem) || (err != nil && !tc.bad) {
				t.Fatalf("err %v, want ErrBadItem %v", err, tc.bad)
			}
			var got []string
			for _, it := range items {
				got = append(got, strings.Join([]string{it.JID.String(), it.Name, it.Subscription,
					fmtBool(it.Ask), fmtBool(it.Approved), "[" + strings.Join(it.Groups, " ") + "]"}, "|"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("items\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestReadItemsBounds(t *testing.T) {
	long := strings.Repeat("n", roster.MaxNameBytes+100)
	items, err := readQuery(t, `<query xmlns='jabber:iq:roster'><item jid='romeo@montague.lit' name='`+long+`'><group>`+long+`</group></item></query>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || len(items[0].Name) > roster.MaxNameBytes {
		t.Fatalf("items %d, name of %d bytes, want 1 item and at most %d", len(items), len(items[0].Name), roster.MaxNameBytes)
	}
}

func fmtBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
