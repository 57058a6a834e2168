package main

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `goos: linux
BenchmarkStream/peer=a-2   100  1000 ns/op  2000 cpu-ns/op  50 B/op  3 allocs/op
BenchmarkStream/peer=b-2   100  1500 ns/op  50 B/op  4 allocs/op
BenchmarkStream/peer=a-2   100  1100 ns/op  2100 cpu-ns/op  50 B/op  3 allocs/op
PASS`
	order, runs, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != "BenchmarkStream/peer=a" || order[1] != "BenchmarkStream/peer=b" {
		t.Fatalf("order %q", order)
	}
	a := runs["BenchmarkStream/peer=a"]
	if len(a) != 2 || a[1].ns != 1100 || a[1].cpu != 2100 || a[0].allocs != 3 || a[0].bytes != 50 {
		t.Fatalf("runs %+v", a)
	}
	if short("BenchmarkProto/peer=x") != "x" || median([]float64{3, 1, 2}) != 2 || median([]float64{1, 2, 3, 4}) != 2.5 {
		t.Error("helpers")
	}
	if got := spread([]float64{2, 1, 3}, "%.0f"); got != "2 [1-3]" {
		t.Errorf("spread %q", got)
	}
}
