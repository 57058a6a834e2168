package stanzalimit

import (
	"errors"
	"strings"
	"testing"
)

const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>`

// scan feeds in to a Scanner whole and byte by byte, checks that both agree,
// and returns the error.
func scan(t *testing.T, size, depth int, in string) error {
	t.Helper()
	whole := Scanner{MaxSize: size, MaxDepth: depth}
	err := whole.Scan([]byte(in))
	bytewise := Scanner{MaxSize: size, MaxDepth: depth}
	var err2 error
	for i := 0; i < len(in) && err2 == nil; i++ {
		err2 = bytewise.Scan([]byte{in[i]})
	}
	if (err == nil) != (err2 == nil) {
		t.Fatalf("whole: %v, byte by byte: %v", err, err2)
	}
	if err != nil && !errors.Is(err, ErrLimit) {
		t.Fatalf("error %v does not wrap ErrLimit", err)
	}
	return err
}

func TestWithinLimits(t *testing.T) {
	stanza := `<message from='a@example.com'><body>hi</body></message>`
	cases := map[string]string{
		// Many stanzas: the limit is per stanza, not per stream.
		"many stanzas": header + strings.Repeat(stanza+"\n", 1000),
		// A restart after SASL sends a new header inside the open stream.
		"restart": header + `<features/>` + header + strings.Repeat(stanza, 100) + `</stream:stream>`,
		// '>' in attribute values, markup in comments and CDATA do not count
		// as tags.
		"quotes":   header + strings.Repeat(`<presence status='a>b' x="/>"><status>x</status></presence>`, 100),
		"comments": header + strings.Repeat(`<!-- <a><b><c> --><message><!-- -- > ---></message>`, 100),
		"cdata":    header + strings.Repeat(`<message><body><![CDATA[<a><b>]]]]></body></message>`, 100),
		"self":     header + strings.Repeat(`<r xmlns='urn:xmpp:sm:3'/>`, 1000),
		// Whitespace keepalives between stanzas never add up.
		"keepalives": header + strings.Repeat(stanza+" ", 1000),
		"nested":     header + strings.Repeat("<a>", 8) + strings.Repeat("</a>", 8),
		"pi":         header + `<?pi <a><a><a> ?>` + stanza,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if err := scan(t, 200, 8, in); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOverLimits(t *testing.T) {
	cases := map[string]string{
		"text":         header + `<message><body>` + strings.Repeat("x", 300) + `</body></message>`,
		"attribute":    header + `<message id='` + strings.Repeat("x", 300) + `'/>`,
		"top text":     header + strings.Repeat(" ", 300),
		"header":       `<stream:stream ` + strings.Repeat("x", 300),
		"depth":        header + strings.Repeat("<a>", 9),
		"comment":      header + `<message><!--` + strings.Repeat("x", 300) + `--></message>`,
		"cdata":        header + `<message><![CDATA[` + strings.Repeat("]", 300) + `]]></message>`,
		"fake restart": header + `<message>` + strings.Repeat(`<stream:stream>`, 20) + `</message>`,
		// A directive's nesting rules are not the scanner's: refused.
		"directive": header + `<message><!DOCTYPE x [ ">" </message> ]>`,
		// "<!--->" does not end the comment it opens: the bytes after it are
		// in the comment, and count.
		"comment end": header + `<message><!---> </message>` + strings.Repeat(`<x/>`+strings.Repeat("y", 100), 3) + `--></message>`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if err := scan(t, 200, 8, in); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
