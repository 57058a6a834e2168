package roster

// WithShrinkAt makes a model shrink its storage from the given sizes on
// (slots, arena bytes), so that tests exercise the rebuild with a few
// entries.
func WithShrinkAt(slots, bytes int) Option {
	return func(m *Model) { m.shrinkSlots, m.shrinkBytes = slots, bytes }
}
