// Package prosody ships mod_psa, the server half of psakit: a module for
// Prosody 0.12 and 13 that emits XEP-0310 Presence State Annotations.
//
// No server in the world emits annotations by itself, so a client SDK alone
// helps nobody. mod_psa makes Prosody annotate the presences a client already
// received when they may have become stale: a server-to-server link is down
// (<server-unavailable/>), a contact's XEP-0198 session is hibernating
// (<connection-paused/>), or, loaded on a MUC component, an occupant's server
// is unreachable from the room. Clients opt in by listing urn:xmpp:psa in
// their XEP-0115 caps.
//
// Server operators install the Lua file itself; README.md in this directory
// explains how, and every option. This Go package only embeds the module so
// that Go tools and tests can install it:
//
//	err := os.WriteFile(filepath.Join(pluginDir, "mod_psa.lua"), prosody.Module(), 0o644)
package prosody

import _ "embed"

//go:embed mod_psa.lua
var module []byte

// Module returns the Lua source of mod_psa.lua, to be written as
// mod_psa.lua into a directory listed in Prosody's plugin_paths. Each call
// returns a new copy that the caller may modify.
func Module() []byte {
	return append([]byte(nil), module...)
}
