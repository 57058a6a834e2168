package clientflag

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// FlagError is a flag value that is wrong: which flag, the value given, and
// what is wrong with it. It matches ErrUsage with errors.Is.
type FlagError struct {
	Flag    string // without the dash: "jid"
	Value   string
	Problem string // what is wrong, for a person to read
	Err     error  // the parser's error, if any
}

func (e *FlagError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("-%s: %s", e.Flag, e.Problem)
	}
	return fmt.Sprintf("-%s %q: %s", e.Flag, e.Value, e.Problem)
}

// Unwrap returns the parser's error.
func (e *FlagError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUsage.
func (e *FlagError) Is(target error) bool { return target == ErrUsage }

// parseJID parses v, the value of -flag, as a JID. When v is none it says
// which part is wrong, and why, in words: mellium's errors name neither.
func parseJID(flag, v string) (jid.JID, error) {
	j, err := jid.Parse(v)
	if err != nil {
		return jid.JID{}, &FlagError{Flag: flag, Value: v, Problem: jidProblem(v, err), Err: err}
	}
	return j, nil
}

// placeholder is a valid domain to check a local or resource part alone.
const placeholder = "example.net"

// jidProblem says what is wrong with v, which jid.Parse refused with err.
// A JID is local@domain/resource: the resource is what follows the first
// "/", the local part what precedes the first "@" before it (RFC 7622).
func jidProblem(v string, err error) string {
	if !utf8.ValidString(v) {
		return "it is not valid UTF-8"
	}
	rest, resource, hasResource := strings.Cut(v, "/")
	local, domain, hasLocal := strings.Cut(rest, "@")
	if !hasLocal {
		local, domain = "", rest
	}
	switch {
	case hasLocal && local == "":
		return "the local part, before the @, is empty"
	case domain == "":
		return "the domain part, after the @, is empty"
	case hasResource && resource == "":
		return "the resource part, after the /, is empty"
	}
	if local != "" {
		if _, e := jid.New(local, placeholder, ""); e != nil {
			return fmt.Sprintf("the local part %q is not allowed: it may not hold spaces, control characters or any of \" & ' / : < > @ (%v)", local, e)
		}
	}
	if _, e := jid.New("", domain, ""); e != nil {
		return fmt.Sprintf("the domain part %q is not a valid domain name or IP address (%v)", domain, e)
	}
	if hasResource {
		if _, e := jid.New("", placeholder, resource); e != nil {
			return fmt.Sprintf("the resource part %q is not allowed: it may not hold control characters (%v)", resource, e)
		}
	}
	// Each part passes alone (a JID too long as a whole, say).
	return err.Error()
}
