package chain

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sandtrail/sandtrail/schema"
)

// benchEvent is the 1.7 KB compliance finding of testdata/bench.
func benchEvent(b *testing.B) []byte {
	b.Helper()
	ev, err := os.ReadFile("../testdata/bench/compliance_1k7.json")
	if err != nil {
		b.Fatal(err)
	}
	return bytes.TrimSpace(ev)
}

// benchTrail returns an NDJSON file of runs×perRun sealed 1.7 KB events
// (about 2 KB each with their link), runs interleaved as on the stream.
func benchTrail(b *testing.B, runs, perRun int) []byte {
	b.Helper()
	ev := benchEvent(b)
	signer := testSigner(b)
	sealers := make([]*Sealer, runs)
	for r := range sealers {
		sealers[r], _ = NewSealer(fmt.Sprintf("run-019ac6e2-4b1d-7f00-8a11-%012d", r), signer)
	}
	var file bytes.Buffer
	for i := range perRun {
		for _, s := range sealers {
			out, err := s.Seal(restamp(b, ev, s.Run(), i+1), i == perRun-1)
			if err != nil {
				b.Fatal(err)
			}
			file.Write(out)
			file.WriteByte('\n')
		}
	}
	return file.Bytes()
}

func BenchmarkCanonical(b *testing.B) {
	ev := benchEvent(b)
	b.Run("1k7/jcs", func(b *testing.B) {
		var dst []byte
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			var err error
			if dst, err = Canonical(dst[:0], ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What a verifier built on encoding/json does: decode, re-encode with
	// sorted keys (equal to JCS for this event: ASCII keys, integers).
	b.Run("1k7/encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			var v any
			d := json.NewDecoder(bytes.NewReader(ev))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSeal compares the sealer's cost per event with the OCSF
// validation the emitter already does for each event.
func BenchmarkSeal(b *testing.B) {
	ev := restamp(b, benchEvent(b), "run-bench", 1)
	b.Run("1k7/seal", func(b *testing.B) {
		s, _ := NewSealer("run-bench", nil)
		var dst []byte
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			s.Restore(State{})
			var err error
			if dst, err = s.AppendSeal(dst[:0], ev, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1k7/validate", func(b *testing.B) {
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			if err := schema.Validate(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerify measures verification of an NDJSON file of 10,000
// sealed 1.7 KB events (100 runs of 100), read line by line as `sandtrail
// verify` reads a file. One op is the whole file; events/s is the
// throughput on one core.
func BenchmarkVerify(b *testing.B) {
	const runs, perRun = 100, 100
	file := benchTrail(b, runs, perRun)
	lines := func(f func(line []byte)) {
		sc := bufio.NewScanner(bytes.NewReader(file))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			f(sc.Bytes())
		}
	}
	var cpu0 time.Duration
	start := func() { cpu0 = cpuTime() }
	report := func(b *testing.B) {
		events := float64(runs*perRun) * float64(b.N)
		b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
		// Throughput per core: events per second of CPU time used by the
		// process (the GC's included), whatever else runs on the machine.
		b.ReportMetric(events/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
		b.SetBytes(int64(len(file)))
	}
	b.Run("ndjson-1k7/verify", func(b *testing.B) {
		start()
		for b.Loop() {
			v := NewVerifier(VerifierConfig{PublicKey: testSigner(b).PublicKey()})
			n := int64(0)
			lines(func(line []byte) { n++; v.Add(line, Origin{"bench.ndjson", n}) })
			if rep := v.Report(); !rep.OK || len(rep.Runs) != runs {
				b.Fatalf("report not OK: %+v", rep.Runs[0])
			}
		}
		report(b)
	})
	// The floor: hashing each line as it is, no parsing.
	b.Run("ndjson-1k7/sha256", func(b *testing.B) {
		start()
		for b.Loop() {
			lines(func(line []byte) { _ = sha256.Sum256(line) })
		}
		report(b)
	})
	// A verifier built on encoding/json: decode, re-encode, hash.
	b.Run("ndjson-1k7/encoding-json", func(b *testing.B) {
		start()
		for b.Loop() {
			lines(func(line []byte) {
				var v any
				d := json.NewDecoder(bytes.NewReader(line))
				d.UseNumber()
				if err := d.Decode(&v); err != nil {
					b.Fatal(err)
				}
				out, _ := json.Marshal(v)
				_ = sha256.Sum256(out)
			})
		}
		report(b)
	})
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
