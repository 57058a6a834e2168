package caps_test

import (
	"cmp"
	"crypto"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/psakit/psakit/caps"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
)

// fuzzInfo describes a disco.Info in plain slices, so that the fuzz target can
// build it several times, permute it and hash it without form.Data.
type fuzzInfo struct {
	ids   []info.Identity
	feats []string
	forms [][]fuzzField
}

type fuzzField struct {
	typ  form.FieldType
	v    string // var; always "" for fixed fields
	vals []string
}

// decodeFuzz turns bytes into a fuzzInfo. Strings come from a tiny alphabet
// that includes the separators of S, so that duplicates, FORM_TYPE fields and
// ambiguous strings are frequent.
func decodeFuzz(data []byte) fuzzInfo {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	alphabet := []string{"a", "b", "/", "<", "é"}
	str := func() string {
		var s strings.Builder
		for n := next() % 4; n > 0; n-- {
			s.WriteString(alphabet[int(next())%len(alphabet)])
		}
		return s.String()
	}
	types := []form.FieldType{form.TypeHidden, form.TypeText, form.TypeTextMulti, form.TypeFixed}

	var fi fuzzInfo
	for ops := 0; len(data) > 0 && ops < 64; ops++ {
		switch next() % 5 {
		case 0:
			fi.ids = append(fi.ids, info.Identity{Category: str(), Type: str(), Lang: str(), Name: str()})
		case 1:
			fi.feats = append(fi.feats, str())
		case 2:
			fi.forms = append(fi.forms, nil)
		default:
			if len(fi.forms) == 0 {
				fi.forms = append(fi.forms, nil)
			}
			f := fuzzField{typ: types[int(next())%len(types)]}
			if f.typ != form.TypeFixed {
				if next()%3 == 0 {
					f.v = "FORM_TYPE"
				} else {
					f.v = str()
				}
			}
			for n := next() % 3; n > 0; n-- {
				f.vals = append(f.vals, str())
			}
			last := &fi.forms[len(fi.forms)-1]
			*last = append(*last, f)
		}
	}
	return fi
}

// build returns a new disco.Info for fi.
func (fi fuzzInfo) build() disco.Info {
	in := disco.Info{Identity: slices.Clone(fi.ids), Features: features(fi.feats...)}
	for _, fields := range fi.forms {
		var ff []form.Field
		for _, f := range fields {
			var opts []form.Option
			for _, v := range f.vals {
				opts = append(opts, form.Value(v))
			}
			switch f.typ {
			case form.TypeHidden:
				ff = append(ff, form.Hidden(f.v, opts...))
			case form.TypeText:
				ff = append(ff, form.Text(f.v, opts...))
			case form.TypeTextMulti:
				ff = append(ff, form.TextMulti(f.v, opts...))
			case form.TypeListMulti:
				ff = append(ff, form.ListMulti(f.v, opts...))
			case form.TypeFixed:
				ff = append(ff, form.Fixed(opts...))
			}
		}
		in.Form = append(in.Form, *form.New(ff...))
	}
	return in
}

// permute returns a deep copy of fi with every list shuffled by r.
func (fi fuzzInfo) permute(r *rand.Rand) fuzzInfo {
	shuffle := func(n int, swap func(i, j int)) { r.Shuffle(n, swap) }
	p := fuzzInfo{ids: slices.Clone(fi.ids), feats: slices.Clone(fi.feats)}
	shuffle(len(p.ids), func(i, j int) { p.ids[i], p.ids[j] = p.ids[j], p.ids[i] })
	shuffle(len(p.feats), func(i, j int) { p.feats[i], p.feats[j] = p.feats[j], p.feats[i] })
	for _, fields := range fi.forms {
		fields = slices.Clone(fields)
		for k := range fields {
			vals := slices.Clone(fields[k].vals)
			shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
			fields[k].vals = vals
		}
		shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		p.forms = append(p.forms, fields)
	}
	shuffle(len(p.forms), func(i, j int) { p.forms[i], p.forms[j] = p.forms[j], p.forms[i] })
	return p
}

// referenceS is a plain transcription of XEP-0115 §5.1 and §5.4 on fi, the
// oracle for Ver. ok is false if fi is ill-formed.
func referenceS(fi fuzzInfo) (s string, ok bool) {
	var b strings.Builder
	ids := make([][]string, 0, len(fi.ids))
	for _, id := range fi.ids {
		ids = append(ids, []string{id.Category, id.Type, id.Lang, id.Name})
	}
	slices.SortFunc(ids, slices.Compare)
	for i, id := range ids {
		if i > 0 && slices.Equal(ids[i-1], id) {
			return "", false
		}
		b.WriteString(strings.Join(id, "/") + "<")
	}
	feats := slices.Sorted(slices.Values(fi.feats))
	for i, f := range feats {
		if i > 0 && feats[i-1] == f {
			return "", false
		}
		b.WriteString(f + "<")
	}

	type typed struct {
		typ    string
		fields []fuzzField
	}
	var forms []typed
	for _, fields := range fi.forms {
		var fts []fuzzField
		var rest []fuzzField
		for _, f := range fields {
			if f.v == "FORM_TYPE" {
				fts = append(fts, f)
			} else {
				rest = append(rest, f)
			}
		}
		switch {
		case len(fts) == 0:
			continue
		case len(fts) > 1:
			return "", false
		case fts[0].typ != form.TypeHidden:
			continue
		case len(slices.Compact(slices.Sorted(slices.Values(fts[0].vals)))) != 1:
			return "", false
		}
		forms = append(forms, typed{fts[0].vals[0], rest})
	}
	slices.SortFunc(forms, func(a, b typed) int { return cmp.Compare(a.typ, b.typ) })
	for i, f := range forms {
		if i > 0 && forms[i-1].typ == f.typ {
			return "", false
		}
		b.WriteString(f.typ + "<")
		slices.SortFunc(f.fields, func(a, b fuzzField) int { return cmp.Compare(a.v, b.v) })
		for k, fd := range f.fields {
			if k > 0 && f.fields[k-1].v == fd.v {
				return "", false
			}
			b.WriteString(fd.v + "<")
			for _, v := range slices.Sorted(slices.Values(fd.vals)) {
				b.WriteString(v + "<")
			}
		}
	}
	return b.String(), true
}

// errClass returns the sentinel error that err wraps.
func errClass(err error) error {
	for _, e := range []error{
		caps.ErrDuplicateIdentity, caps.ErrDuplicateFeature, caps.ErrDuplicateFormType,
		caps.ErrDuplicateField, caps.ErrFormType,
	} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

func FuzzVer(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x02\x01\x02\x03\x01\x01\x03\x01\x02\x03\x00\x01\x01\x01\x01"))
	f.Add([]byte("\x02\x03\x00\x00\x01\x01\x03\x01\x01\x03\x01\x04\x01\x03\x01\x02"))
	f.Add([]byte("\x03\x00\x00\x01\x00\x03\x01\x01\x03\x00\x00\x01\x00\x03\x01\x01"))
	f.Add([]byte("\x01\x02\x00\x01\x01\x02\x00\x01\x00\x01\x02\x03\x04\x00\x01\x02\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fi := decodeFuzz(data)
		in := fi.build()

		ver, err := caps.Ver(in)
		if (err == nil) == (ver == "") {
			t.Fatalf("Ver = %q, %v", ver, err)
		}
		if err != nil && errClass(err) == err {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if again, err2 := caps.Ver(in); again != ver || errClass(err2) != errClass(err) {
			t.Fatalf("not deterministic: %q, %v then %q, %v", ver, err, again, err2)
		}
		if byHash, err2 := caps.VerHash(in, crypto.SHA1); byHash != ver || errClass(err2) != errClass(err) {
			t.Fatalf("VerHash(SHA1) = %q, %v; Ver = %q, %v", byHash, err2, ver, err)
		}
		if want := fi.build(); !reflect.DeepEqual(in, want) {
			t.Fatalf("Ver modified its argument:\n got %+v\nwant %+v", in, want)
		}

		h := fnv.New64a()
		h.Write(data)
		perm := fi.permute(rand.New(rand.NewPCG(h.Sum64(), 0)))
		if pv, perr := caps.Ver(perm.build()); pv != ver || errClass(perr) != errClass(err) {
			t.Fatalf("permuted input: Ver = %q, %v; want %q, %v", pv, perr, ver, err)
		}

		s, ok := referenceS(fi)
		if ok != (err == nil) {
			t.Fatalf("Ver error = %v, reference well-formed = %v (S %q)", err, ok, s)
		}
		if ok {
			sum := sha1.Sum([]byte(s))
			if want := base64.StdEncoding.EncodeToString(sum[:]); ver != want {
				t.Fatalf("Ver = %q, want %q for S %q", ver, want, s)
			}
		}
	})
}

// clientInfo is the disco#info of a typical client: one identity and a dozen
// features, unsorted.
func clientInfo() disco.Info {
	return disco.Info{
		Identity: []info.Identity{{Category: "client", Type: "pc", Name: "psakit"}},
		Features: features(
			"urn:xmpp:psa",
			"http://jabber.org/protocol/disco#info",
			"urn:xmpp:ping",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/muc",
			"urn:xmpp:receipts",
			"http://jabber.org/protocol/chatstates",
			"urn:xmpp:time",
			"jabber:iq:version",
			"urn:xmpp:message-correct:0",
			"http://jabber.org/protocol/disco#items",
			"urn:xmpp:avatar:metadata+notify",
		),
	}
}

func BenchmarkVer(b *testing.B) {
	for _, bc := range []struct {
		name string
		info disco.Info
	}{
		{"client", clientInfo()},
		{"form", psiInfo()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := caps.Ver(bc.info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestVerLarge checks inputs larger than the buffers Ver keeps on the stack
// against the reference.
func TestVerLarge(t *testing.T) {
	var fi fuzzInfo
	for i := range 40 {
		fi.ids = append(fi.ids, info.Identity{Category: "client", Type: "pc", Lang: fmt.Sprint(i % 7), Name: fmt.Sprint(i)})
	}
	for i := range 100 {
		fi.feats = append(fi.feats, fmt.Sprintf("urn:example:feature:%03d:%s", 99-i, strings.Repeat("x", i)))
	}
	for f := range 6 {
		fields := []fuzzField{{typ: form.TypeHidden, v: "FORM_TYPE", vals: []string{fmt.Sprint("urn:example:form:", 5-f)}}}
		for i := range 20 {
			var vals []string
			for k := range 20 {
				vals = append(vals, fmt.Sprint(19-k))
			}
			fields = append(fields, fuzzField{typ: form.TypeListMulti, v: fmt.Sprint("field", 19-i), vals: vals})
		}
		fi.forms = append(fi.forms, fields)
	}
	s, ok := referenceS(fi)
	if !ok {
		t.Fatal("reference: ill-formed")
	}
	sum := sha1.Sum([]byte(s))
	want := base64.StdEncoding.EncodeToString(sum[:])
	if got, err := caps.Ver(fi.build()); err != nil || got != want {
		t.Errorf("Ver = %q, %v; want %q (S has %d bytes)", got, err, want, len(s))
	}
}
