package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/psakit/psakit/internal/leaktest"
)

// The demo plays XEP-0310's three cases, contacts and room occupants, and
// psakit's own disconnect, to the end and says what happened.
func TestDemo(t *testing.T) {
	leaktest.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, nil, &out, io.Discard); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"STALE          juliet@capulet.lit/balcony   says montague.lit (server-unavailable",
		"restored       juliet@capulet.lit/balcony   montague.lit cleared server-unavailable, now fresh",
		"STALE          benvolio@montague.lit/street says montague.lit (connection-paused",
		"joined         orchard@conference.montague.lit as Romeo",
		"STALE          orchard@conference.montague.lit/Juliet the room says, as conference.montague.lit (server-unavailable: capulet.lit cannot be reached from the room)",
		"Juliet                       online (stale), STALE (server-unavailable)",
		"restored       orchard@conference.montague.lit/Juliet conference.montague.lit cleared server-unavailable, now fresh",
		"psakit's own mark: our stream is down",
		"ROOM STALE     orchard@conference.montague.lit local-disconnected",
		"rejoining      orchard@conference.montague.lit",
		"room fresh     orchard@conference.montague.lit",
		"refreshed      juliet@capulet.lit/balcony",
		"unavailable    nurse@capulet.lit/kitchen",
		"nurse@capulet.lit/kitchen    offline",
		"Done:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}
