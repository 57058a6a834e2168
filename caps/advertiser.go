package caps

import (
	"encoding/xml"
	"errors"
	"fmt"
	"slices"

	"mellium.im/xmlstream"
	xmppcrypto "mellium.im/xmpp/crypto"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/psakit/psakit/psa"
)

// DefaultNode is the caps node of psakit, used by NewAdvertiser when its node
// argument is empty.
const DefaultNode = "https://github.com/psakit/psakit"

// Errors returned by NewAdvertiser for options that cannot be advertised.
var (
	// ErrInvalidIdentity: an identity without a category or a type
	// (XEP-0030 requires both).
	ErrInvalidIdentity = errors.New("caps: identity needs a category and a type")
	// ErrInvalidFeature: an empty feature.
	ErrInvalidFeature = errors.New("caps: empty feature")
)

// An Option configures NewAdvertiser.
type Option func(*config)

type config struct {
	identities []info.Identity
	features   []string
	forms      []*form.Data
}

// WithIdentity adds a service discovery identity, such as ("client", "bot",
// "My bot", "en"); lang is the xml:lang of name and may be empty. It may be
// given several times, for example once per language of name. Without it the
// identity is client/bot "psakit".
func WithIdentity(category, typ, name, lang string) Option {
	id := info.Identity{Category: category, Type: typ, Name: name, Lang: lang}
	return func(c *config) { c.identities = append(c.identities, id) }
}

// WithFeatures adds features to advertise, beyond those every Advertiser has:
// http://jabber.org/protocol/caps, http://jabber.org/protocol/disco#info,
// urn:xmpp:ping and urn:xmpp:psa. Repeated features are advertised once.
func WithFeatures(features ...string) Option {
	features = slices.Clone(features)
	return func(c *config) { c.features = append(c.features, features...) }
}

// WithForm adds a XEP-0128 extended information form, such as XEP-0232
// software information. The form needs a FORM_TYPE field of type hidden with
// one non-empty value. NewAdvertiser keeps a copy of the form as it appears on
// the wire, of type result: mellium writes only the first non-empty value of
// single-valued fields and drops empty values, and the verification string is
// computed from what is sent, so that peers that rehash the disco#info answer
// find the same value.
func WithForm(f *form.Data) Option {
	return func(c *config) {
		if f != nil {
			c.forms = append(c.forms, f)
		}
	}
}

// An Advertiser holds the entity capabilities of an account: its identities
// and features, their verification string, the <c/> element for outgoing
// presence and the disco#info answer behind it. Create it with NewAdvertiser.
// It is immutable and safe for concurrent use, so one Advertiser can serve
// several sessions.
type Advertiser struct {
	node     string
	ver      string
	capsNode string // node#ver, the disco node of this ver
	ids      []info.Identity
	features []string     // sorted, unique
	forms    []*form.Data // as on the wire, never handed out
}

// NewAdvertiser returns an Advertiser for the caps node (a URI for the
// software, DefaultNode if empty) and the options. Its features always
// include http://jabber.org/protocol/caps, http://jabber.org/protocol/disco#info,
// urn:xmpp:ping and urn:xmpp:psa; answering pings is left to the ping handler
// of the session (mellium.im/xmpp/ping.Handle).
//
// It returns an error wrapping ErrInvalidIdentity or ErrInvalidFeature for
// empty values, ErrFormType for a form without a hidden FORM_TYPE, and the
// errors of Ver for duplicate identities or forms.
func NewAdvertiser(node string, opts ...Option) (*Advertiser, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if node == "" {
		node = DefaultNode
	}

	ids := slices.Clone(c.identities)
	if len(ids) == 0 {
		ids = []info.Identity{{Category: "client", Type: "bot", Name: "psakit"}}
	}
	for _, id := range ids {
		if id.Category == "" || id.Type == "" {
			return nil, fmt.Errorf("%w: %q/%q", ErrInvalidIdentity, id.Category, id.Type)
		}
	}
	slices.SortFunc(ids, func(a, b info.Identity) int { return compareIdentity(&a, &b) })

	features := append([]string{disco.NSCaps, disco.NSInfo, ping.NS, psa.NS}, c.features...)
	if slices.Contains(features, "") {
		return nil, ErrInvalidFeature
	}
	slices.Sort(features)
	features = slices.Compact(features)

	forms := make([]*form.Data, 0, len(c.forms))
	for _, f := range c.forms {
		// Check the form as given, then as sent: mellium sends only the
		// first value of FORM_TYPE and drops empty values.
		if err := checkFormType(f); err != nil {
			return nil, err
		}
		wire, err := decodeForm(f)
		if err != nil {
			return nil, err
		}
		if err := checkFormType(wire); err != nil {
			return nil, err
		}
		form.Result(wire)
		forms = append(forms, wire)
	}

	in := disco.Info{Identity: ids, Features: featureList(features)}
	for _, f := range forms {
		in.Form = append(in.Form, *f) // shares f's slices, but Ver only reads
	}
	ver, err := Ver(in)
	if err != nil {
		return nil, err
	}
	return &Advertiser{
		node:     node,
		ver:      ver,
		capsNode: node + "#" + ver,
		ids:      ids,
		features: features,
		forms:    forms,
	}, nil
}

func featureList(vars []string) []info.Feature {
	fs := make([]info.Feature, len(vars))
	for i, v := range vars {
		fs[i].Var = v
	}
	return fs
}

// checkFormType returns an error unless f has a hidden FORM_TYPE with one
// value.
func checkFormType(f *form.Data) error {
	_, ok, err := formType(f)
	if err == nil && !ok {
		err = fmt.Errorf("%w: form without a hidden FORM_TYPE field", ErrFormType)
	}
	return err
}

// decodeForm returns a new form decoded from the XML that f writes: a deep
// copy of f as peers see it.
func decodeForm(f *form.Data) (*form.Data, error) {
	d := new(form.Data)
	if err := xml.NewTokenDecoder(f.TokenReader()).Decode(d); err != nil {
		return nil, fmt.Errorf("caps: copying form: %w", err)
	}
	return d, nil
}

// Node returns the caps node, the node attribute of the <c/> element.
func (a *Advertiser) Node() string { return a.node }

// Ver returns the SHA-1 verification string, the ver attribute of the <c/>
// element.
func (a *Advertiser) Ver() string { return a.ver }

// Features returns the advertised features, sorted byte-wise. The slice is a
// copy.
func (a *Advertiser) Features() []string { return slices.Clone(a.features) }

// Info returns the disco#info answer that Ver hashes: identities and features
// sorted, and the forms. It is a deep copy that the caller may modify. Beware
// that disco.Info's own TokenReader and MarshalXML leave the forms out
// (mellium v0.22); HandleIQ writes them.
func (a *Advertiser) Info() disco.Info {
	in := disco.Info{Identity: slices.Clone(a.ids), Features: featureList(a.features)}
	for _, f := range a.forms {
		c, err := decodeForm(f)
		if err != nil {
			// NewAdvertiser decoded the same XML from the same code.
			panic("caps: re-decoding an advertised form: " + err.Error())
		}
		in.Form = append(in.Form, *c)
	}
	return in
}

// Caps returns the <c/> element as a disco.Caps, with hash sha-1.
func (a *Advertiser) Caps() disco.Caps {
	return disco.Caps{Hash: xmppcrypto.SHA1, Node: a.node, Ver: a.ver}
}

// TokenReader returns a new reader of the <c/> element for an outgoing
// presence:
//
//	<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='NODE' ver='VER'/>
//
// XEP-0115 asks for it in every available presence, MUC joins included.
func (a *Advertiser) TokenReader() xml.TokenReader {
	return a.Caps().TokenReader()
}

// HandleDiscoInfo returns a mux option that answers disco#info get requests
// with HandleIQ. Register ping.Handle (mellium.im/xmpp/ping) too, since
// urn:xmpp:ping is advertised. It cannot be combined with disco.Handle, which
// registers the same pattern (mux panics on duplicate registrations).
func (a *Advertiser) HandleDiscoInfo() mux.Option {
	return mux.IQ(stanza.GetIQ, xml.Name{Space: disco.NSInfo, Local: "query"}, a)
}

// HandleIQ implements mux.IQHandler for disco#info requests. For node "" and
// for NODE#VER it answers with the same identities, features and forms,
// echoing the node; for any other node it answers item-not-found. Other
// requests of type get or set get service-unavailable, and result and error
// IQs get no answer.
//
// Bad requests never make it return an error, as a handler error ends a
// mellium session; it only returns the error of writing the answer.
func (a *Advertiser) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	switch iq.Type {
	case stanza.GetIQ:
	case stanza.SetIQ:
		return replyError(iq, t, stanza.ServiceUnavailable)
	default:
		return nil // RFC 6120 §8.2.3: never answer a result or an error
	}
	if start == nil || start.Name != (xml.Name{Space: disco.NSInfo, Local: "query"}) {
		return replyError(iq, t, stanza.ServiceUnavailable)
	}
	var node string
	for _, at := range start.Attr {
		if at.Name == (xml.Name{Local: "node"}) {
			node = at.Value
			break
		}
	}
	if node != "" && node != a.capsNode {
		return replyError(iq, t, stanza.ItemNotFound)
	}
	_, err := xmlstream.Copy(t, iq.Result(a.query(node)))
	return err
}

// query returns a new reader of the disco#info <query/> answer for node.
func (a *Advertiser) query(node string) xml.TokenReader {
	payload := make([]xml.TokenReader, 0, len(a.ids)+len(a.features)+len(a.forms))
	for _, id := range a.ids {
		payload = append(payload, id.TokenReader())
	}
	for _, f := range a.features {
		payload = append(payload, info.Feature{Var: f}.TokenReader())
	}
	for _, f := range a.forms {
		payload = append(payload, f.TokenReader())
	}
	start := xml.StartElement{Name: xml.Name{Space: disco.NSInfo, Local: "query"}}
	if node != "" {
		start.Attr = []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}
	}
	return xmlstream.Wrap(xmlstream.MultiReader(payload...), start)
}

func replyError(iq stanza.IQ, t xmlstream.TokenWriter, cond stanza.Condition) error {
	_, err := xmlstream.Copy(t, iq.Error(stanza.Error{Type: stanza.Cancel, Condition: cond}))
	return err
}
