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

// RecountBytes counts, from the records themselves, the block bytes of
// every resource's records and of the strangers' ones: what Stats.Bytes and
// Stats.StrangerBytes must say.
func RecountBytes(m *Model) (total, strangers int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	bare := m.account.Bare().String()
	for i := range m.contacts {
		c := &m.contacts[i]
		if !c.live {
			continue
		}
		for ri := c.first; ri != 0; ri = m.resources[ri-1].next {
			n := m.resources[ri-1].blockBytes()
			total += n
			if !c.inRoster && string(m.arena.bytes(c.key)) != bare {
				strangers += n
			}
		}
	}
	return total, strangers
}
