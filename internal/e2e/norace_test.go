//go:build !race

package e2e_test

// raceEnabled reports whether the tests run with the race detector: the
// programs they build get it too.
const raceEnabled = false
