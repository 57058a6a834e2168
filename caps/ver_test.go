package caps_test

import (
	"crypto"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/psakit/psakit/caps"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
)

const (
	exodusVer = "QgayPKawpkPSDYmwT/WM94uAlu0="
	psiVer    = "q07IKJEyjvHSyhy//CH0CxmKi8w="
	// psiS is S of the complex example of XEP-0115 §5.3, with ASCII spaces
	// where the XEP's HTML shows no-break spaces.
	psiS = "client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<" +
		"http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<" +
		"http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<" +
		"urn:xmpp:dataforms:softwareinfo<" +
		"ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<"
)

func features(vars ...string) []info.Feature {
	fs := make([]info.Feature, len(vars))
	for i, v := range vars {
		fs[i].Var = v
	}
	return fs
}

// exodusInfo is the simple example of XEP-0115 §5.2.
func exodusInfo() disco.Info {
	return disco.Info{
		Identity: []info.Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		Features: features(
			"http://jabber.org/protocol/disco#info",
			"http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/caps",
		),
	}
}

func softwareInfo() *form.Data {
	return form.New(
		form.Result,
		form.Hidden("FORM_TYPE", form.Value("urn:xmpp:dataforms:softwareinfo")),
		// Values out of order on purpose: Ver sorts a copy.
		form.TextMulti("ip_version", form.Value("ipv6"), form.Value("ipv4")),
		form.Text("os", form.Value("Mac")),
		form.Text("os_version", form.Value("10.5.1")),
		form.Text("software", form.Value("Psi")),
		form.Text("software_version", form.Value("0.11")),
	)
}

// psiInfo is the complex example of XEP-0115 §5.3, with identities, features
// and fields out of order.
func psiInfo() disco.Info {
	return disco.Info{
		Identity: []info.Identity{
			{Category: "client", Type: "pc", Name: "Psi 0.11", Lang: "en"},
			{Category: "client", Type: "pc", Name: "Ψ 0.11", Lang: "el"},
		},
		Features: features(
			"http://jabber.org/protocol/muc",
			"http://jabber.org/protocol/caps",
			"http://jabber.org/protocol/disco#items",
			"http://jabber.org/protocol/disco#info",
		),
		Form: []form.Data{*softwareInfo()},
	}
}

// psiXML is the disco#info answer of the complex example, as on the wire.
const psiXML = `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version'><value>ipv4</value><value>ipv6</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software'><value>Psi</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>`

func TestVerXEPExamples(t *testing.T) {
	var decoded disco.Info
	if err := xml.Unmarshal([]byte(psiXML), &decoded); err != nil {
		t.Fatal(err)
	}
	reversed := psiInfo()
	slices.Reverse(reversed.Identity)
	slices.Reverse(reversed.Features)

	for _, tc := range []struct {
		name string
		info disco.Info
		want string
	}{
		{"simple", exodusInfo(), exodusVer},
		{"complex", psiInfo(), psiVer},
		{"complex reversed", reversed, psiVer},
		{"complex decoded from XML", decoded, psiVer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := caps.Ver(tc.info)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Ver = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestVerHash hashes the S string of the XEP, written out, with every named
// hash function, and checks the name mapping both ways.
func TestVerHash(t *testing.T) {
	for _, name := range []string{"md5", "sha-1", "sha-224", "sha-256", "sha-384", "sha-512"} {
		t.Run(name, func(t *testing.T) {
			h, err := caps.ParseHash(name)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := caps.HashName(h); err != nil || back != name {
				t.Fatalf("HashName(%v) = %q, %v; want %q", h, back, err, name)
			}
			d := h.New()
			d.Write([]byte(psiS))
			want := base64.StdEncoding.EncodeToString(d.Sum(nil))

			got, err := caps.VerHash(psiInfo(), h)
			if err != nil || got != want {
				t.Fatalf("VerHash = %q, %v; want %q", got, err, want)
			}
			if err := caps.Verify(psiInfo(), name, want); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestHashErrors(t *testing.T) {
	for _, name := range []string{"", "SHA-1", "sha1", "md2", "shake256", "sha3-256"} {
		if _, err := caps.ParseHash(name); !errors.Is(err, caps.ErrUnknownHash) {
			t.Errorf("ParseHash(%q) error = %v, want ErrUnknownHash", name, err)
		}
		if err := caps.Verify(exodusInfo(), name, exodusVer); !errors.Is(err, caps.ErrUnknownHash) {
			t.Errorf("Verify(%q) error = %v, want ErrUnknownHash", name, err)
		}
	}
	for _, tc := range []struct {
		h    crypto.Hash
		want error
	}{
		{crypto.SHA512_256, caps.ErrUnknownHash}, // linked, but no IANA name
		{crypto.MD4, caps.ErrHashUnavailable},    // not linked
		{0, caps.ErrHashUnavailable},
		{crypto.Hash(1000), caps.ErrHashUnavailable},
	} {
		if _, err := caps.VerHash(exodusInfo(), tc.h); !errors.Is(err, tc.want) {
			t.Errorf("VerHash(%v) error = %v, want %v", tc.h, err, tc.want)
		}
	}
	if _, err := caps.HashName(crypto.SHA3_256); !errors.Is(err, caps.ErrUnknownHash) {
		t.Errorf("HashName(SHA3_256) error = %v, want ErrUnknownHash", err)
	}
	if err := caps.Verify(exodusInfo(), "sha-1", psiVer); !errors.Is(err, caps.ErrMismatch) {
		t.Errorf("Verify with another ver: error = %v, want ErrMismatch", err)
	}
	if err := caps.Verify(exodusInfo(), "sha-1", exodusVer); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestVerFormOrder(t *testing.T) {
	other := form.New(
		form.Result,
		form.Hidden("FORM_TYPE", form.Value("urn:example:a")),
		form.Text("x", form.Value("1")),
	)
	in := psiInfo()
	in.Form = []form.Data{*softwareInfo(), *other}
	rev := psiInfo()
	rev.Form = []form.Data{*other, *softwareInfo()}

	v1, err := caps.Ver(in)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := caps.Ver(rev)
	if err != nil {
		t.Fatal(err)
	}
	if v1 != v2 {
		t.Errorf("forms in reverse order: Ver = %s, want %s", v2, v1)
	}
	if v1 == psiVer {
		t.Error("the second form did not change Ver")
	}
}

// TestVerDoesNotModify checks that Ver leaves its argument, slice order
// included, as it was (disco.Info.Hash sorts in place).
func TestVerDoesNotModify(t *testing.T) {
	for name, build := range map[string]func() disco.Info{"simple": exodusInfo, "complex": psiInfo} {
		t.Run(name, func(t *testing.T) {
			in := build()
			for range 2 {
				if _, err := caps.Ver(in); err != nil {
					t.Fatal(err)
				}
				if _, err := caps.VerHash(in, crypto.SHA256); err != nil {
					t.Fatal(err)
				}
			}
			if want := build(); !reflect.DeepEqual(in, want) {
				t.Errorf("Ver modified its argument:\n got %+v\nwant %+v", in, want)
			}
		})
	}
}

func TestVerIllFormed(t *testing.T) {
	hidden := func(typ string, fields ...form.Field) form.Data {
		return *form.New(append([]form.Field{form.Result, form.Hidden("FORM_TYPE", form.Value(typ))}, fields...)...)
	}
	pc := info.Identity{Category: "client", Type: "pc", Name: "x", Lang: "en"}
	for _, tc := range []struct {
		name string
		in   disco.Info
		want error
	}{
		{
			name: "duplicate identity",
			in:   disco.Info{Identity: []info.Identity{pc, {Category: "client", Type: "bot"}, pc}},
			want: caps.ErrDuplicateIdentity,
		},
		{
			name: "duplicate feature",
			in:   disco.Info{Features: features("b", "a", "b")},
			want: caps.ErrDuplicateFeature,
		},
		{
			name: "duplicate FORM_TYPE",
			in:   disco.Info{Form: []form.Data{hidden("urn:a"), hidden("urn:b"), hidden("urn:a")}},
			want: caps.ErrDuplicateFormType,
		},
		{
			name: "FORM_TYPE with different values",
			in: disco.Info{Form: []form.Data{*form.New(
				form.Hidden("FORM_TYPE", form.Value("urn:a"), form.Value("urn:b")),
			)}},
			want: caps.ErrFormType,
		},
		{
			name: "FORM_TYPE without value",
			in:   disco.Info{Form: []form.Data{*form.New(form.Hidden("FORM_TYPE"))}},
			want: caps.ErrFormType,
		},
		{
			name: "two FORM_TYPE fields",
			in: disco.Info{Form: []form.Data{*form.New(
				form.Hidden("FORM_TYPE", form.Value("urn:a")),
				form.Hidden("FORM_TYPE", form.Value("urn:a")),
			)}},
			want: caps.ErrFormType,
		},
		{
			name: "duplicate field",
			in:   disco.Info{Form: []form.Data{hidden("urn:a", form.Text("x"), form.Text("y"), form.Text("x"))}},
			want: caps.ErrDuplicateField,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ver, err := caps.Ver(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Ver = %q, %v; want error %v", ver, err, tc.want)
			}
			if ver != "" {
				t.Errorf("Ver returned %q with an error", ver)
			}
			if _, err := caps.VerHash(tc.in, crypto.SHA256); !errors.Is(err, tc.want) {
				t.Errorf("VerHash error = %v, want %v", err, tc.want)
			}
			if err := caps.Verify(tc.in, "sha-1", exodusVer); !errors.Is(err, tc.want) {
				t.Errorf("Verify error = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestVerIgnoredForms checks the forms that XEP-0115 §5.4 ignores, and inputs
// on which disco.Info.Hash panics.
func TestVerIgnoredForms(t *testing.T) {
	withForms := func(forms ...form.Data) disco.Info {
		in := exodusInfo()
		in.Form = forms
		return in
	}
	for _, tc := range []struct {
		name string
		in   disco.Info
		want string
	}{
		{"zero Info", disco.Info{}, "2jmj7l5rSw0yVb/vlWAYkK/YBwk="}, // SHA-1 of ""
		{"zero form", withForms(form.Data{}), exodusVer},
		{"empty form", withForms(*form.New()), exodusVer},
		{"no FORM_TYPE", withForms(*form.New(form.Text("os", form.Value("Mac")))), exodusVer},
		{
			"FORM_TYPE not hidden",
			withForms(*form.New(form.Text("FORM_TYPE", form.Value("urn:a")), form.Text("os", form.Value("Mac")))),
			exodusVer,
		},
		{
			"ignored forms are not checked",
			withForms(
				*form.New(form.Text("FORM_TYPE", form.Value("urn:a")), form.Text("x"), form.Text("x")),
				*form.New(form.Text("FORM_TYPE", form.Value("urn:a"))),
			),
			exodusVer,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := caps.Ver(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("Ver = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestVerEdgeCases(t *testing.T) {
	ver := func(in disco.Info) string {
		t.Helper()
		v, err := caps.Ver(in)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	sha1S := func(s string) string {
		d := crypto.SHA1.New()
		d.Write([]byte(s))
		return base64.StdEncoding.EncodeToString(d.Sum(nil))
	}
	form1 := func(fields ...form.Field) disco.Info {
		return disco.Info{Form: []form.Data{*form.New(fields...)}}
	}

	t.Run("same category/type/lang with different names", func(t *testing.T) {
		in := disco.Info{Identity: []info.Identity{
			{Category: "client", Type: "pc", Name: "b"},
			{Category: "client", Type: "pc", Name: "a"},
		}}
		if got, want := ver(in), sha1S("client/pc//a<client/pc//b<"); got != want {
			t.Errorf("Ver = %s, want %s", got, want)
		}
	})
	t.Run("identities sort by field, not by S", func(t *testing.T) {
		// As strings "a/b/..." < "a0/...", but category "a" < "a/": fields first.
		in := disco.Info{Identity: []info.Identity{
			{Category: "a/", Type: "t"},
			{Category: "a", Type: "0"},
		}}
		if got, want := ver(in), sha1S("a/0//<a//t//<"); got != want {
			t.Errorf("Ver = %s, want %s", got, want)
		}
	})
	t.Run("byte-wise order", func(t *testing.T) {
		in := disco.Info{Features: features("é", "z", "Z", "a")}
		if got, want := ver(in), sha1S("Z<a<z<é<"); got != want {
			t.Errorf("Ver = %s, want %s", got, want)
		}
	})
	t.Run("FORM_TYPE with repeated equal values", func(t *testing.T) {
		in := form1(form.Hidden("FORM_TYPE", form.Value("urn:a"), form.Value("urn:a")), form.Text("x", form.Value("1")))
		if got, want := ver(in), sha1S("urn:a<x<1<"); got != want {
			t.Errorf("Ver = %s, want %s", got, want)
		}
	})
	t.Run("empty and repeated values", func(t *testing.T) {
		in := form1(form.Hidden("FORM_TYPE", form.Value("")), form.ListMulti("x", form.Value("b"), form.Value(""), form.Value("b")), form.Text("e"))
		if got, want := ver(in), sha1S("<e<x<<b<b<"); got != want {
			t.Errorf("Ver = %s, want %s", got, want)
		}
	})
	t.Run("field types do not matter", func(t *testing.T) {
		in := form1(form.Hidden("FORM_TYPE", form.Value("urn:a")), form.Boolean("b", form.Value("true")), form.Fixed(form.Value("note")))
		if got, want := ver(in), sha1S("urn:a<<note<b<true<"); got != want {
			t.Errorf("Ver = %s, want %s", got, want)
		}
	})
}
