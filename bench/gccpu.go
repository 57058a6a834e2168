package bench

import (
	"runtime/metrics"
	"time"
)

// gcCPUMetric is the runtime's estimate of the CPU time spent in the
// garbage collector (marking, assists, pauses), in seconds.
const gcCPUMetric = "/cpu/classes/gc/total:cpu-seconds"

// gcCPU returns the CPU time the garbage collector has used so far, as the
// runtime estimates it. The runtime updates the estimate at the end of each
// cycle, so a window should span several cycles (or force one at its end)
// for the difference of two readings to mean something.
func gcCPU() time.Duration {
	s := []metrics.Sample{{Name: gcCPUMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// gcCycles returns the number of garbage collection cycles completed so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
