// Command localnet starts two real XMPP servers on loopback to try psawatch
// and mucbot against: Prosody 0.12 with psakit's mod_psa, montague.lit (with
// the MUC service conference.montague.lit) and capulet.lit, federating with
// each other. It registers a few accounts with mutual roster subscriptions,
// keeps some of them online, prints how to connect, and then reads commands
// that play outages: cut and heal the link between the servers, kill and
// restart a server, pause and resume a user's session (XEP-0198).
//
//	go run ./cmd/localnet
//
// It needs Prosody (Debian: apt-get install prosody); it never uses the
// system's configuration, only loopback addresses and free ports, never the
// default XMPP ports, and keeps everything in a temporary directory that it
// removes when it stops: on quit, Ctrl-C, or the end of its input.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/psakit/psakit/client/clientflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	code := clientflag.ExitCode(err)
	if code == 1 {
		fmt.Fprintln(os.Stderr, "localnet:", err)
	}
	os.Exit(code)
}

// about is what -h says.
const about = `localnet starts two real XMPP servers on loopback to try psawatch and
mucbot against: Prosody with psakit's mod_psa, montague.lit (with the MUC
service conference.montague.lit) and capulet.lit, federating with each
other, with accounts registered and some of them online. It prints the
ports and the exact psawatch and mucbot commands (their password, given in
PSAKIT_PASSWORD, is printed too), then reads commands that play outages:
cut and heal the link between the servers, kill and restart a server, pause
and resume a user's session. Type help for the list. It stops, removing all
its files, on quit, Ctrl-C or the end of its input.

It needs Prosody (Debian: apt-get install prosody), never uses the system's
configuration, and listens only on loopback addresses and free ports.

Usage:

  go run ./cmd/localnet
`

// run parses args, starts the network, prints the instructions and runs
// commands from in until quit, the end of in, or ctx's end.
func run(ctx context.Context, args []string, in io.Reader, out, stderr io.Writer) error {
	fs := flag.NewFlagSet("localnet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := clientflag.Parse(fs, about, args); err != nil {
		return err
	}
	fmt.Fprintln(out, "localnet: starting montague.lit and capulet.lit...")
	l, err := start(ctx, out)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "localnet: stopping the servers and removing their files.")
		l.close()
	}()
	fmt.Fprintln(out)
	fmt.Fprint(out, l.instructions())
	fmt.Fprintln(out)

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		fmt.Fprint(out, "localnet> ")
		select {
		case <-ctx.Done():
			fmt.Fprintln(out)
			return nil
		case line, ok := <-lines:
			if !ok {
				fmt.Fprintln(out)
				return nil
			}
			quit, err := l.do(ctx, line)
			if err != nil {
				fmt.Fprintln(out, "error:", err)
			}
			if quit {
				return nil
			}
		}
	}
}
