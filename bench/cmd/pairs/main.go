// Command pairs reads Go benchmark output made of interleaved rounds (each
// round runs every benchmark once, as scripts/bench.sh does) and prints, per
// benchmark, the per-round ratio of its time to the baseline's time in the
// same round: median and min-max. Pairing by round cancels most of the
// machine's drift, which on a noisy machine is larger than the differences
// being measured.
//
//	go run ./cmd/pairs -base 'BenchmarkStream/peer=mellium-drain' results.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

type sample struct {
	ns, cpu, bytes, allocs float64
}

func main() {
	base := flag.String("base", "BenchmarkStream/peer=mellium-drain", "name of the baseline benchmark (without the -N suffix)")
	flag.Parse()
	var in io.Reader = os.Stdin
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	order, runs, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	baseRuns, ok := runs[*base]
	if !ok {
		fmt.Fprintf(os.Stderr, "pairs: no baseline %q in the input\n", *base)
		os.Exit(1)
	}
	fmt.Printf("| benchmark | rounds | ns/stanza median [min-max] | ratio to %s, paired per round: median [min-max] | CPU ns/stanza median | CPU ratio, paired: median [min-max] | allocs/stanza | B/stanza |\n", short(*base))
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, name := range order {
		rs := runs[name]
		n := min(len(rs), len(baseRuns))
		var ns, ratios, cpu, cpuRatios, allocs, bytes []float64
		for i := range n {
			ns = append(ns, rs[i].ns)
			ratios = append(ratios, rs[i].ns/baseRuns[i].ns)
			if rs[i].cpu > 0 && baseRuns[i].cpu > 0 {
				cpu = append(cpu, rs[i].cpu)
				cpuRatios = append(cpuRatios, rs[i].cpu/baseRuns[i].cpu)
			}
			allocs = append(allocs, rs[i].allocs)
			bytes = append(bytes, rs[i].bytes)
		}
		fmt.Printf("| %s | %d | %s | %s | %.0f | %s | %.1f | %.0f |\n",
			short(name), n,
			spread(ns, "%.0f"), spread(ratios, "%.3f"), median(cpu), spread(cpuRatios, "%.3f"), median(allocs), median(bytes))
	}
}

// short drops the benchmark prefix of a name.
func short(name string) string {
	if i := strings.Index(name, "/peer="); i >= 0 {
		return name[i+len("/peer="):]
	}
	return name
}

// parse returns the benchmark names in order of first appearance and their
// samples in order.
func parse(r io.Reader) ([]string, map[string][]sample, error) {
	runs := map[string][]sample{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		var s sample
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = v
			case "B/op":
				s.bytes = v
			case "allocs/op":
				s.allocs = v
			case "cpu-ns/op":
				s.cpu = v
			}
		}
		if s.ns == 0 {
			continue
		}
		if _, ok := runs[name]; !ok {
			order = append(order, name)
		}
		runs[name] = append(runs[name], s)
	}
	return order, runs, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(v []float64, format string) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf(format+" ["+format+"-"+format+"]", median(v), slices.Min(v), slices.Max(v))
}
