// Package prosodytest runs real Prosody servers for Go tests: N processes in
// temporary directories on free loopback ports, federating with each other
// without DNS, users registered, TLS certificates from a generated CA, and
// psakit's mod_psa loaded.
//
// Every server-to-server path between two servers goes through a loopback
// TCP forwarder that the test can cut and heal, and each server can be killed
// with SIGKILL and restarted with the same configuration and data:
//
//	n := prosodytest.Start(t,
//		prosodytest.Spec{Domain: "montague.lit", MUC: "conference.montague.lit",
//			Users: map[string]string{"romeo": "pw"}},
//		prosodytest.Spec{Domain: "capulet.lit", Users: map[string]string{"juliet": "pw"}},
//	)
//	mont := n.Server("montague.lit")
//	// connect a client to mont.C2SAddr ...
//	n.Cut("montague.lit", "capulet.lit")
//
// Everything is stopped and removed in t.Cleanup, also when the test fails,
// and the last lines of each server's log are printed on failure. A Prosody
// process never outlives the test binary (it gets SIGKILL when its parent
// dies). Prosody is never started without its own --config.
//
// Tests skip when Prosody is not installed, unless the environment variable
// PSAKIT_REQUIRE_PROSODY=1 is set (CI sets it): then they fail.
//
// Several Prosody versions can be installed side by side (0.12 as Debian's
// package, 13 unpacked by scripts/install-prosody-13.sh): PSAKIT_PROSODY
// selects them by version or launcher path ("0.12 13"), and a package whose
// TestMain calls Main runs its tests once per selected installation. Start
// uses the first; Network.Prosody says which, for the few tests whose
// expectations depend on the version.
//
// Programs that are not tests (cmd/localnet) use NewNetwork, which
// returns errors instead of failing a test, and stop the servers with Close.
package prosodytest

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/psakit/psakit/prosody"
)

//go:embed mod_s2s_loopback.lua
var loopbackModule []byte

// EnvRequire is the environment variable that turns a missing Prosody into a
// test failure instead of a skip.
const EnvRequire = "PSAKIT_REQUIRE_PROSODY"

// EnvKeep, when set to 1, keeps the servers' directories after the test (their
// path is logged) instead of removing them.
const EnvKeep = "PSAKIT_KEEP_PROSODY"

// startTimeout bounds the start of a whole Network.
const startTimeout = 30 * time.Second

var errExited = errors.New("prosodytest: prosody exited")

// Installed returns the path of the prosody launcher that Start uses: the
// first of Installations. It fails when none is found.
func Installed() (string, error) {
	in, err := pick()
	return in.Prosody, err
}

// pick returns the installation that Start uses: the first of
// Installations. With PSAKIT_REQUIRE_PROSODY=1, an entry of PSAKIT_PROSODY
// that matches nothing is an error even when others were found.
func pick() (Installation, error) {
	all, err := Installations()
	if len(all) == 0 {
		if err == nil {
			err = errors.New("prosodytest: no Prosody selected")
		}
		return Installation{}, err
	}
	if err != nil && os.Getenv(EnvRequire) == "1" {
		return Installation{}, err
	}
	return all[0], nil
}

// Require returns the path of the prosody launcher that Start uses. It
// skips the test with a clear message when Prosody is not installed, or
// fails it when PSAKIT_REQUIRE_PROSODY=1 (then also when a version that
// PSAKIT_PROSODY names is missing).
func Require(t testing.TB) string {
	t.Helper()
	return require(t).Prosody
}

func require(t testing.TB) Installation {
	t.Helper()
	in, err := pick()
	if err != nil {
		msg := "Prosody is missing: " + err.Error()
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s; %s=1 requires it", msg, EnvRequire)
		}
		t.Skipf("%s; skipping (set %s=1 to fail instead)", msg, EnvRequire)
	}
	return in
}

// Spec describes one server of a Network.
type Spec struct {
	// Domain is the VirtualHost, e.g. "montague.lit". Required.
	Domain string
	// MUC is the domain of a MUC component ("conference.montague.lit"), or
	// empty for none.
	MUC string
	// Users maps user names to passwords.
	Users map[string]string
	// Roster maps a user to its contacts: contact bare JID -> subscription
	// ("both", "to", "from" or "none"). Presence flows both ways only when
	// the contact's server lists the user too.
	Roster map[string]map[string]string
	// WithoutPSA leaves mod_psa out (it is loaded on the VirtualHost and the
	// MUC component by default).
	WithoutPSA bool
	// MUCWithoutPSA leaves mod_psa out of the MUC component only.
	MUCWithoutPSA bool
	// HibernationTime is smacks_hibernation_time, rounded up to whole
	// seconds (Prosody's unit); zero keeps Prosody's default (600 s).
	HibernationTime time.Duration
	// Modules are more Prosody modules to enable on the VirtualHost, for
	// example "blocklist".
	Modules []string
	// PSAOptions are mod_psa options, as raw Lua values:
	// {"psa_recheck_interval": "0.2"}.
	PSAOptions map[string]string
	// ExtraConfig is raw Lua appended to the global section of the
	// configuration.
	ExtraConfig string
	// BOSH enables mod_bosh (XEP-0206) on an HTTP port on loopback: see
	// Server.BOSHURL.
	BOSH bool
}

// FastPSA returns mod_psa options for tests: it re-checks an unreachable
// domain after 0.1 s, doubling up to 0.4 s (instead of 5 s up to 20 s),
// so that a heal is noticed at once, and gives pings and disco#info queries
// 5 s. A new map each call: callers may add to it.
func FastPSA() map[string]string {
	return map[string]string{
		"psa_recheck_interval":     "0.1",
		"psa_recheck_max_interval": "0.4",
		"psa_ping_timeout":         "5",
		"psa_disco_timeout":        "5",
	}
}

// Network is a set of running Prosody servers that federate over loopback
// forwarders.
type Network struct {
	logf    func(format string, args ...any)
	prosody Installation
	dir     string
	ca      *authority
	servers []*Server
	fwd     map[[2]string]*forwarder // [from server domain, to server domain]

	closeOnce sync.Once
}

// Start starts one Prosody process per spec and returns when all accept
// client connections. It fails the test on error.
func Start(t testing.TB, specs ...Spec) *Network {
	t.Helper()
	in := require(t)
	t.Logf("prosodytest: %v", in)
	n, err := start(context.Background(), in, t.Logf, specs)
	if n != nil {
		t.Cleanup(func() { n.shutdown(t.Failed()) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// NewNetwork is Start for programs that are not tests: it starts one Prosody
// process per spec, and returns when all accept client connections, or an
// error (then nothing is left running). ctx bounds the start only. logf, if
// not nil, receives the few messages Start would log to the test. Close
// stops the servers and removes their directories.
func NewNetwork(ctx context.Context, logf func(format string, args ...any), specs ...Spec) (*Network, error) {
	in, err := pick()
	if err != nil {
		return nil, fmt.Errorf("prosodytest: Prosody is not installed (Debian: apt-get install prosody): %w", err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	n, err := start(ctx, in, logf, specs)
	if err != nil {
		if n != nil {
			n.shutdown(true)
		}
		return nil, err
	}
	return n, nil
}

// Close kills every server, closes the forwarders and removes the servers'
// directories (unless PSAKIT_KEEP_PROSODY=1). It is what the test cleanup of
// Start does; calling it more than once is harmless.
func (n *Network) Close() error {
	n.shutdown(false)
	return nil
}

// start starts the network. It returns the Network, to be shut down, also
// with an error when it got far enough to create one.
func start(ctx context.Context, in Installation, logf func(string, ...any), specs []Spec) (*Network, error) {
	// A short directory: the admin socket path must fit a sockaddr_un.
	dir, err := os.MkdirTemp("", "psakit-prosody-")
	if err != nil {
		return nil, fmt.Errorf("prosodytest: %w", err)
	}
	n := &Network{logf: logf, prosody: in, dir: dir, fwd: make(map[[2]string]*forwarder)}

	if n.ca, err = newAuthority(); err != nil {
		return n, err
	}
	seen := make(map[string]bool)
	for i, spec := range specs {
		if spec.Domain == "" {
			return n, errors.New("prosodytest: Spec.Domain is required")
		}
		for _, d := range []string{spec.Domain, spec.MUC} {
			if d == "" {
				continue
			}
			if seen[d] {
				return n, fmt.Errorf("prosodytest: domain %s used twice", d)
			}
			seen[d] = true
		}
		s := &Server{
			Domain: spec.Domain,
			MUC:    spec.MUC,
			Dir:    filepath.Join(dir, spec.Domain),
			n:      n,
			spec:   spec,
			index:  i,
			logs:   newLogBuffer(),
		}
		n.servers = append(n.servers, s)
	}
	for _, a := range n.servers {
		for _, b := range n.servers {
			if a == b {
				continue
			}
			f, err := newForwarder()
			if err != nil {
				return n, fmt.Errorf("prosodytest: forwarder: %w", err)
			}
			n.fwd[[2]string{a.Domain, b.Domain}] = f
		}
	}

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	errs := make([]error, len(n.servers))
	var wg sync.WaitGroup
	for i, s := range n.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.firstStart(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return n, err
	}
	return n, nil
}

// shutdown kills the servers, closes the forwarders, logs the end of each
// server's log when failed, and removes the directory; only the first call
// does anything.
func (n *Network) shutdown(failed bool) {
	n.closeOnce.Do(func() { n.cleanup(failed) })
}

func (n *Network) cleanup(failed bool) {
	for _, s := range n.servers {
		_ = s.Kill()
	}
	for _, f := range n.fwd {
		f.close()
	}
	if failed {
		lines := 300
		if v, err := strconv.Atoi(os.Getenv("PSAKIT_PROSODY_LOG_LINES")); err == nil && v > 0 {
			lines = v
		}
		for _, s := range n.servers {
			n.logf("--- last %d log lines of %s ---\n%s", lines, s.Domain, s.LogTail(lines))
		}
	}
	if os.Getenv(EnvKeep) == "1" {
		n.logf("prosodytest: kept %s", n.dir)
		return
	}
	_ = os.RemoveAll(n.dir)
}

// Server returns the server of domain (its VirtualHost or MUC domain), or nil.
func (n *Network) Server(domain string) *Server {
	for _, s := range n.servers {
		if s.Domain == domain || (s.MUC != "" && s.MUC == domain) {
			return s
		}
	}
	return nil
}

// Prosody returns the Prosody installation the servers run.
func (n *Network) Prosody() Installation { return n.prosody }

// Dir returns the directory that holds every server's files.
func (n *Network) Dir() string { return n.dir }

// Servers returns the servers in the order of their specs.
func (n *Network) Servers() []*Server {
	return append([]*Server(nil), n.servers...)
}

func (n *Network) pair(a, b string) (*forwarder, *forwarder, error) {
	sa, sb := n.Server(a), n.Server(b)
	if sa == nil || sb == nil || sa == sb {
		return nil, nil, fmt.Errorf("prosodytest: no s2s path between %q and %q", a, b)
	}
	return n.fwd[[2]string{sa.Domain, sb.Domain}], n.fwd[[2]string{sb.Domain, sa.Domain}], nil
}

// Cut cuts the server-to-server link between the servers of domains a and b
// (VirtualHost or MUC domains), both directions, their MUC components
// included: live connections are reset, new ones are refused until Heal.
func (n *Network) Cut(a, b string) error {
	ab, ba, err := n.pair(a, b)
	if err != nil {
		return err
	}
	ab.setCut(true)
	ba.setCut(true)
	return nil
}

// CutOneWay cuts the path the server of from uses to reach the server of to
// (and their MUC components), and only that: from can no longer open or use
// connections to to, while connections that to opened to from stay up. It
// is how a one-way failure looks (a firewall, a broken route). Heal(from,
// to) heals it.
func (n *Network) CutOneWay(from, to string) error {
	ab, _, err := n.pair(from, to)
	if err != nil {
		return err
	}
	ab.setCut(true)
	return nil
}

// Blackhole makes the server-to-server link between the servers of a and b
// (and their MUC components) drop everything silently, both directions:
// live connections stay open and pass nothing, new ones are accepted and
// get no answer, as when a firewall or a broken route drops the packets.
// Nothing is lost: what was sent waits, as TCP retransmits it, and flows
// when Heal ends the blackhole.
func (n *Network) Blackhole(a, b string) error {
	ab, ba, err := n.pair(a, b)
	if err != nil {
		return err
	}
	ab.setBlackhole(true)
	ba.setBlackhole(true)
	return nil
}

// StallOneWay makes the path the server of from uses to reach the server
// of to (and their MUC components) hold every new connection: accepted, and
// then not a byte either way, as a route that silently drops packets looks
// to a connection attempt. Connections open before stay as they are (cut
// the path first to reset them). Heal(from, to) or a Cut resets the held
// connections and ends the stall. The channel it returns is closed once the
// path holds a connection: from tried to reach to.
func (n *Network) StallOneWay(from, to string) (<-chan struct{}, error) {
	ab, _, err := n.pair(from, to)
	if err != nil {
		return nil, err
	}
	return ab.stall(), nil
}

// Heal lets new connections through the link between a and b again, ends
// a blackhole, and resets the connections a stall holds.
func (n *Network) Heal(a, b string) error {
	ab, ba, err := n.pair(a, b)
	if err != nil {
		return err
	}
	ab.setCut(false)
	ba.setCut(false)
	return nil
}

// Server is one Prosody process.
type Server struct {
	// Domain is the VirtualHost.
	Domain string
	// MUC is the MUC component domain, or empty.
	MUC string
	// C2SAddr is the client address ("127.0.0.1:PORT"): plain text, with
	// StartTLS offered (see TLSConfig).
	C2SAddr string
	// C2SDirectTLSAddr is the client address for TLS from the first byte
	// (XEP-0368 direct TLS; see TLSConfig).
	C2SDirectTLSAddr string
	// S2SAddr is the server-to-server address. Other servers of the Network
	// reach it through forwarders.
	S2SAddr string
	// BOSHURL is the BOSH endpoint ("http://127.0.0.1:PORT/http-bind") when
	// the Spec asked for BOSH, else empty.
	BOSHURL string
	// Dir holds the configuration, data, certificates and plugins.
	Dir string

	n     *Network
	spec  Spec
	index int
	logs  *logBuffer

	mu   sync.Mutex
	proc *process
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *Server) configPath() string { return filepath.Join(s.Dir, "prosody.cfg.lua") }

// JID returns user@domain.
func (s *Server) JID(user string) string { return user + "@" + s.Domain }

// freePorts returns n distinct free loopback ports. The listeners stay open
// until all n are chosen: closed one at a time, the kernel may hand the same
// port out twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// firstStart writes the server's files and starts it, with new ports if the
// chosen ones were taken meanwhile.
func (s *Server) firstStart(ctx context.Context) error {
	if err := s.writeFiles(); err != nil {
		return err
	}
	var err error
	for range 3 {
		ports, perr := freePorts(4)
		if perr != nil {
			return perr
		}
		c2s, c2sTLS, s2s, http := ports[0], ports[1], ports[2], ports[3]
		if s.spec.BOSH {
			s.BOSHURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(http)) + "/http-bind"
		} else {
			http = 0
		}
		s.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c2s))
		s.C2SDirectTLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(c2sTLS))
		s.S2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s2s))
		for key, f := range s.n.fwd {
			if key[1] == s.Domain {
				f.setTarget(s.S2SAddr)
			}
		}
		if err = os.WriteFile(s.configPath(), []byte(s.config(c2s, c2sTLS, s2s, http)), 0o644); err != nil {
			return fmt.Errorf("prosodytest: %w", err)
		}
		if err = s.start(ctx); err == nil || !errors.Is(err, errPortTaken) {
			return err
		}
		_ = s.Kill()
	}
	return err
}

var errPortTaken = errors.New("prosodytest: port taken")

func (s *Server) writeFiles() error {
	for _, d := range []string{"data", "plugins", "certs"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return fmt.Errorf("prosodytest: %w", err)
		}
	}
	files := map[string][]byte{
		"plugins/mod_s2s_loopback.lua": loopbackModule,
		"certs/ca.crt":                 s.n.ca.pem,
	}
	if !s.spec.WithoutPSA {
		files["plugins/mod_psa.lua"] = prosody.Module()
	}
	for i, d := range []string{s.Domain, s.MUC} {
		if d == "" {
			continue
		}
		cert, key, err := s.n.ca.issue(int64(100+10*s.index+i), d)
		if err != nil {
			return err
		}
		files["certs/"+d+".crt"] = cert
		files["certs/"+d+".key"] = key
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), content, 0o600); err != nil {
			return fmt.Errorf("prosodytest: %w", err)
		}
	}
	for user, pass := range s.spec.Users {
		if err := s.Register(user, pass); err != nil {
			return err
		}
	}
	for user, items := range s.spec.Roster {
		if err := s.writeRoster(user, items); err != nil {
			return err
		}
	}
	return nil
}

// luaString quotes s as a Lua string literal.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// config returns the configuration; httpPort is 0 without BOSH.
func (s *Server) config(c2sPort, c2sTLSPort, s2sPort, httpPort int) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("-- Generated by psakit internal/prosodytest. Test use only.")
	if os.Geteuid() == 0 {
		p("run_as_root = true")
	}
	p("pidfile = %s", luaString(filepath.Join(s.Dir, "prosody.pid")))
	p("data_path = %s", luaString(filepath.Join(s.Dir, "data")))
	p("plugin_paths = { %s }", luaString(filepath.Join(s.Dir, "plugins")))
	p("certificates = %s", luaString(filepath.Join(s.Dir, "certs")))
	p("admin_socket = %s", luaString(filepath.Join(s.Dir, "admin.sock")))
	p(`log = { { levels = { min = "debug" }, to = "console" } }`)
	p(`interfaces = { "127.0.0.1" }`)
	p("c2s_ports = { %d }", c2sPort)
	p("s2s_ports = { %d }", s2sPort)
	p("c2s_direct_tls_ports = { %d }", c2sTLSPort)
	empty := []string{"s2s_direct_tls_ports", "legacy_ssl_ports", "https_ports", "component_ports"}
	if httpPort != 0 {
		p("http_ports = { %d }", httpPort)
		p(`http_interfaces = { "127.0.0.1" }`)
	} else {
		empty = append(empty, "http_ports")
	}
	for _, name := range empty {
		p("%s = { }", name)
	}
	p(`authentication = "internal_plain"`)
	p(`storage = "internal"`)
	p("c2s_require_encryption = false")
	p("allow_unencrypted_plain_auth = true")
	p("s2s_require_encryption = false")
	p("s2s_secure_auth = false")
	p("use_ipv6 = false")
	if s.spec.HibernationTime > 0 {
		secs := int((s.spec.HibernationTime + time.Second - 1) / time.Second)
		p("smacks_hibernation_time = %d", secs)
	}
	modules := []string{"roster", "saslauth", "tls", "dialback", "disco", "ping", "smacks", "admin_shell", "s2s_loopback"}
	if !s.spec.WithoutPSA {
		modules = append(modules, "psa")
	}
	if httpPort != 0 {
		modules = append(modules, "bosh")
	}
	modules = append(modules, s.spec.Modules...)
	for i, m := range modules {
		modules[i] = luaString(m)
	}
	p("modules_enabled = { %s }", strings.Join(modules, ", "))

	p("s2s_loopback_targets = {")
	for _, other := range s.n.servers {
		if other == s {
			continue
		}
		port := s.n.fwd[[2]string{s.Domain, other.Domain}].port()
		for _, d := range []string{other.Domain, other.MUC} {
			if d != "" {
				p("\t[%s] = %d;", luaString(d), port)
			}
		}
	}
	p("}")
	for _, k := range sortedKeys(s.spec.PSAOptions) {
		p("%s = %s", k, s.spec.PSAOptions[k])
	}
	if s.spec.ExtraConfig != "" {
		p("%s", s.spec.ExtraConfig)
	}
	p("")
	p("VirtualHost %s", luaString(s.Domain))
	if s.MUC != "" {
		p("")
		p("Component %s \"muc\"", luaString(s.MUC))
		p("\tmuc_room_locking = false")
		p("\trestrict_room_creation = false")
		if !s.spec.WithoutPSA && !s.spec.MUCWithoutPSA {
			p("\tmodules_enabled = { \"psa\" }")
		}
	}
	return b.String()
}

// dataPath returns the path of a datamanager file (util/datamanager.lua).
func (s *Server) dataPath(store, user string) string {
	return filepath.Join(s.Dir, "data", encodeData(s.Domain), store, encodeData(user)+".dat")
}

// encodeData encodes like datamanager's encode: every non-alphanumeric byte
// as %xx.
func encodeData(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

func writeData(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("prosodytest: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("prosodytest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("prosodytest: %w", err)
	}
	return nil
}

// Register creates (or resets the password of) an account. It writes the
// account file of the internal_plain store directly, which the server reads
// at each login, so it works whether the server runs or not and costs no
// process start.
func (s *Server) Register(user, pass string) error {
	if user == "" || strings.ContainsAny(user, "@/ ") {
		return fmt.Errorf("prosodytest: invalid user name %q", user)
	}
	return writeData(s.dataPath("accounts", user), "return {\n\t[\"password\"] = "+luaString(pass)+";\n};\n")
}

// writeRoster writes a user's roster at version 1; only valid before the
// user's first login (Prosody caches rosters).
func (s *Server) writeRoster(user string, items map[string]string) error {
	return s.WriteRoster(user, 1, items)
}

// WriteRoster replaces a user's roster with items (contact bare JID ->
// subscription) at a roster version (RFC 6121 §2.6: a client that fetches
// with another version gets the whole roster). Prosody keeps the rosters of
// online users in memory: write it while the server is stopped, or before
// the user's first login.
func (s *Server) WriteRoster(user string, version int, items map[string]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "return {\n\t[false] = { [\"version\"] = %d; [\"pending\"] = { }; };\n", version)
	for _, contact := range sortedKeys(items) {
		fmt.Fprintf(&b, "\t[%s] = { [\"subscription\"] = %s; [\"groups\"] = { }; };\n", luaString(contact), luaString(items[contact]))
	}
	b.WriteString("};\n")
	return writeData(s.dataPath("roster", user), b.String())
}

// start starts the process and waits until it is ready.
func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	if s.proc != nil {
		s.mu.Unlock()
		return fmt.Errorf("prosodytest: %s is already running", s.Domain)
	}
	mark := s.logs.mark()
	cmd := exec.Command(s.n.prosody.Prosody, "-F", "--config", s.configPath())
	cmd.Dir = s.Dir
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("prosodytest: starting prosody for %s: %w", s.Domain, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	s.proc = p
	s.mu.Unlock()
	s.logs.Println(fmt.Sprintf("prosodytest: started pid %d", cmd.Process.Pid))
	go func() {
		err := cmd.Wait()
		s.logs.Println(fmt.Sprintf("prosodytest: process exited: %v", err))
		close(p.done)
	}()

	_, _, err := s.logs.wait(ctx, mark, "prosodytest: server started", p.done)
	if err != nil {
		return fmt.Errorf("prosodytest: %s did not start: %w\n%s", s.Domain, err, s.LogTail(30))
	}
	if _, _, ok, _ := s.logs.find(mark, "Failed to open server port"); ok {
		return fmt.Errorf("%w: %s", errPortTaken, s.Domain)
	}
	for _, addr := range []string{s.C2SAddr, s.C2SDirectTLSAddr, s.S2SAddr} {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", errPortTaken, s.Domain, err)
		}
		_ = c.Close()
	}
	return nil
}

// Running reports whether the server's process runs (it was not killed or
// stopped, or it was restarted since).
func (s *Server) Running() bool { return s.running() != nil }

func (s *Server) running() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

func (s *Server) stop(sig os.Signal, wait time.Duration) error {
	p := s.running()
	if p == nil {
		return nil
	}
	if contSignal != nil {
		_ = p.cmd.Process.Signal(contSignal) // a frozen server could not act on sig
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	s.mu.Lock()
	if s.proc == p {
		s.proc = nil
	}
	s.mu.Unlock()
	return nil
}

// Kill kills the server with SIGKILL (no stream close, no unavailable
// presence) and waits for the process to end.
func (s *Server) Kill() error {
	return s.stop(killSignal, time.Minute)
}

// Stop stops the server with SIGTERM (Prosody closes its streams and sends
// unavailable presences) and waits for it, at most 15 s before SIGKILL.
func (s *Server) Stop() error {
	return s.stop(termSignal, 15*time.Second)
}

// Freeze stops the server's process with SIGSTOP: its connections stay
// open and nothing answers on them, as with a hung server or a path that
// silently drops packets. Thaw wakes it; stopping the network thaws it too.
func (s *Server) Freeze() error { return s.signal(stopSignal) }

// Thaw wakes a server that Freeze stopped (SIGCONT).
func (s *Server) Thaw() error { return s.signal(contSignal) }

func (s *Server) signal(sig os.Signal) error {
	if sig == nil {
		return errors.New("prosodytest: freezing a process is not supported on this system")
	}
	p := s.running()
	if p == nil {
		return fmt.Errorf("prosodytest: %s is not running", s.Domain)
	}
	return p.cmd.Process.Signal(sig)
}

// Restart stops the server if it runs (SIGTERM) and starts it again with the
// same configuration, ports and data.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start(ctx)
}

// Shell runs a command of Prosody's admin console (prosodyctl shell) on the
// running server, e.g. `s2s:close("montague.lit", "capulet.lit")`, and
// returns its output.
func (s *Server) Shell(ctx context.Context, command string) (string, error) {
	cmd := exec.CommandContext(ctx, s.n.prosody.Ctl, "--config", s.configPath(), "shell", command)
	cmd.Dir = s.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("prosodytest: prosodyctl shell %q: %w: %s", command, err, out)
	}
	return string(out), nil
}

// TLSConfig returns a client TLS configuration for StartTLS on C2SAddr and
// for C2SDirectTLSAddr: it trusts the Network's generated CA and expects the
// certificate of Domain.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.n.ca.pool, ServerName: s.Domain, MinVersion: tls.VersionTLS12}
}

// LogTail returns the last n lines of the server's log (all its runs).
func (s *Server) LogTail(n int) string { return s.logs.tail(n) }

// LogMark returns a position in the server's log: WaitLog(ctx, mark, ...)
// looks only at lines logged after it was taken.
func (s *Server) LogMark() int { return s.logs.mark() }

// WaitLog waits until a line logged at or after mark contains substr, and
// returns it with the mark after it.
func (s *Server) WaitLog(ctx context.Context, mark int, substr string) (string, int, error) {
	var done <-chan struct{}
	if p := s.running(); p != nil {
		done = p.done
	}
	line, next, err := s.logs.wait(ctx, mark, substr, done)
	if err != nil {
		return "", next, fmt.Errorf("prosodytest: waiting for %q in the log of %s: %w", substr, s.Domain, err)
	}
	return line, next, nil
}
