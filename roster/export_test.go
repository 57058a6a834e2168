package roster

// WithShrinkAt makes a model shrink its storage from the given sizes on
// (slots, arena bytes), so that tests exercise the rebuild with a few
// entries.
func WithShrinkAt(slots, bytes int) Option {
	return Option{func(m *Model) { m.st.shrinkSlots, m.st.shrinkBytes = slots, bytes }}
}

// WithHashBits keeps only the low bits of the index's hashes, so that bare
// JIDs collide and tests exercise the chains of equal hashes.
func WithHashBits(bits int) Option {
	return Option{func(m *Model) { m.st.hashMask = 1<<bits - 1 }}
}

// RecountBytes counts, from the records themselves, the block bytes of
// every resource's records and of the strangers' ones: what Stats.Bytes and
// Stats.StrangerBytes must say.
func RecountBytes(m *Model) (total, strangers int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	bare := m.account.Bare().String()
	for ci := range m.st.allContacts() {
		c := m.st.contact(ci)
		for ri := range m.st.resourcesOf(ci) {
			n := m.st.resource(ri).blockBytes()
			total += n
			if !c.inRoster && string(m.st.get(c.key)) != bare {
				strangers += n
			}
		}
	}
	return total, strangers
}
