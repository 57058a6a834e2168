package e2e_test

import (
	"testing"

	"github.com/psakit/psakit/internal/prosodytest"
)

// TestMain runs the tests once per Prosody installation that
// internal/prosodytest selects (PSAKIT_PROSODY), e.g. 0.12 and 13.
func TestMain(m *testing.M) { prosodytest.Main(m) }
