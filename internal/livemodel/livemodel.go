// Package livemodel reaches the live roster model behind a client.Tracker,
// which package client hands to no one else (applications get a read-only
// roster.View). It exists for psakit's own benchmarks, which fill a roster
// of a million entries without a server before they time the stream; no
// other code may use it.
package livemodel

import "github.com/psakit/psakit/roster"

// Roster returns the live roster model of tracker, a *client.Tracker. It
// is set when package client is initialised, and never changed after: it
// is nil in a program that does not import package client.
var Roster func(tracker any) *roster.Model
