// Command localnet starts two real XMPP servers on loopback to try psawatch
// and mucbot against: Prosody 0.12 with psakit's mod_psa, montague.lit (with
// the MUC service conference.montague.lit) and capulet.lit, federating with
// each other. It registers a few accounts with mutual roster subscriptions,
// keeps some of them online, prints how to connect, and then reads commands
// that play outages: cut and heal the link between the servers, kill and
// restart a server, pause and resume a user's session (XEP-0198).
//
//	go run ./examples/localnet
//
// It needs Prosody (Debian: apt-get install prosody); it never uses the
// system's configuration, only loopback addresses and free ports, never the
// default XMPP ports, and keeps everything in a temporary directory that it
// removes when it stops: on quit, Ctrl-C, or the end of its input.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localnet:", err)
		os.Exit(1)
	}
}

// run starts the network, prints the instructions and runs commands from in
// until quit, the end of in, or ctx's end.
func run(ctx context.Context, in io.Reader, out io.Writer) error {
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
