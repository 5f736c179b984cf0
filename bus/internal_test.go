package bus

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 2 * time.Second
	tests := []struct {
		attempt int
		full    time.Duration // before jitter
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{5, 1600 * time.Millisecond},
		{6, 2 * time.Second},
		{1000, 2 * time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			got := backoff(tt.attempt, lo, hi)
			if got < tt.full/2 || got > tt.full {
				t.Fatalf("backoff(%d): got %s, want within [%s, %s]", tt.attempt, got, tt.full/2, tt.full)
			}
			seen[got] = true
		}
		if len(seen) < 2 {
			t.Errorf("backoff(%d): always %v, want jitter", tt.attempt, seen)
		}
	}
}

func TestValidSubject(t *testing.T) {
	for s, want := range map[string]bool{
		"sandtrail.events.>": true,
		"a.*.c":              true,
		">":                  true,
		"":                   false,
		"a..b":               false,
		"a.>.b":              false,
		"a.b*":               false,
		"a b":                false,
		".a":                 false,
	} {
		if got := validSubject(s); got != want {
			t.Errorf("validSubject(%q): got %v, want %v", s, got, want)
		}
	}
}
