package client

import "sync/atomic"

// gated returns cb with every callback skipped once off is set: what
// Client.Close and Tracker.Close set when a callback outlived CloseTimeout, so that the
// dispatcher ends as soon as that callback returns instead of delivering the
// rest of its queue. nil callbacks stay nil.
func gated(off *atomic.Bool, cb callbacks) callbacks {
	return callbacks{
		roster:   gate1(off, cb.roster),
		room:     gate1(off, cb.room),
		action:   gate1(off, cb.action),
		conn:     gate1(off, cb.conn),
		verify:   gate1(off, cb.verify),
		presence: gate1(off, cb.presence),
		message:  gate1(off, cb.message),
		overflow: gate1(off, cb.overflow),
		unacked:  gate2(off, cb.unacked),
	}
}

func gate1[E any](off *atomic.Bool, f func(E)) func(E) {
	if f == nil {
		return nil
	}
	return func(e E) {
		if !off.Load() {
			f(e)
		}
	}
}

func gate2[A, B any](off *atomic.Bool, f func(A, B)) func(A, B) {
	if f == nil {
		return nil
	}
	return func(a A, b B) {
		if !off.Load() {
			f(a, b)
		}
	}
}
