// Package clientflag gives a command-line program built on package client
// the flags it needs to connect, and the conventions of psakit's example
// programs: -jid (with an optional resource), -addr, -tls, -insecure,
// -keepalive, -remote-check, -sm and a repeatable -room; the password from
// $PSAKIT_PASSWORD or a prompt that does not echo; -h printing what the
// program does, and exit status 2 for a wrong command line.
//
// A program registers the flags on its flag.FlagSet, parses with Parse,
// and passes what Flags.Connection returns to client.Dial:
//
//	fs := flag.NewFlagSet("mybot", flag.ContinueOnError)
//	conn := clientflag.Register(fs)
//	rooms := clientflag.RegisterRooms(fs)
//	if err := clientflag.Parse(fs, about, os.Args[1:]); err != nil {
//		os.Exit(clientflag.ExitCode(err))
//	}
//	account, opts, password, err := conn.Connection(os.Stdin, os.Stderr)
//	...
//	c, err := client.Dial(ctx, account, password, opts...)
//
// Errors in flag values are *FlagError, which says which flag, the value,
// and what is wrong with it in words, and matches ErrUsage.
package clientflag

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
	"mellium.im/xmpp/jid"

	"github.com/psakit/psakit/client"
)

// PasswordEnv is the environment variable read for the password.
const PasswordEnv = "PSAKIT_PASSWORD"

// Flags are the connection flags.
type Flags struct {
	// JID is -jid, the account: user@domain, or user@domain/resource to
	// ask for that resource.
	JID string
	// Addr is -addr, a host:port to connect to instead of the domain's SRV
	// records.
	Addr string
	// TLS is -tls: starttls (the default), direct, or none (plain text,
	// which package client allows on loopback addresses only).
	TLS string
	// Insecure is -insecure: the server's certificate is not verified.
	Insecure bool
	// Keepalive is the -keepalive interval: after that long without
	// hearing from the server the client pings it, and waits as long again
	// (at most client.DefaultKeepaliveTimeout) for the answer. 0 is off.
	Keepalive time.Duration
	// RemoteCheck is the -remote-check interval (client.WithRemoteCheck):
	// how often remote domains with available contacts or rooms are pinged
	// to find outages no server reports. 0 is off.
	RemoteCheck time.Duration
	// SM is -sm: use XEP-0198 stream management when the server offers it
	// (client.WithStreamManagement), so that a short drop is resumed.
	SM bool
}

// Register defines the flags on fs.
func Register(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.JID, "jid", "", "the account `JID`, e.g. romeo@montague.lit or romeo@montague.lit/resource (required)")
	fs.StringVar(&f.Addr, "addr", "", "connect to `host:port` instead of looking up the domain's SRV records")
	fs.StringVar(&f.TLS, "tls", "starttls", "`mode`: starttls, direct, or none (plain text, loopback addresses only)")
	fs.BoolVar(&f.Insecure, "insecure", false, "do not verify the server's certificate")
	fs.DurationVar(&f.Keepalive, "keepalive", client.DefaultKeepaliveInterval,
		"ping the server after this long without hearing from it, and reconnect if it does not answer within as long again (at most "+
			client.DefaultKeepaliveTimeout.String()+"); 0 is off")
	fs.DurationVar(&f.RemoteCheck, "remote-check", client.DefaultRemoteCheck,
		"ping each remote domain with available contacts or rooms this often, and mark their entries stale while it is unreachable; 0 is off")
	fs.BoolVar(&f.SM, "sm", true,
		"use stream management (XEP-0198) when the server offers it: resume the session after a short drop instead of resyncing everything")
	return f
}

// Connection turns the flags into what client.Dial takes: the account, the
// options, and the password (from $PSAKIT_PASSWORD or a prompt on stderr).
func (f *Flags) Connection(stdin *os.File, stderr io.Writer) (jid.JID, []client.Option, string, error) {
	account, err := f.Account()
	if err != nil {
		return jid.JID{}, nil, "", err
	}
	opts, err := f.Options(account)
	if err != nil {
		return jid.JID{}, nil, "", err
	}
	password, err := Password(stdin, stderr)
	if err != nil {
		return jid.JID{}, nil, "", err
	}
	return account, opts, password, nil
}

// Account parses -jid. Its errors are *FlagError.
func (f *Flags) Account() (jid.JID, error) {
	if f.JID == "" {
		return jid.JID{}, &FlagError{Flag: "jid", Problem: "an account JID is required, such as romeo@montague.lit"}
	}
	j, err := parseJID("jid", f.JID)
	if err != nil {
		return jid.JID{}, err
	}
	if j.Localpart() == "" {
		return jid.JID{}, &FlagError{Flag: "jid", Value: f.JID, Problem: "an account JID has a local part: user@domain, such as romeo@" + j.Domainpart()}
	}
	return j, nil
}

// Options returns the client options the flags ask for; the resource of
// -jid, if any, is asked for when binding.
func (f *Flags) Options(account jid.JID) ([]client.Option, error) {
	var opts []client.Option
	if f.Addr != "" {
		opts = append(opts, client.WithAddress(f.Addr))
	}
	switch f.TLS {
	case "starttls":
		opts = append(opts, client.WithTLS(client.StartTLS))
	case "direct":
		opts = append(opts, client.WithTLS(client.DirectTLS))
	case "none":
		opts = append(opts, client.WithTLS(client.PlainText))
	default:
		return nil, &FlagError{Flag: "tls", Value: f.TLS, Problem: "want starttls, direct or none"}
	}
	if f.Insecure {
		opts = append(opts, client.WithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	}
	if f.Keepalive < 0 {
		return nil, &FlagError{Flag: "keepalive", Value: f.Keepalive.String(), Problem: "want a duration of 0 (off) or more"}
	}
	opts = append(opts, client.WithKeepalive(f.Keepalive, 0))
	if f.RemoteCheck < 0 {
		return nil, &FlagError{Flag: "remote-check", Value: f.RemoteCheck.String(), Problem: "want a duration of 0 (off) or more"}
	}
	opts = append(opts, client.WithRemoteCheck(f.RemoteCheck))
	opts = append(opts, client.WithStreamManagement(f.SM))
	if r := account.Resourcepart(); r != "" {
		opts = append(opts, client.WithResource(r))
	}
	return opts, nil
}

// Rooms is a repeatable -room flag: occupant JIDs, room@service/nick.
type Rooms []jid.JID

// RegisterRooms defines -room on fs.
func RegisterRooms(fs *flag.FlagSet) *Rooms {
	r := &Rooms{}
	fs.Var(r, "room", "join `room@service/nick` (repeatable)")
	return r
}

// String implements flag.Value.
func (r *Rooms) String() string {
	s := make([]string, len(*r))
	for i, j := range *r {
		s[i] = j.String()
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (r *Rooms) Set(v string) error {
	// package flag says which flag and value: the error says what is wrong.
	j, err := parseJID("room", v)
	if err != nil {
		return errors.New(err.(*FlagError).Problem)
	}
	switch {
	case j.Localpart() == "":
		return errors.New("the room's name, before the @, is missing: want room@service/nick")
	case j.Resourcepart() == "":
		return errors.New("the nick, after the /, is missing: want room@service/nick")
	}
	*r = append(*r, j)
	return nil
}

// Password returns $PSAKIT_PASSWORD, or asks for it on the terminal without
// echo (or reads a line from stdin when it is not a terminal).
func Password(stdin *os.File, prompt io.Writer) (string, error) {
	if p, ok := os.LookupEnv(PasswordEnv); ok {
		return p, nil
	}
	fmt.Fprint(prompt, "Password: ")
	defer fmt.Fprintln(prompt)
	if term.IsTerminal(int(stdin.Fd())) {
		b, err := term.ReadPassword(int(stdin.Fd()))
		return string(b), err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
