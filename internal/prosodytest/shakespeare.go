package prosodytest

import "testing"

// The network Shakespeare starts.
const (
	Montague   = "montague.lit"
	Capulet    = "capulet.lit"
	Conference = "conference.montague.lit" // the MUC component of montague.lit
	Password   = "pw"                      // every user's
)

// Shakespeare starts montague.lit (users romeo, benvolio, mercutio; the MUC
// component conference.montague.lit) and capulet.lit (juliet, nurse,
// tybalt), with FastPSA options. romeo has juliet, nurse and benvolio in his
// roster and they have him, all with subscription both, so that presence
// flows both ways, over s2s for the capulets. tweak, if not nil, changes the
// specs first.
func Shakespeare(t testing.TB, tweak func(mont, capu *Spec)) *Network {
	t.Helper()
	mont := Spec{
		Domain: Montague,
		MUC:    Conference,
		Users:  map[string]string{"romeo": Password, "benvolio": Password, "mercutio": Password},
		Roster: map[string]map[string]string{
			"romeo": {
				"juliet@" + Capulet:    "both",
				"nurse@" + Capulet:     "both",
				"benvolio@" + Montague: "both",
			},
			"benvolio": {"romeo@" + Montague: "both"},
		},
		PSAOptions: FastPSA(),
	}
	capu := Spec{
		Domain: Capulet,
		Users:  map[string]string{"juliet": Password, "nurse": Password, "tybalt": Password},
		Roster: map[string]map[string]string{
			"juliet": {"romeo@" + Montague: "both"},
			"nurse":  {"romeo@" + Montague: "both"},
		},
		PSAOptions: FastPSA(),
	}
	if tweak != nil {
		tweak(&mont, &capu)
	}
	return Start(t, mont, capu)
}
