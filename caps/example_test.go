package caps_test

import (
	"encoding/xml"
	"fmt"
	"os"

	"github.com/psakit/psakit/caps"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
)

// The simple generation example of XEP-0115 §5.2.
func ExampleVer() {
	ver, err := caps.Ver(disco.Info{
		Identity: []info.Identity{{Category: "client", Type: "pc", Name: "Exodus 0.9.1"}},
		Features: []info.Feature{
			{Var: "http://jabber.org/protocol/caps"},
			{Var: "http://jabber.org/protocol/disco#info"},
			{Var: "http://jabber.org/protocol/disco#items"},
			{Var: "http://jabber.org/protocol/muc"},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ver)
	// Output: QgayPKawpkPSDYmwT/WM94uAlu0=
}

func ExampleVerify() {
	in := disco.Info{
		Identity: []info.Identity{{Category: "client", Type: "pc"}},
		Features: []info.Feature{{Var: "urn:xmpp:ping"}, {Var: "urn:xmpp:ping"}},
	}
	err := caps.Verify(in, "sha-1", "some-ver")
	fmt.Println(err)
	// Output: caps: duplicate feature "urn:xmpp:ping"
}

func ExampleNewAdvertiser() {
	adv, err := caps.NewAdvertiser("https://example.net/mybot",
		caps.WithIdentity("client", "bot", "My bot", "en"),
		caps.WithFeatures("http://jabber.org/protocol/muc"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range adv.Features() {
		fmt.Println(f)
	}

	// The <c/> element for outgoing presence, e.g.
	// session.Send(ctx, stanza.Presence{}.Wrap(adv.TokenReader())).
	e := xml.NewEncoder(os.Stdout)
	if _, err := xmlstream.Copy(e, adv.TokenReader()); err != nil {
		fmt.Println(err)
		return
	}
	e.Flush()
	fmt.Println()
	// Output:
	// http://jabber.org/protocol/caps
	// http://jabber.org/protocol/disco#info
	// http://jabber.org/protocol/muc
	// urn:xmpp:ping
	// urn:xmpp:psa
	// <c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://example.net/mybot" ver="Klr4zoFdPxjZnE0RevRBZ18fxqA="></c>
}
