package client

import (
	"errors"
	"fmt"
	"reflect"
)

// saslCondition returns the condition of the SASL failure in err's chain
// (such as "not-authorized" or "temporary-auth-failure"), or "" when there
// is none.
//
// mellium reports a <failure/> as a value of an internal type
// (mellium.im/xmpp/internal/saslerr.Error) that errors.As cannot name, and
// whose Error method returns the server's free text when there is one, so
// the text tells nothing reliable. The condition is an exported field of
// that type, and its String method returns the condition's element name:
// read it by reflection. TestTransientSASLFailure pins this against the mellium
// in go.mod; were the type to change, the condition would read as "" and
// the failure would count as final, never as a reason to retry.
func saslCondition(err error) string {
	for _, e := range errorChain(err) {
		v := reflect.ValueOf(e)
		if v.Kind() != reflect.Struct {
			continue
		}
		t := v.Type()
		if t.Name() != "Error" || t.PkgPath() != "mellium.im/xmpp/internal/saslerr" {
			continue
		}
		f := v.FieldByName("Condition")
		if !f.IsValid() || !f.CanInterface() {
			return ""
		}
		if s, ok := f.Interface().(fmt.Stringer); ok {
			return s.String()
		}
		return ""
	}
	return ""
}

// errorChain returns err and every error it wraps, depth first.
func errorChain(err error) []error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if e == nil || len(out) > 64 {
			return
		}
		out = append(out, e)
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		default:
			walk(errors.Unwrap(e))
		}
	}
	walk(err)
	return out
}

// transientSASL reports whether a SASL failure condition says "try again
// later" rather than "no": RFC 6120 §6.5.13 temporary-auth-failure, and
// aborted and malformed-request, which a server restarting in the middle of
// the exchange produces.
func transientSASL(cond string) bool {
	switch cond {
	case "temporary-auth-failure", "aborted", "malformed-request":
		return true
	}
	return false
}
