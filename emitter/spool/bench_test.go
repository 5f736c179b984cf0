package spool

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// benchAppend measures Append of batches of size records of 1.7 KB and
// reports the 50th and 99th percentile latencies.
func benchAppend(b *testing.B, size int, parallel bool) {
	s, _ := open(b, Config{Dir: b.TempDir(), MaxBytes: 1 << 40})
	batch := make([][]byte, size)
	for i := range batch {
		batch[i] = bytes.Repeat([]byte("e"), 1700)
	}
	ctx := context.Background()
	b.SetBytes(int64(size * 1700))
	b.ReportAllocs()
	var lat []time.Duration
	if !parallel {
		lat = make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if err := s.Append(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
	} else {
		b.SetParallelism(4) // 4 goroutines per CPU, like concurrent launches
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Append(ctx, batch...); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	st := s.Stats()
	b.ReportMetric(float64(st.Syncs)/float64(b.N), "syncs/op")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	}
}

func BenchmarkAppend(b *testing.B) {
	b.Run("batch12", func(b *testing.B) { benchAppend(b, 12, false) })
	b.Run("single", func(b *testing.B) { benchAppend(b, 1, false) })
	b.Run("batch12-parallel", func(b *testing.B) { benchAppend(b, 12, true) })
	b.Run("single-parallel", func(b *testing.B) { benchAppend(b, 1, true) })
}

// BenchmarkFdatasync is the floor under Append: write 12 records' worth
// of bytes to a plain file and fdatasync it.
func BenchmarkFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 12*1716)
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := syncData(f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDrain measures Next and Ack of 1.7 KB records, 100 at a time.
func BenchmarkDrain(b *testing.B) {
	s, _ := open(b, Config{Dir: b.TempDir(), MaxBytes: 1 << 40})
	ctx := context.Background()
	rec := bytes.Repeat([]byte("e"), 1700)
	batch := slices.Repeat([][]byte{rec}, 100)
	b.SetBytes(100 * 1700)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := s.Append(ctx, batch...); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		recs, err := s.Next(ctx, 100)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(positions(recs)...); err != nil {
			b.Fatal(err)
		}
	}
}
