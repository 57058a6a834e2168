package mucwatch_test

import (
	"testing"

	"github.com/psakit/psakit/mucwatch"
	"github.com/psakit/psakit/presence"
)

// BenchmarkOccupantPresence measures one occupant presence in a room of
// 10,000: an occupant changes its show, and the model reports the update.
// Decoding is not measured.
func BenchmarkOccupantPresence(b *testing.B) {
	m, _ := newModel(b)
	joinBig(b, m, bigRoom)
	ps := [2][]*presence.Presence{
		bigPresences(b, bigRoom, `<show>away</show>`),
		bigPresences(b, bigRoom, `<show>chat</show>`),
	}
	dst := make([]mucwatch.Event, 0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ok bool
		dst, ok = m.AppendPresence(dst[:0], ps[(i/bigRoom)%2][i%bigRoom])
		if !ok || len(dst) != 1 {
			b.Fatalf("%v %+v", ok, dst)
		}
	}
}

// BenchmarkMarkStaleBurst measures the burst an outage causes: the
// account's server loses its link to the MUC service and re-sends all
// 10,000 occupants of a room annotated, and our own occupant. One op is the
// whole burst; the link coming back is applied between ops, untimed.
func BenchmarkMarkStaleBurst(b *testing.B) {
	m, _ := newModel(b)
	joinBig(b, m, bigRoom)
	down := append(bigPresences(b, bigRoom, ann(ownSrv, "server-unavailable")), avail(b, "romeo", x(moderator, 110), ann(ownSrv, "server-unavailable")))
	up := append(bigPresences(b, bigRoom, ann(ownSrv, "")), avail(b, "romeo", x(moderator, 110), ann(ownSrv, "")))
	dst := make([]mucwatch.Event, 0, bigRoom+2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst = dst[:0]
		for _, p := range down {
			dst, _ = m.AppendPresence(dst, p)
		}
		b.StopTimer()
		if len(dst) != bigRoom+2 || m.Stats().StaleOccupants != bigRoom+1 || m.Stats().StaleRooms != 1 {
			b.Fatalf("%d events, %+v", len(dst), m.Stats())
		}
		dst = dst[:0]
		for _, p := range up {
			dst, _ = m.AppendPresence(dst, p)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/bigRoom, "ns/presence")
}
