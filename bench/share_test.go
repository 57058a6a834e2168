package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
	"github.com/psakit/psakit/internal/livemodel"
	"github.com/psakit/psakit/internal/xmltok"
	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/roster"
)

// recorder tokenizes a population's stream into stanzas whose tokens are
// held in memory, a window at a time, as a mellium handler receives them:
// the start element, then the rest of the stanza up to its end element.
type recorder struct {
	pop  *Population
	mix  Mix
	data []byte // the last window's stanzas
	buf  bytes.Buffer
	recs []recorded
}

type recorded struct {
	start xml.StartElement
	toks  []xml.Token
}

// next generates n stanzas of the population's stream (as Generate does)
// and returns their tokens.
func (r *recorder) next(n int) ([]recorded, error) {
	r.data = r.data[:0]
	for range n {
		r.data = r.pop.next(r.data, &r.mix, mucShare)
	}
	r.buf.Reset()
	r.buf.WriteString("<stream xmlns='jabber:client'>")
	r.buf.Write(r.data)
	r.buf.WriteString("</stream>")
	d := xml.NewDecoder(&r.buf)
	if _, err := d.Token(); err != nil {
		return nil, err
	}
	for i := range n {
		if i == len(r.recs) {
			r.recs = append(r.recs, recorded{})
		}
		rec := &r.recs[i]
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			return nil, fmt.Errorf("stanza %d: got %T", i, tok)
		}
		rec.start, rec.toks = start.Copy(), rec.toks[:0]
		for depth := 0; depth >= 0; {
			tok, err := d.Token()
			if err != nil {
				return nil, xmltok.UnexpectedEOF(err)
			}
			rec.toks = append(rec.toks, xml.CopyToken(tok))
			switch tok.(type) {
			case xml.StartElement:
				depth++
			case xml.EndElement:
				depth--
			}
		}
	}
	return r.recs[:n], nil
}

// handlerWithoutWriter is the reader and writer of a mellium handler, for
// handlers that only read.
type handlerWithoutWriter struct {
	xml.TokenReader
	xmlstream.Encoder
}

// shareWindow is the number of stanzas tokenized, with the timer stopped,
// before their tokens are handed to the part measured: few enough that the
// tokens are still in the cache, as when mellium has just read them.
const shareWindow = 256

// BenchmarkShare measures psakit's own share of a stanza of BenchmarkStream's
// stream, without the network, mellium and the tokenizer: the tokens of each
// window of 256 stanzas are read into memory with the timer stopped, then
// handed to the part measured. This is what the stream's psakit minus
// mellium-drain measures, without the noise of the tokenizer's 9 µs per
// stanza around it, so that a change of a tenth of a microsecond shows.
//
//   - part=decode: presence.Decoder, reused as the client does;
//   - part=tracker: the Tracker's handler, as in the stream: decoding, the
//     roster (the stream's 20,000 contacts) and rooms models, the event queue
//     and a no-op callback.
//
// ns/op and allocs/op are per stanza. Reading the recorded tokens costs the
// harness about 15 ns per stanza. Most of the wall time goes to generating
// and tokenizing the stream with the timer stopped: run it with a fixed
// -benchtime (scripts/bench.sh uses 200000x).
func BenchmarkShare(b *testing.B) {
	for _, part := range []struct {
		name    string
		handler func(*testing.B, *Population) func(r *xmltok.Replayer, start *xml.StartElement)
	}{
		{"decode", func(b *testing.B, _ *Population) func(*xmltok.Replayer, *xml.StartElement) {
			var d presence.Decoder
			return func(r *xmltok.Replayer, start *xml.StartElement) {
				if _, err := d.DecodeElement(r, *start); err != nil && !errors.Is(err, presence.ErrInvalidJID) {
					b.Fatal(err)
				}
			}
		}},
		{"tracker", func(b *testing.B, pop *Population) func(*xmltok.Replayer, *xml.StartElement) {
			t, err := client.NewTracker(jid.MustParse(Account),
				client.WithVerify(client.VerifyOff, 0),
				client.OnRoster(func(roster.Event) {}))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { t.Close() })
			bares := pop.RosterJIDs()
			items := make([]roster.Item, len(bares))
			for i, s := range bares {
				items[i] = roster.Item{JID: jid.MustParse(s), Subscription: roster.SubscriptionBoth}
			}
			livemodel.Roster(t).SetItems("v1", items)
			h := t.Handler(nil)
			return func(r *xmltok.Replayer, start *xml.StartElement) {
				if err := h.HandleXMPP(handlerWithoutWriter{TokenReader: r}, start); err != nil {
					b.Fatal(err)
				}
			}
		}},
	} {
		b.Run("part="+part.name, func(b *testing.B) {
			pop := NewPopulation(streamUsers, 2, 1)
			handle := part.handler(b, pop)
			rec := &recorder{pop: pop}
			r := new(xmltok.Replayer)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				b.StopTimer()
				recs, err := rec.next(min(shareWindow, b.N-done))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for i := range recs {
					r.Reset(recs[i].toks)
					handle(r, &recs[i].start)
				}
				done += len(recs)
			}
		})
	}
}

// TestRecorder checks BenchmarkShare's input: the recorder generates the
// same stanzas as Generate, in windows, and hands each over whole, from its
// start element to its end element.
func TestRecorder(t *testing.T) {
	want := NewPopulation(300, 2, 3).Generate(500)
	rec := &recorder{pop: NewPopulation(300, 2, 3)}
	var got []byte
	var d presence.Decoder
	n := 0
	for _, size := range []int{1, 256, 243} {
		recs, err := rec.next(size)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != size {
			t.Fatalf("window of %d: got %d stanzas", size, len(recs))
		}
		got = append(got, rec.data...)
		for i := range recs {
			r := &recs[i]
			last, ok := r.toks[len(r.toks)-1].(xml.EndElement)
			if r.start.Name.Local != "presence" || !ok || last.Name != r.start.Name {
				t.Fatalf("stanza %d: %v … %v", n, r.start.Name, r.toks[len(r.toks)-1])
			}
			if _, err := d.DecodeElement(xmltok.NewReplayer(r.toks), r.start); err != nil {
				t.Fatalf("stanza %d: %v", n, err)
			}
			n++
		}
	}
	// The windows together are the stream, without its end marker.
	if !bytes.Equal(appendEnd(got), want.Data) {
		t.Errorf("the windows differ from Generate's stream:\n%.300s\n%.300s", got, want.Data)
	}
}
