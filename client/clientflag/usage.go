package clientflag

import (
	"errors"
	"flag"
	"fmt"
)

// ErrUsage marks a command line that is wrong: an unknown flag, a bad flag
// value, or an argument where none is expected. The usage has been printed;
// the program exits with status 2, as package flag's programs do.
var ErrUsage = errors.New("wrong command line")

// Parse sets fs's usage to about followed by the flags, and parses args. It
// returns flag.ErrHelp for -h (the usage has been printed), and an error
// wrapping ErrUsage for a wrong command line, positional arguments
// included: the examples take none.
func Parse(fs *flag.FlagSet, about string, args []string) error {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), about)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(fs.Output(), "\nFlags:")
			fs.PrintDefaults()
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		// fs has printed the error and the usage.
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return Usage(fs, fmt.Errorf("unexpected argument %q: %s takes none", fs.Arg(0), fs.Name()))
	}
	return nil
}

// Usage prints err, a wrong command line found after parsing, and fs's
// usage, and returns err marked with ErrUsage.
func Usage(fs *flag.FlagSet, err error) error {
	fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
	fs.Usage()
	if errors.Is(err, ErrUsage) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUsage, err)
}

// ExitCode returns the exit status for what a program's run returned: 0 for
// nil and flag.ErrHelp, 2 for ErrUsage, 1 for any other error, which the
// program prints.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	}
	return 1
}
