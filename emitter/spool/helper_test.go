package spool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// The tests re-execute the test binary as a child process: TestMain sees
// helperEnv and runs runHelper instead of the tests.
const helperEnv = "SPOOL_TEST_HELPER"

// Helper parameters, passed in the environment.
const (
	envDir    = "SPOOL_TEST_DIR"
	envPrefix = "SPOOL_TEST_PREFIX" // record prefix of an appender
	envCount  = "SPOOL_TEST_COUNT"  // records to append; 0: until killed
	envSplit  = "SPOOL_TEST_SPLIT"  // pause (ms) inside every write, to tear records
	envClose  = "SPOOL_TEST_CLOSE"  // "1": Close the spool before exiting
	envSeg    = "SPOOL_TEST_SEGMENT_BYTES"
)

// runHelper runs a child mode and returns the exit status.
//
//	append: append batches of 12 records "<prefix> <seq> <padding>"; after
//	        each Append returns, write the number of records appended to fd 3
//	        (and "split" in the middle of every write, with a split pause).
//	        With a count, then wait for stdin to close and exit (Close first
//	        if asked).
//	drain:  Next and Ack until stdin closes, printing ("publishing") each
//	        record before its Ack.
//	open:   print Open's error, exit 1 if there is one.
func runHelper(mode string) int {
	cfg := Config{Dir: os.Getenv(envDir), ClaimInterval: 20 * time.Millisecond}
	cfg.SegmentBytes, _ = strconv.ParseInt(os.Getenv(envSeg), 10, 64)
	s, _, err := Open(cfg)
	if mode == "open" {
		if err != nil {
			fmt.Println(err)
			return 1
		}
		return exitStatus(s.Close())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch mode {
	case "append":
		return exitStatus(helperAppend(s))
	case "drain":
		return exitStatus(helperDrain(s))
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func exitStatus(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// record builds the seq-th record of a writer: about 1.7 KB, varying.
func record(prefix string, seq int) []byte {
	pad := strings.Repeat("x", 1500+(seq*37)%400)
	return fmt.Appendf(nil, "%s %06d %s", prefix, seq, pad)
}

func helperAppend(s *Spool) error {
	prefix := os.Getenv(envPrefix)
	count, _ := strconv.Atoi(os.Getenv(envCount))
	status := os.NewFile(3, "status")
	if ms, _ := strconv.Atoi(os.Getenv(envSplit)); ms > 0 {
		s.testSplit = func() {
			fmt.Fprintln(status, "split") // half a batch is written
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
	}
	for seq := 0; count == 0 || seq < count; {
		var batch [][]byte
		for range 12 {
			batch = append(batch, record(prefix, seq+len(batch)))
		}
		if err := s.Append(context.Background(), batch...); err != nil {
			return err
		}
		seq += len(batch)
		if _, err := fmt.Fprintln(status, seq); err != nil {
			return err
		}
	}
	io.Copy(io.Discard, os.Stdin)
	if os.Getenv(envClose) == "1" {
		return s.Close()
	}
	return nil // exit holding the segments, like a crash
}

func helperDrain(s *Spool) error {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // owned by this child process, which exits after Close
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	out := bufio.NewWriter(os.Stdout)
	for {
		recs, err := s.Next(ctx, 10)
		if errors.Is(err, context.Canceled) {
			return s.Close()
		}
		if err != nil {
			return err
		}
		for _, r := range recs { // "publish", then acknowledge
			fmt.Fprintf(out, "%s\n", r.Data)
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if err := s.Ack(positions(recs)...); err != nil {
			return err
		}
	}
}
