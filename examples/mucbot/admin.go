package main

import (
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/jid"
)

// admins is the -admin flag: the accounts that may ask for !status in
// direct chat, which tells about every room. A bare JID admits every
// resource of the account, a full JID that resource only. It is repeatable
// and takes lists separated by commas.
type admins []jid.JID

// String implements flag.Value.
func (a *admins) String() string {
	s := make([]string, len(*a))
	for i, j := range *a {
		s[i] = j.String()
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (a *admins) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		j, err := jid.Parse(item)
		if err != nil {
			return fmt.Errorf("%q is not a JID: %w", item, err)
		}
		if j.Localpart() == "" {
			// A domain would admit every account of it, and a room's
			// occupants are room@service/nick: no wildcards.
			return fmt.Errorf("%q is no account: want user@domain, or user@domain/resource for one resource", item)
		}
		*a = append(*a, j)
	}
	if len(*a) == 0 {
		return errors.New("give at least one account, user@domain")
	}
	return nil
}

// admits reports whether from may ask for everything: the bot's own
// account (its other resources), or an account or resource of -admin.
func (a admins) admits(self, from jid.JID) bool {
	if from.Localpart() == "" {
		return false
	}
	if from.Bare().Equal(self.Bare()) {
		return true
	}
	for _, j := range a {
		if j.Equal(from) || (j.Resourcepart() == "" && j.Equal(from.Bare())) {
			return true
		}
	}
	return false
}
