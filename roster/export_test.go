package roster

// WithShrinkAt makes a model shrink its storage from the given sizes on
// (slots, arena bytes), so that tests exercise the rebuild with a few
// entries.
func WithShrinkAt(slots, bytes int) Option {
	return func(m *Model) { m.shrinkSlots, m.shrinkBytes = slots, bytes }
}

// WithHashBits keeps only the low bits of the index's hashes, so that bare
// JIDs collide and tests exercise the chains of equal hashes.
func WithHashBits(bits int) Option {
	return func(m *Model) { m.hashMask = 1<<bits - 1 }
}
