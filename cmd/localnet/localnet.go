package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/psakit/psakit/internal/prosodytest"
	"github.com/psakit/psakit/internal/rawclient"
)

// The two domains, the MUC service and the room localnet keeps people in.
const (
	montague   = "montague.lit"
	capulet    = "capulet.lit"
	conference = "conference.montague.lit"
	orchard    = "orchard@" + conference
)

// Password is the password of every account.
const Password = "wherefore"

// Hibernation is how long a paused session (pause NAME) may stay paused
// before its server ends it.
const Hibernation = 5 * time.Minute

// opTimeout bounds one command: connecting, joining, restarting.
const opTimeout = 30 * time.Second

// accounts are the users of each domain.
var accounts = map[string][]string{
	montague: {"romeo", "benvolio", "mercutio"},
	capulet:  {"juliet", "nurse", "tybalt"},
}

// friends are the mutual roster subscriptions ("both"): romeo knows
// everyone; juliet and the nurse know each other.
var friends = [][2]string{
	{"romeo@montague.lit", "juliet@capulet.lit"},
	{"romeo@montague.lit", "nurse@capulet.lit"},
	{"romeo@montague.lit", "tybalt@capulet.lit"},
	{"romeo@montague.lit", "benvolio@montague.lit"},
	{"romeo@montague.lit", "mercutio@montague.lit"},
	{"juliet@capulet.lit", "nurse@capulet.lit"},
}

// member is a user localnet keeps online.
type member struct {
	user, domain, resource string
	status                 string
	nick                   string // nick in orchard, "" to stay out of it

	c       *rawclient.Client
	paused  bool
	roomGen int // the generation of montague.lit's process when we joined
}

func (m *member) jid() string { return m.user + "@" + m.domain }

// localnet is the running network: the servers and the users it keeps online.
type localnet struct {
	net     *prosodytest.Network
	out     io.Writer
	members []*member
	gen     map[string]int // domain -> restarts
	cut     bool
}

// specs returns the servers' specifications: accounts, rosters, mod_psa
// options.
func specs() []prosodytest.Spec {
	psaOptions := map[string]string{
		// Re-check an unreachable domain soon, so that a heal shows within a
		// second or two.
		"psa_recheck_interval":     "0.5",
		"psa_recheck_max_interval": "2",
		"psa_ping_timeout":         "5",
	}
	var out []prosodytest.Spec
	for _, domain := range []string{montague, capulet} {
		spec := prosodytest.Spec{
			Domain:          domain,
			Users:           make(map[string]string),
			Roster:          make(map[string]map[string]string),
			HibernationTime: Hibernation,
			PSAOptions:      psaOptions,
		}
		if domain == montague {
			spec.MUC = conference
		}
		for _, u := range accounts[domain] {
			spec.Users[u] = Password
		}
		for _, pair := range friends {
			for i, j := range pair {
				user, d, _ := strings.Cut(j, "@")
				if d != domain {
					continue
				}
				if spec.Roster[user] == nil {
					spec.Roster[user] = make(map[string]string)
				}
				spec.Roster[user][pair[1-i]] = "both"
			}
		}
		out = append(out, spec)
	}
	return out
}

// start starts both servers and connects the users localnet keeps online.
// Progress and what happens later goes to out.
func start(ctx context.Context, out io.Writer) (*localnet, error) {
	n, err := prosodytest.NewNetwork(ctx, func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
	}, specs()...)
	if err != nil {
		return nil, err
	}
	l := &localnet{
		net: n,
		out: out,
		gen: make(map[string]int),
		members: []*member{
			{user: "juliet", domain: capulet, resource: "balcony", status: "Wherefore art thou, Romeo?"},
			{user: "nurse", domain: capulet, resource: "garden", status: "Anon, good nurse!", nick: "Nurse"},
			{user: "benvolio", domain: montague, resource: "street", status: "Here comes the Montagues", nick: "Benvolio"},
		},
	}
	if err := l.ensure(ctx); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// close disconnects the users and stops the servers; their directory is
// removed.
func (l *localnet) close() {
	for _, m := range l.members {
		if m.c != nil {
			_ = m.c.Close()
			m.c = nil
		}
	}
	_ = l.net.Close()
}

func (l *localnet) printf(format string, args ...any) {
	fmt.Fprintf(l.out, format+"\n", args...)
}

// alive reports whether m's stream runs (or is paused on purpose).
func (m *member) alive() bool { return m.c != nil && (m.paused || m.c.Err() == nil) }

// ensure connects the members whose session is gone while their server runs,
// and (re)joins the room for those who should be in it and whose join
// predates a restart of montague.lit. A member being paused is left alone.
func (l *localnet) ensure(ctx context.Context) error {
	var errs []error
	for _, m := range l.members {
		if m.paused {
			continue
		}
		srv := l.net.Server(m.domain)
		if !srv.Running() {
			continue
		}
		fresh := false
		if !m.alive() {
			if m.c != nil {
				_ = m.c.Close()
				m.c = nil
			}
			c, err := rawclient.Dial(ctx, rawclient.Config{
				Addr: srv.C2SAddr, Domain: m.domain, User: m.user, Password: Password,
				Resource: m.resource, StreamManagement: true,
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("connecting %s: %w", m.jid(), err))
				continue
			}
			if err := c.SendPresence(ctx, "<status>"+rawclient.Escape(m.status)+"</status>"); err != nil {
				_ = c.Close()
				errs = append(errs, fmt.Errorf("presence of %s: %w", m.jid(), err))
				continue
			}
			m.c, fresh = c, true
		}
		if m.nick != "" && l.net.Server(montague).Running() && (fresh || m.roomGen != l.gen[montague]) {
			drain(m.c)
			if err := m.c.JoinMUC(ctx, orchard, m.nick); err != nil {
				errs = append(errs, fmt.Errorf("%s joining %s: %w", m.jid(), orchard, err))
				continue
			}
			m.roomGen = l.gen[montague]
		}
	}
	return errors.Join(errs...)
}

// drain forgets the stanzas c received that nobody read, so that a JoinMUC
// waits for the answer to its own join, not to an earlier one.
func drain(c *rawclient.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = c.Expect(ctx, func(*rawclient.Element) bool { return false })
}

// instructions tells how to use the network.
func (l *localnet) instructions() string {
	mont, capu := l.net.Server(montague), l.net.Server(capulet)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("Two XMPP servers with mod_psa run on loopback and federate with each other:")
	p("")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  montague.lit\tclients: %s\tMUC service: %s\n", mont.C2SAddr, conference)
	fmt.Fprintf(tw, "  capulet.lit\tclients: %s\n", capu.C2SAddr)
	_ = tw.Flush()
	p("")
	p("Accounts, all with the password %q:", Password)
	p("  romeo, benvolio, mercutio @montague.lit; juliet, nurse, tybalt @capulet.lit")
	p("romeo has everyone in his roster, with mutual subscriptions. localnet keeps")
	p("juliet, the nurse and benvolio online; the nurse and benvolio sit in the room")
	p("%s.", orchard)
	p("")
	p("In another terminal, from the root of the psakit repository, watch romeo's roster:")
	p("")
	p("  PSAKIT_PASSWORD=%s go run ./examples/psawatch -jid romeo@montague.lit -addr %s -tls none", Password, mont.C2SAddr)
	p("")
	p("or keep a bot in the room, from each domain:")
	p("")
	p("  PSAKIT_PASSWORD=%s go run ./examples/mucbot -jid mercutio@montague.lit -addr %s -tls none -room %s/Mercutio", Password, mont.C2SAddr, orchard)
	p("  PSAKIT_PASSWORD=%s go run ./examples/mucbot -jid tybalt@capulet.lit -addr %s -tls none -room %s/Tybalt", Password, capu.C2SAddr, orchard)
	p("")
	p("Then play outages here (help lists the commands): cut, heal, kill capulet.lit,")
	p("restart capulet.lit, pause juliet, resume juliet, status, quit.")
	return b.String()
}

const help = `Commands:
  cut                 cut the link between montague.lit and capulet.lit (both ways)
  heal                let it through again
  kill DOMAIN         kill DOMAIN's server with SIGKILL (montague.lit or capulet.lit)
  restart DOMAIN      start it again (same ports, same accounts; stops it first if it runs)
  pause NAME          drop NAME's connection without closing the stream: the server
                      hibernates the session (XEP-0198) for up to 5 minutes
  resume NAME         resume NAME's hibernated session
  status              what runs, what is cut, who is online
  logs DOMAIN [N]     the last N (default 40) lines of DOMAIN's server log
  help                this text
  quit                stop everything (so do Ctrl-C and end of input)
NAME is juliet, nurse or benvolio.`

// do runs one command line. It returns quit true for quit.
func (l *localnet) do(ctx context.Context, line string) (quit bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return false, nil
	}
	arg := func(i int) string {
		if i < len(fields) {
			return fields[i]
		}
		return ""
	}
	switch cmd := strings.ToLower(fields[0]); cmd {
	case "quit", "exit", "q":
		return true, nil
	case "help", "?":
		l.printf("%s", help)
	case "cut":
		if err := l.net.Cut(montague, capulet); err != nil {
			return false, err
		}
		l.cut = true
		l.printf("cut: montague.lit and capulet.lit cannot reach each other. Each server now")
		l.printf("re-sends the other domain's presences annotated server-unavailable.")
	case "heal":
		if err := l.net.Heal(montague, capulet); err != nil {
			return false, err
		}
		l.cut = false
		l.printf("healed: within a second or two each server finds the other reachable and")
		l.printf("sends the presences again with an empty annotation.")
	case "kill", "restart":
		srv, err := l.server(arg(1))
		if err != nil {
			return false, err
		}
		if cmd == "kill" {
			if err := srv.Kill(); err != nil {
				return false, err
			}
			l.printf("killed %s (SIGKILL: no stream close, no unavailable presence).", srv.Domain)
			return false, nil
		}
		began := time.Now()
		if err := srv.Restart(ctx); err != nil {
			return false, err
		}
		l.gen[srv.Domain]++
		l.printf("restarted %s in %v, empty: its users' sessions and non-persistent rooms are gone.", srv.Domain, time.Since(began).Round(time.Millisecond))
		if err := l.ensure(ctx); err != nil {
			return false, err
		}
		l.printf("localnet's users are back online (and in %s).", orchard)
	case "pause", "resume":
		m, err := l.member(arg(1))
		if err != nil {
			return false, err
		}
		if cmd == "pause" {
			return false, l.pause(m)
		}
		return false, l.resume(ctx, m)
	case "status":
		l.status()
	case "logs":
		srv, err := l.server(arg(1))
		if err != nil {
			return false, err
		}
		lines := 40
		if v := arg(2); v != "" {
			if lines, err = strconv.Atoi(v); err != nil || lines <= 0 {
				return false, fmt.Errorf("logs %s %s: want a positive number of lines", arg(1), v)
			}
		}
		l.printf("%s", srv.LogTail(lines))
	default:
		return false, fmt.Errorf("unknown command %q (try help)", fields[0])
	}
	return false, nil
}

func (l *localnet) server(domain string) (*prosodytest.Server, error) {
	if domain == "" {
		return nil, errors.New("which server? montague.lit or capulet.lit")
	}
	srv := l.net.Server(strings.ToLower(domain))
	if srv == nil {
		return nil, fmt.Errorf("no server %q: montague.lit or capulet.lit", domain)
	}
	return srv, nil
}

func (l *localnet) member(name string) (*member, error) {
	var names []string
	for _, m := range l.members {
		if strings.EqualFold(name, m.user) || strings.EqualFold(name, m.jid()) {
			return m, nil
		}
		names = append(names, m.user)
	}
	return nil, fmt.Errorf("no user %q kept online by localnet: %s", name, strings.Join(names, ", "))
}

func (l *localnet) pause(m *member) error {
	switch {
	case m.paused:
		return fmt.Errorf("%s is paused already", m.user)
	case !m.alive():
		return fmt.Errorf("%s is not online (is %s running?)", m.user, m.domain)
	}
	if err := m.c.Drop(); err != nil {
		return err
	}
	m.paused = true
	l.printf("paused %s: the connection is gone, the session hibernates (XEP-0198) for up to %.0f minutes;", m.user, Hibernation.Minutes())
	l.printf("%s re-sends %s's presence annotated connection-paused.", m.domain, m.user)
	return nil
}

func (l *localnet) resume(ctx context.Context, m *member) error {
	if !m.paused {
		return fmt.Errorf("%s is not paused", m.user)
	}
	m.paused = false
	if err := m.c.Resume(ctx); err != nil {
		l.printf("%s's session cannot be resumed (%v): connecting anew.", m.user, err)
		_ = m.c.Close()
		m.c = nil
		return l.ensure(ctx)
	}
	l.printf("resumed %s's session: %s sends her presence with an empty annotation.", m.user, m.domain)
	return nil
}

func (l *localnet) status() {
	tw := tabwriter.NewWriter(l.out, 0, 0, 2, ' ', 0)
	for _, srv := range l.net.Servers() {
		state := "running"
		if !srv.Running() {
			state = "killed"
		}
		fmt.Fprintf(tw, "%s\t%s\tclients: %s\n", srv.Domain, state, srv.C2SAddr)
	}
	link := "up"
	if l.cut {
		link = "cut"
	}
	fmt.Fprintf(tw, "link\t%s\n", link)
	members := append([]*member(nil), l.members...)
	sort.Slice(members, func(i, j int) bool { return members[i].user < members[j].user })
	for _, m := range members {
		state := "offline"
		switch {
		case m.paused:
			state = "paused"
		case m.alive():
			state = "online"
			if m.nick != "" && m.roomGen == l.gen[montague] {
				state += ", in " + orchard
			}
		}
		fmt.Fprintf(tw, "%s\t%s\n", m.jid()+"/"+m.resource, state)
	}
	_ = tw.Flush()
}
