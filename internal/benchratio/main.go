// Command benchratio turns `go test -bench` output into a Markdown table of
// medians and ratios against a baseline measured in the same run.
//
// Benchmarks are named Benchmark<Group>/<case>/<engine>; for every case it
// prints each engine's median ns/op, B/op and allocs/op, and the baseline's
// time divided by the engine's (so 10.0x means ten times faster).
//
//	go test ./schema/jsonschema -bench . -benchmem -count 5 | go run ./internal/benchratio -baseline gojsonschema
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	baseline := flag.String("baseline", "", "engine name the ratios are computed against")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

type sample struct{ ns, bytes, allocs []float64 }

var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$`)

func run(r io.Reader, w io.Writer, baseline string) error {
	data := map[string]map[string]*sample{} // case -> engine -> samples
	var cases []string
	engines := map[string]bool{}
	var engineOrder []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := m[1]
		i := strings.LastIndex(name, "/")
		if i < 0 {
			continue
		}
		cs, engine := name[:i], name[i+1:]
		if data[cs] == nil {
			data[cs] = map[string]*sample{}
			cases = append(cases, cs)
		}
		if !engines[engine] {
			engines[engine] = true
			engineOrder = append(engineOrder, engine)
		}
		s := data[cs][engine]
		if s == nil {
			s = &sample{}
			data[cs][engine] = s
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		s.ns = append(s.ns, ns)
		fields := strings.Fields(m[3])
		for j := 0; j+1 < len(fields); j++ {
			v, err := strconv.ParseFloat(fields[j], 64)
			if err != nil {
				continue
			}
			switch fields[j+1] {
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(cases) == 0 {
		return fmt.Errorf("no benchmark lines named Benchmark<group>/<case>/<engine> in the input")
	}
	fmt.Fprintf(w, "| case | engine | ns/op (median) | B/op | allocs/op | %s time / engine time |\n|---|---|---:|---:|---:|---:|\n", baseline)
	for _, cs := range cases {
		base := data[cs][baseline]
		for _, e := range engineOrder {
			s := data[cs][e]
			if s == nil {
				continue
			}
			ratio := "n/a"
			if base != nil {
				ratio = fmt.Sprintf("%.1fx", median(base.ns)/median(s.ns))
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.0f | %s |\n", cs, e, median(s.ns), median(s.bytes), median(s.allocs), ratio)
		}
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
