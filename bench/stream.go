package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/presence"
	"github.com/psakit/psakit/psa"
)

// The account every client logs in as, and the JIDs the streams use.
const (
	Domain      = "bench.example"
	AccountBare = "bench@" + Domain
	Resource    = "psakit"
	Account     = AccountBare + "/" + Resource
	// EndJID sends the last presence of every stream: a client that has
	// handled it has handled everything before it.
	EndJID = "end@" + Domain + "/end"
	// MUCService hosts the rooms of the MUC occupant presences.
	MUCService = "conference." + Domain
)

// Real clients' caps nodes and verification strings, as they appear on the
// wire.
var capsNodes = [...]struct{ node, ver string }{
	{"http://conversations.im", "wVW3JwD4+fiS6cwvOqFlUUbJ7ds="},
	{"https://gajim.org", "9RsRfLe+D9ZtBE8Y9aT7dqkXGuU="},
	{"https://dino.im", "M+0ONCrmY5RvA9rbyJZWzW6i0FM="},
	{"http://pidgin.im/", "DdnydQG7RGhP9E3k9Sf+b+bF0zo="},
	{"https://psakit.example", "QgayPKawpkPSDYmwT/WM94uAlu0="},
}

var statuses = [...]string{
	"",
	"On a call until 15:00, ping me later",
	"Working from home",
	"Out for lunch",
	"Travelling, replies may be slow",
	"Do not disturb: writing the quarterly report",
	"Available",
	"Au bureau jusqu'à 18h",
}

var shows = [...]presence.Show{presence.ShowNone, presence.ShowAway, presence.ShowChat, presence.ShowDND, presence.ShowXA}

var resourceNames = [...]string{"Conversations.Zx4u", "gajim.K8T2QX1P", "dino.f3a9c1d2", "phone", "laptop"}

// user is one contact of the population.
type user struct {
	bare   string // already in normal form, as servers send JIDs
	domain string
	photo  string
	res    []resource
}

type resource struct {
	full     string
	online   bool
	marker   int8 // who marked it: -1 nobody, 0 the contact's server, 1 the account's server
	show     uint8
	status   uint8
	priority int8
	caps     uint8
}

// Population is a roster: contacts spread over remote servers, each with one
// or more resources, and a few MUC rooms. It generates streams of presence
// stanzas about them, deterministic for a seed.
type Population struct {
	users   []user
	domains []string
	rooms   int
	nicks   int
	rng     *rand.Rand
	n       int // stanzas generated, for ids
}

// NewPopulation returns users contacts with resourcesPer resources each, on
// 50 remote servers (or fewer for a small population), and 10 rooms of 500
// occupants. About 2% of the contacts have a non-ASCII localpart, which a
// client must normalize the slow way.
func NewPopulation(users, resourcesPer int, seed uint64) *Population {
	p := &Population{rooms: 10, nicks: 500, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
	nd := min(50, max(1, users/20))
	for d := range nd {
		p.domains = append(p.domains, fmt.Sprintf("remote%d.example", d))
	}
	p.users = make([]user, users)
	for i := range p.users {
		u := &p.users[i]
		u.domain = p.domains[i%nd]
		local := "user" + strconv.Itoa(i)
		if i%50 == 7 {
			local = "zoë" + strconv.Itoa(i)
		}
		u.bare = local + "@" + u.domain
		u.photo = fmt.Sprintf("%040x", uint64(i)*0x9e3779b97f4a7c15)
		u.res = make([]resource, resourcesPer)
		for r := range u.res {
			u.res[r] = resource{
				full:   u.bare + "/" + resourceNames[(i+r)%len(resourceNames)],
				marker: -1,
				caps:   uint8((i + r) % len(capsNodes)),
			}
		}
	}
	return p
}

// RosterJIDs returns the bare JIDs of the contacts.
func (p *Population) RosterJIDs() []string {
	out := make([]string, len(p.users))
	for i, u := range p.users {
		out[i] = u.bare
	}
	return out
}

// Mix counts the stanzas of a stream by kind.
type Mix struct {
	Available   int // available presence with caps and no annotation
	Annotated   int // re-sent presence with a server-unavailable annotation
	Restored    int // re-sent presence with an empty annotation
	Unavailable int
	MUC         int // MUC occupant presence
	Delayed     int // presences that carry a delay element (any kind)
	Bytes       int
}

// Stream is a recorded stream of presence stanzas.
type Stream struct {
	Data []byte
	// Presences is the number of presence stanzas, the end marker included.
	Presences int
	Mix       Mix
}

// mucShare is the share of MUC occupant presence in Generate's stream.
const mucShare = 0.20

// Generate returns a stream of n presence stanzas followed by the end
// marker, a realistic mix: contacts coming online with caps (some with a
// delay stamp), changing their show and status, being annotated by their
// server or by the account's server and restored, going offline, and MUC
// occupant presence. Every resource starts offline.
func (p *Population) Generate(n int) *Stream {
	s := &Stream{Data: make([]byte, 0, n*420+256)}
	for range n {
		s.Data = p.next(s.Data, &s.Mix, mucShare)
	}
	s.Data = appendEnd(s.Data)
	s.Presences = n + 1
	s.Mix.Bytes = len(s.Data)
	return s
}

// GenerateOnline is Generate for a population whose resources are all online
// already (see Online): updates, annotations and restores only, no MUC.
func (p *Population) GenerateOnline(n int) *Stream {
	s := &Stream{Data: make([]byte, 0, n*420+256)}
	for range n {
		s.Data = p.nextOnline(s.Data, &s.Mix)
	}
	s.Data = appendEnd(s.Data)
	s.Presences = n + 1
	s.Mix.Bytes = len(s.Data)
	return s
}

// GenerateBurst returns the stream a server sends when it loses its link to
// the first n contacts' servers: each online resource of theirs re-sent with
// a server-unavailable annotation from the contact's own server, and the end
// marker.
func (p *Population) GenerateBurst(n int) *Stream {
	s := &Stream{}
	for i := range min(n, len(p.users)) {
		u := &p.users[i]
		for r := range u.res {
			rs := &u.res[r]
			if !rs.online {
				continue
			}
			s.Data = p.appendAvailable(s.Data, u, rs, true, u.domain, true)
			rs.marker = 0
			s.Mix.Annotated++
			s.Mix.Delayed++
			s.Presences++
		}
	}
	s.Data = appendEnd(s.Data)
	s.Presences++
	s.Mix.Bytes = len(s.Data)
	return s
}

func appendEnd(b []byte) []byte {
	return append(b, "<presence from='"+EndJID+"' to='"+Account+"'/>"...)
}

// Online marks every resource online with a first state, and calls f with
// the presence a client would have decoded for it, so that a model can be
// filled without going through XML.
func (p *Population) Online(f func(*presence.Presence)) {
	for i := range p.users {
		u := &p.users[i]
		for r := range u.res {
			rs := &u.res[r]
			p.randomState(rs)
			rs.online, rs.marker = true, -1
			if f != nil {
				pr := &presence.Presence{Lang: "en"}
				pr.From, _ = jid.Parse(rs.full)
				pr.State = p.state(rs)
				f(pr)
			}
		}
	}
}

func (p *Population) state(rs *resource) presence.State {
	st := presence.State{Show: shows[rs.show], Priority: rs.priority, Caps: presence.Caps{Hash: "sha-1", Node: capsNodes[rs.caps].node, Ver: capsNodes[rs.caps].ver}}
	if s := statuses[rs.status]; s != "" {
		st.Status = []presence.Text{{Lang: "en", Value: s}}
	}
	return st
}

func (p *Population) randomState(rs *resource) {
	rs.show = uint8(p.rng.IntN(len(shows)))
	rs.status = uint8(p.rng.IntN(len(statuses)))
	rs.priority = int8(p.rng.IntN(3) * 5)
}

// next appends one stanza of the general mix.
func (p *Population) next(b []byte, mix *Mix, mucShare float64) []byte {
	p.n++
	if p.rng.Float64() < mucShare {
		mix.MUC++
		return p.appendMUC(b)
	}
	u := &p.users[p.rng.IntN(len(p.users))]
	rs := &u.res[p.rng.IntN(len(u.res))]
	x := p.rng.Float64()
	switch {
	case !rs.online:
		p.randomState(rs)
		rs.online = true
		delayed := p.rng.IntN(10) < 3
		mix.Available++
		if delayed {
			mix.Delayed++
		}
		return p.appendAvailable(b, u, rs, delayed, "", false)
	case rs.marker >= 0:
		switch {
		case x < 0.6:
			mix.Restored++
			mix.Delayed++
			by := p.annotator(u, rs.marker)
			rs.marker = -1
			return p.appendAvailable(b, u, rs, true, by, false)
		case x < 0.8:
			mix.Annotated++
			mix.Delayed++
			return p.appendAvailable(b, u, rs, true, p.annotator(u, rs.marker), true)
		}
	default:
		switch {
		case x < 0.45:
			p.randomState(rs)
			mix.Available++
			return p.appendAvailable(b, u, rs, false, "", false)
		case x < 0.8:
			rs.marker = int8(p.rng.IntN(10) / 7) // 70% the contact's server
			mix.Annotated++
			mix.Delayed++
			return p.appendAvailable(b, u, rs, true, p.annotator(u, rs.marker), true)
		}
	}
	rs.online, rs.marker = false, -1
	mix.Unavailable++
	return p.appendUnavailable(b, rs)
}

// nextOnline appends an update, an annotation or a restore about a resource
// that stays online.
func (p *Population) nextOnline(b []byte, mix *Mix) []byte {
	p.n++
	u := &p.users[p.rng.IntN(len(p.users))]
	rs := &u.res[p.rng.IntN(len(u.res))]
	switch {
	case rs.marker >= 0:
		mix.Restored++
		mix.Delayed++
		by := p.annotator(u, rs.marker)
		rs.marker = -1
		return p.appendAvailable(b, u, rs, true, by, false)
	case p.rng.IntN(2) == 0:
		p.randomState(rs)
		mix.Available++
		return p.appendAvailable(b, u, rs, false, "", false)
	default:
		rs.marker = int8(p.rng.IntN(10) / 7)
		mix.Annotated++
		mix.Delayed++
		return p.appendAvailable(b, u, rs, true, p.annotator(u, rs.marker), true)
	}
}

func (p *Population) annotator(u *user, marker int8) string {
	if marker == 1 {
		return Domain
	}
	return u.domain
}

var stamp0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func (p *Population) appendID(b []byte) []byte {
	b = append(b, " id='"...)
	b = strconv.AppendUint(b, uint64(p.n)*2654435761%(1<<32), 36)
	return append(b, '\'')
}

// appendAvailable appends an available presence for rs with its current
// state; with annotator set, a state annotation from it (a condition when
// down, else an empty one).
func (p *Population) appendAvailable(b []byte, u *user, rs *resource, delayed bool, annotator string, down bool) []byte {
	b = append(b, "<presence xml:lang='en' from='"...)
	b = append(b, rs.full...)
	b = append(b, "' to='"+Account+"'"...)
	b = p.appendID(b)
	b = append(b, '>')
	if sh := shows[rs.show]; sh != presence.ShowNone {
		b = append(b, "<show>"...)
		b = append(b, sh...)
		b = append(b, "</show>"...)
	}
	if st := statuses[rs.status]; st != "" {
		b = append(b, "<status>"...)
		b = append(b, st...)
		b = append(b, "</status>"...)
	}
	if rs.priority != 0 {
		b = append(b, "<priority>"...)
		b = strconv.AppendInt(b, int64(rs.priority), 10)
		b = append(b, "</priority>"...)
	}
	c := capsNodes[rs.caps]
	b = append(b, "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='"...)
	b = append(b, c.node...)
	b = append(b, "' ver='"...)
	b = append(b, c.ver...)
	b = append(b, "'/><x xmlns='vcard-temp:x:update'><photo>"...)
	b = append(b, u.photo...)
	b = append(b, "</photo></x>"...)
	if delayed {
		b = append(b, "<delay xmlns='urn:xmpp:delay' from='"...)
		b = append(b, u.domain...)
		b = append(b, "' stamp='"...)
		b = stamp0.Add(time.Duration(p.n%3600)*time.Second).AppendFormat(b, time.RFC3339)
		b = append(b, "'/>"...)
	}
	if annotator != "" {
		b = append(b, "<state-annotation xmlns='"+psa.NS+"' from='"...)
		b = append(b, annotator...)
		if down {
			b = append(b, "'><server-unavailable/><description xml:lang='en'>The server "...)
			b = append(b, u.domain...)
			b = append(b, " is no longer reachable</description></state-annotation>"...)
		} else {
			b = append(b, "'/>"...)
		}
	}
	return append(b, "</presence>"...)
}

func (p *Population) appendUnavailable(b []byte, rs *resource) []byte {
	b = append(b, "<presence from='"...)
	b = append(b, rs.full...)
	b = append(b, "' to='"+Account+"' type='unavailable'"...)
	b = p.appendID(b)
	return append(b, "><status>Disconnected: connection closed</status></presence>"...)
}

// appendMUC appends an occupant presence from one of the rooms, with caps,
// an occupant id and the muc#user item (with the real JID in half the
// rooms).
func (p *Population) appendMUC(b []byte) []byte {
	room := p.rng.IntN(p.rooms)
	nick := p.rng.IntN(p.nicks)
	u := &p.users[(room*p.nicks+nick)%len(p.users)]
	rs := &u.res[0]
	b = append(b, "<presence xml:lang='en' from='room"...)
	b = strconv.AppendInt(b, int64(room), 10)
	b = append(b, "@"+MUCService+"/Nick "...)
	b = strconv.AppendInt(b, int64(nick), 10)
	b = append(b, "' to='"+Account+"'"...)
	b = p.appendID(b)
	b = append(b, '>')
	if sh := shows[p.rng.IntN(len(shows))]; sh != presence.ShowNone {
		b = append(b, "<show>"...)
		b = append(b, sh...)
		b = append(b, "</show>"...)
	}
	c := capsNodes[rs.caps]
	b = append(b, "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='"...)
	b = append(b, c.node...)
	b = append(b, "' ver='"...)
	b = append(b, c.ver...)
	b = append(b, "'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='"...)
	b = append(b, u.photo...)
	b = append(b, "'/><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'"...)
	if room%2 == 0 {
		b = append(b, " jid='"...)
		b = append(b, rs.full...)
		b = append(b, '\'')
	}
	return append(b, "/></x></presence>"...)
}
