package mucwatch

import "mellium.im/xmpp/jid"

// RecountBytes estimates anew the memory of the occupants of room: what
// Room.Bytes must say.
func RecountBytes(m *Model, room jid.JID) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.rooms[room.Bare().String()]
	if r == nil {
		return 0
	}
	n := 0
	for _, o := range r.occupants {
		n += o.contentBytes() + marksBytes(o.Marks)
	}
	return n
}
