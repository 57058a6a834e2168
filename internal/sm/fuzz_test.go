package sm

import (
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode checks that Decode never panics, that it fails only with
// ErrMalformed or the token stream's own error, and that what it decodes
// encodes to an element that decodes the same.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`<enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/>`,
		`<enabled xmlns='urn:xmpp:sm:3' id='x' resume='1' location='h:1' max='9'/>`,
		`<r xmlns='urn:xmpp:sm:3'/>`,
		`<a xmlns='urn:xmpp:sm:3' h='4294967295'/>`,
		`<resume xmlns='urn:xmpp:sm:3' h='3' previd='abc'/>`,
		`<resumed xmlns='urn:xmpp:sm:3' h='0' previd='abc'/>`,
		`<failed xmlns='urn:xmpp:sm:3' h='5'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>t</text></failed>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		el, err := decodeString(s)
		if err != nil {
			return
		}
		again, err := decodeString(encodeString(t, el))
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				t.Fatalf("re-encoded %#v does not decode: %v", el, err)
			}
			t.Fatalf("re-encoded %#v: %v", el, err)
		}
		if !reflect.DeepEqual(again, el) {
			t.Fatalf("round trip: %#v became %#v", el, again)
		}
	})
}

// FuzzScanner checks that the Scanner never panics and keeps its memory
// bounded on any bytes, in any chunking.
func FuzzScanner(f *testing.F) {
	f.Add([]byte(streamText), uint8(7))
	f.Add([]byte("<stream:stream><a><![CDATA[<b>]]></a><!-- x --><?pi?>"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		sc := &Scanner{Capture: 64}
		n := int(chunk) + 1
		var chunked []string
		for i := 0; i < len(b); i += n {
			sc.Feed(b[i:min(i+n, len(b))], func(top Top) {
				if len(top.Raw) > 64 || len(top.Tag) > maxTag || len(top.Name) > maxName {
					t.Fatalf("unbounded element: %d raw, %d tag, %d name", len(top.Raw), len(top.Tag), len(top.Name))
				}
				chunked = append(chunked, fmt.Sprintf("%s|%s|%s|%v", top.Name, top.Tag, top.Raw, top.Truncated))
			})
		}
		// The chunking never changes what is found.
		var whole []string
		(&Scanner{Capture: 64}).Feed(b, func(top Top) {
			whole = append(whole, fmt.Sprintf("%s|%s|%s|%v", top.Name, top.Tag, top.Raw, top.Truncated))
		})
		if fmt.Sprint(whole) != fmt.Sprint(chunked) {
			t.Fatalf("fed whole: %q\nin chunks of %d: %q", whole, n, chunked)
		}
		if cap(sc.buf) > 256 || cap(sc.attrs) > 2*maxTag+64 || cap(sc.name) > 2*maxName {
			t.Fatalf("scanner buffers grew: %d %d %d", cap(sc.buf), cap(sc.attrs), cap(sc.name))
		}
	})
}

// FuzzState drives a State with a random sequence of sends, acks (true,
// wrong and backwards), receptions, suspensions, resumptions and failures,
// and checks its invariants after each: the queue holds exactly the stanzas
// sent and not acknowledged (oldest first, consecutive numbers ending at
// the count sent, less those dropped for size), its byte total is right and
// bounded.
func FuzzState(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 3, 4, 5, 0, 1, 6, 7})
	f.Add([]byte{0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 4, 5})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const max = 50
		s := New(Config{MaxQueueBytes: max})
		s.Enabled(Enabled{ID: "x", Resume: true})
		for i := 0; i < len(ops); i++ {
			switch ops[i] % 8 {
			case 0:
				size := 0
				if i+1 < len(ops) {
					i++
					size = int(ops[i]) % 80
				}
				s.Sent(make([]byte, size))
			case 1:
				var h uint32
				if i+4 < len(ops) {
					h = binary.BigEndian.Uint32(ops[i+1 : i+5])
					i += 4
				}
				err := s.Ack(h)
				if err != nil && !errors.Is(err, ErrAckTooHigh) && !errors.Is(err, ErrAckBackwards) {
					t.Fatalf("Ack: %v", err)
				}
			case 2:
				s.Ack(s.sent)
			case 3:
				s.Received("message")
			case 4:
				s.Suspend()
			case 5:
				if r, _, ok := s.Resumption(); ok {
					s.Resumed(Resumed{PrevID: r.PrevID, H: s.acked + uint32(i%3)})
				}
			case 6:
				s.Failed(Failed{H: s.acked + 1, HasH: i%2 == 0})
			case 7:
				s.Enabled(Enabled{ID: "y", Resume: i%2 == 0})
			}
			total := 0
			for j, u := range s.queue {
				total += len(u.Raw)
				if j > 0 && u.Seq != s.queue[j-1].Seq+1 {
					t.Fatalf("queue not consecutive: %v", seqs(s.queue))
				}
			}
			if total != s.queueBytes || total > max {
				t.Fatalf("queue bytes %d, recorded %d, bound %d", total, s.queueBytes, max)
			}
			if n := len(s.queue); n > 0 && s.queue[n-1].Seq != s.sent {
				t.Fatalf("last queued %d, sent %d", s.queue[n-1].Seq, s.sent)
			}
			if uint32(len(s.queue)) > s.sent-s.acked {
				t.Fatalf("%d queued but only %d unacknowledged", len(s.queue), s.sent-s.acked)
			}
		}
	})
}

// FuzzScannerAgainstDecoder checks that the Scanner finds the top-level
// elements encoding/xml finds, in a well-formed stream: whatever a peer
// puts inside a stanza (element names, attribute values, text, CDATA,
// comments) must not make it see a top-level element where there is none,
// or miss one, or the stream management counts would drift.
func FuzzScannerAgainstDecoder(f *testing.F) {
	f.Add([]byte(`<message><stream xmlns='x'/><iq/></message><presence/>`))
	f.Add([]byte(`<message a='&apos;>'><x:stream xmlns:x='y'><message/></x:stream></message>`))
	f.Add([]byte(`<iq><![CDATA[</iq><iq>]]></iq><!-- <iq> --><r xmlns='urn:xmpp:sm:3'/>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		stream := "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>" + string(b) + "</stream:stream>"
		d := xml.NewDecoder(strings.NewReader(stream))
		var want []string
		depth := 0
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				return // not well-formed: the session's decoder ends it
			}
			switch tok := tok.(type) {
			case xml.StartElement:
				depth++
				if depth == 2 {
					if tok.Name.Local == "stream" {
						return // a top-level element named stream: a restart
					}
					want = append(want, tok.Name.Local)
				}
			case xml.EndElement:
				depth--
			case xml.Directive:
				return // no directive in XMPP (the decoder refuses them)
			}
		}
		var got []string
		(&Scanner{}).Feed([]byte(stream), func(top Top) {
			got = append(got, string(localName(top.Name)))
		})
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("in %q\nthe Scanner found %q, encoding/xml %q", b, got, want)
		}
	})
}
