package clientflag_test

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/psakit/psakit/client/clientflag"
)

// A bot's command line: the connection flags and its rooms. With what
// Connection returns the program calls client.Dial.
func Example() {
	fs := flag.NewFlagSet("mybot", flag.ContinueOnError)
	conn := clientflag.Register(fs)
	rooms := clientflag.RegisterRooms(fs)
	args := []string{"-jid", "bot@montague.lit/desk", "-room", "orchard@conference.montague.lit/bot", "-remote-check", "1m"}
	if err := clientflag.Parse(fs, "mybot sits in rooms.\n", args); err != nil {
		fmt.Println(err)
		return
	}
	account, err := conn.Account()
	if err != nil {
		fmt.Println(err)
		return
	}
	opts, err := conn.Options(account)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("account:", account)
	fmt.Println("rooms:", rooms)
	fmt.Println("remote checks every", conn.RemoteCheck, "with", len(opts), "client options")
	// Output:
	// account: bot@montague.lit/desk
	// rooms: orchard@conference.montague.lit/bot
	// remote checks every 1m0s with 5 client options
}

// A wrong value is a *FlagError that says what is wrong in words; the
// program exits with status 2.
func ExampleFlagError() {
	fs := flag.NewFlagSet("mybot", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse prints the usage for a wrong command line
	conn := clientflag.Register(fs)
	if err := clientflag.Parse(fs, "mybot sits in rooms.\n", []string{"-jid", "montague.lit"}); err != nil {
		fmt.Println(err)
		return
	}
	_, err := conn.Account()
	var fe *clientflag.FlagError
	fmt.Println(errors.As(err, &fe), fe.Flag)
	fmt.Println(err)
	fmt.Println("exit status", clientflag.ExitCode(err))
	// Output:
	// true jid
	// -jid "montague.lit": an account JID has a local part: user@domain, such as romeo@montague.lit
	// exit status 2
}
