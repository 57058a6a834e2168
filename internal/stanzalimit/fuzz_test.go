package stanzalimit

import (
	"bytes"
	"encoding/xml"
	"testing"
)

// FuzzScanner checks the scanner against encoding/xml, the decoder under
// mellium: whatever input the scanner lets through whole, the decoder makes
// no token larger than the size limit and nests no deeper than the depth
// limit (plus the stream headers).
func FuzzScanner(f *testing.F) {
	f.Add([]byte(header + `<message><body>hi</body></message>`))
	f.Add([]byte(header + `<a x='>'><!-- <b> --><![CDATA[<c>]]></a><?pi ?>`))
	f.Add([]byte(header + `<message><!---> </message><x/>yy--></message>`))
	f.Add([]byte(header + `<features/>` + header + `<iq><query><item/></query></iq>`))
	const size, depth = 64, 4
	f.Fuzz(func(t *testing.T, in []byte) {
		s := Scanner{MaxSize: size, MaxDepth: depth}
		if s.Scan(in) != nil {
			return
		}
		d := xml.NewDecoder(bytes.NewReader(in))
		level, headers := 0, 0
		for {
			tok, err := d.RawToken()
			if err != nil {
				return
			}
			n := 0
			switch tk := tok.(type) {
			case xml.StartElement:
				level++
				if tk.Name.Local == "stream" {
					headers++
				}
				for _, a := range tk.Attr {
					n += len(a.Value)
				}
			case xml.EndElement:
				level--
			case xml.CharData:
				n = len(tk)
			case xml.Comment:
				n = len(tk)
			case xml.Directive:
				n = len(tk)
			case xml.ProcInst:
				n = len(tk.Inst)
			}
			if n > size {
				t.Fatalf("a %T of %d bytes got past a %d-byte limit", tok, n, size)
			}
			if level > depth+headers+1 {
				t.Fatalf("nesting of %d got past a limit of %d with %d stream headers", level, depth, headers)
			}
		}
	})
}
