package e2e_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/psa"
	"github.com/psakit/psakit/roster"
)

// boshClient is an XMPP client over BOSH (XEP-0124, XEP-0206), as much of
// one as the tests need: log in, bind, send presence, then hold a request
// open at all times (poll) or stop doing so (pause) at will.
type boshClient struct {
	url, domain string
	hc          http.Client
	sid         string
	jid         string // the bound full JID

	mu    sync.Mutex
	rid   uint64 // the last rid used
	retry uint64 // a rid whose request failed, to use again; 0 for none

	stop context.CancelFunc
	done chan struct{}
}

// boshWait is the longest the server holds a request (seconds): a client that
// stops polling leaves the server with no request at most this long after.
const boshWait = 1

// boshBody is the body element of a BOSH response.
type boshBody struct {
	SID   string `xml:"sid,attr"`
	Type  string `xml:"type,attr"`
	Inner string `xml:",innerxml"`
}

// dialBOSH logs user in on srv over BOSH, binds resource and sends an
// available presence with children.
func dialBOSH(ctx context.Context, t *testing.T, srv *prosodytest.Server, user, resource, children string) *boshClient {
	t.Helper()
	c := &boshClient{url: srv.BOSHURL, domain: srv.Domain, rid: 1_000_000}
	t.Cleanup(c.close)
	b, err := c.post(ctx, fmt.Sprintf(` content='text/xml; charset=utf-8' hold='1' to='%s' ver='1.6' wait='%d' xml:lang='en' xmpp:version='1.0'`, srv.Domain, boshWait), "")
	if err != nil || b.SID == "" {
		t.Fatalf("BOSH session: %+v, %v", b, err)
	}
	c.sid = b.SID
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pw))
	steps := []struct{ attrs, payload, want string }{
		{"", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + plain + "</auth>", "<success"},
		{fmt.Sprintf(" to='%s' xml:lang='en' xmpp:restart='true'", srv.Domain), "", "urn:ietf:params:xml:ns:xmpp-bind"},
		{"", "<iq type='set' id='bind' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>", "<jid>"},
	}
	for _, s := range steps {
		b, err := c.post(ctx, s.attrs, s.payload)
		if err != nil || !strings.Contains(b.Inner, s.want) {
			t.Fatalf("BOSH login of %s, step %q: %+v, %v", user, s.want, b, err)
		}
		if i := strings.Index(b.Inner, "<jid>"); i >= 0 {
			c.jid, _, _ = strings.Cut(b.Inner[i+len("<jid>"):], "<")
		}
	}
	if _, err := c.post(ctx, "", "<presence xmlns='jabber:client'>"+children+"</presence>"); err != nil {
		t.Fatalf("BOSH presence of %s: %v", user, err)
	}
	return c
}

// post sends one request with the session's rid and sid, attrs added to the
// body element, and returns the response body.
func (c *boshClient) post(ctx context.Context, attrs, payload string) (boshBody, error) {
	// Request ids must have no gap (XEP-0124 §14): a request that failed,
	// abandoned by pause included, is made again with its rid, which the
	// server takes as new or, if it got it, as a repeat.
	c.mu.Lock()
	rid := c.retry
	if rid == 0 {
		c.rid++
		rid = c.rid
	}
	c.retry = 0
	c.mu.Unlock()
	sid := ""
	if c.sid != "" {
		sid = fmt.Sprintf(" sid='%s'", c.sid)
	}
	req := fmt.Sprintf("<body rid='%d'%s%s xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'>%s</body>", rid, sid, attrs, payload)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(req))
	if err != nil {
		return boshBody{}, err
	}
	r.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := c.hc.Do(r)
	if err != nil {
		c.mu.Lock()
		c.retry = rid
		c.mu.Unlock()
		return boshBody{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return boshBody{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return boshBody{}, fmt.Errorf("BOSH: HTTP %s: %s", resp.Status, data)
	}
	var b boshBody
	if err := xml.NewDecoder(bytes.NewReader(data)).Decode(&b); err != nil {
		return boshBody{}, fmt.Errorf("BOSH response %q: %w", data, err)
	}
	if b.Type == "terminate" {
		return b, fmt.Errorf("BOSH: the server ended the session: %s", data)
	}
	return b, nil
}

// poll keeps a request open at the server until pause is called.
func (c *boshClient) poll() {
	ctx, cancel := context.WithCancel(context.Background())
	c.stop, c.done = cancel, make(chan struct{})
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			if _, err := c.post(ctx, "", ""); err != nil && !errors.Is(err, context.Canceled) {
				return
			}
		}
	}()
}

// pause stops polling: the request held at the server is abandoned, and no
// new one is made.
func (c *boshClient) pause() {
	if c.stop != nil {
		c.stop()
		<-c.done
		c.stop = nil
	}
}

// close pauses, then ends the session if it still runs.
func (c *boshClient) close() {
	c.pause()
	if c.sid != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = c.post(ctx, " type='terminate'", "<presence type='unavailable' xmlns='jabber:client'/>")
	}
	c.hc.CloseIdleConnections()
}

// A contact on BOSH whose client stops holding a request open is paused:
// mod_psa annotates her presence connection-paused for her contacts, clears
// the annotation when she polls again, and Prosody's BOSH timeout makes her
// unavailable in the end.
func TestBOSHPause(t *testing.T) {
	t.Parallel()
	n := shakespeare(t, func(mont, _ *prosodytest.Spec) {
		mont.BOSH = true
		mont.PSAOptions["psa_bosh_pause_after"] = "1"
		mont.ExtraConfig = "bosh_max_inactivity = 5"
	})
	ctx := testContext(t, 60*time.Second)
	mont := n.Server(montague)

	rec := newRecorder()
	romeo := dial(ctx, t, mont, "romeo", "lane", rec)
	_ = romeo
	benvolio := dialBOSH(ctx, t, mont, "benvolio", "street", "<status>He ran this way</status>")
	benvolio.poll()
	rec.expect(ctx, t, "benvolio available", rosterEvent(roster.EventAvailable, benvolio.jid))

	paused := time.Now()
	benvolio.pause()
	e := rec.expect(ctx, t, "benvolio paused", marked(roster.EventStale, benvolio.jid, psa.ConnectionPaused, montague))
	timing(t, "BOSH client stops polling -> stale event", e.at.Sub(paused))
	if r := resource(t, romeo, benvolio.jid); r.Fresh() || r.StatusText() != "He ran this way" {
		t.Errorf("paused resource: fresh=%v status %q", r.Fresh(), r.StatusText())
	}

	resumed := time.Now()
	benvolio.poll()
	e = rec.expect(ctx, t, "benvolio restored", marked(roster.EventRestored, benvolio.jid, psa.ConnectionPaused, montague))
	timing(t, "BOSH client polls again -> restored event", e.at.Sub(resumed))

	dropped := time.Now()
	benvolio.pause()
	rec.expect(ctx, t, "benvolio paused again", marked(roster.EventStale, benvolio.jid, psa.ConnectionPaused, montague))
	e = rec.expect(ctx, t, "benvolio unavailable after the BOSH timeout", rosterEvent(roster.EventUnavailable, benvolio.jid))
	timing(t, "BOSH client gone -> unavailable (bosh_max_inactivity 5s)", e.at.Sub(dropped))
}
