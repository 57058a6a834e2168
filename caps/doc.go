// Package caps implements XEP-0115 Entity Capabilities: the verification
// string ("ver") that lets peers cache what an entity supports, the <c/>
// element that carries it in presence, and the disco#info answer behind it.
//
// An Advertiser holds what an account advertises. Register its disco#info
// handler on the session's mux and put its <c/> element in every available
// presence, MUC joins included:
//
//	adv, err := caps.NewAdvertiser("", caps.WithIdentity("client", "bot", "My bot", ""))
//	if err != nil {
//		return err
//	}
//	m := mux.New(stanza.NSClient, adv.HandleDiscoInfo(), ping.Handle())
//	go session.Serve(m)
//	err = session.Send(ctx, stanza.Presence{}.Wrap(adv.TokenReader()))
//
// To check the caps of a peer, fetch the disco#info of NODE#VER from a
// goroutine (never from a handler: mellium handlers run on the read loop) and
// verify it before caching it for every entity that advertises that ver:
//
//	// node, hash, ver: the attributes of the peer's <c/> element
//	in, err := disco.GetInfo(ctx, node+"#"+ver, peer, session)
//	if err == nil {
//		err = caps.Verify(in, hash, ver)
//	}
//
// Ver and VerHash replace disco.Info.Hash of mellium v0.22, which sorts its
// argument in place, does not sort forms by FORM_TYPE, accepts ill-formed
// answers and panics on an empty form.
package caps
