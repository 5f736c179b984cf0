package spool

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
)

// TestBlockSeesSpaceFreedElsewhere: under Block, an Append waits for space
// freed by another owner of the directory (here a second Spool, as another
// process would be), which it notices when it measures the directory again
// after ClaimInterval.
func TestBlockSeesSpaceFreedElsewhere(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		rec := bytes.Repeat([]byte("o"), 1000)
		other, _, err := Open(Config{Dir: dir, MaxBytes: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		for {
			if err := other.Append(ctx, rec); errors.Is(err, ErrFull) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		s, _, err := Open(Config{Dir: dir, MaxBytes: 64 << 10, Full: Block})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		done := make(chan error, 1) // the blocked Append's result
		go func() { done <- s.Append(ctx, rec) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Append into a full directory returned %v, want it to block", err)
		default:
		}
		recs, err := other.Next(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Ack(positions(recs)...); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil { // after ClaimInterval of fake time
			t.Fatalf("blocked Append: %v", err)
		}
	})
}
