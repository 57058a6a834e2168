package client

import "time"

// WithRemoteTimeout shortens RemoteCheckTimeout, so that a test of a
// silent domain ends in time.
func WithRemoteTimeout(d time.Duration) TrackerOption {
	return func(c *config) { c.remoteTimeout = d }
}
