package client

import (
	"context"
	"encoding/xml"
	"io"

	"mellium.im/xmlstream"

	"github.com/psakit/psakit/internal/xmltok"
)

// SendIQ sends an IQ request (type get or set) on the current session and
// waits for its answer, as mellium's Session.SendIQ does: the answer, a
// result or an error, is returned whole (its start element first), and the
// caller should close it. It returns ErrNotConnected while the client is
// reconnecting, and ctx's error when ctx ends first.
//
// Unlike Session().SendIQ, it lets the remote checks (WithRemoteCheck) see
// the answer: a request to another domain without an id gets a random one,
// and when our own server answers it with a bounce saying that it cannot
// reach that domain, the domain's entries are marked at once.
func (c *Client) SendIQ(ctx context.Context, r xml.TokenReader) (xmlstream.TokenReadCloser, error) {
	s := c.Session()
	if s == nil {
		return nil, ErrNotConnected
	}
	rc := c.t.remote
	resp, err := s.SendIQ(ctx, rc.outgoing(r))
	if err != nil || resp == nil || rc.r == nil {
		return resp, err
	}
	// Read the answer, whose size the stanza limit bounds, to look at it
	// before the caller does.
	toks, err := xmlstream.ReadAll(resp)
	_ = resp.Close()
	if err != nil {
		return nil, err
	}
	if len(toks) > 0 {
		if start, ok := toks[0].(xml.StartElement); ok {
			inner := xmltok.NewReplayer(toks[1:])
			if _, err := rc.answer(struct {
				xml.TokenReader
				xmlstream.Encoder
			}{inner, nil}, &start); err != nil {
				return nil, err
			}
		}
	}
	return struct {
		xml.TokenReader
		io.Closer
	}{xmltok.NewReplayer(toks), nopCloser{}}, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
