package main

import (
	"strings"
	"testing"
)

func TestRatios(t *testing.T) {
	in := `goos: linux
BenchmarkValidate/small/fast-2   	  1000	      100.0 ns/op	 10 MB/s	       0 B/op	       0 allocs/op
BenchmarkValidate/small/slow-2   	  1000	     1000 ns/op	 1 MB/s	       64 B/op	       2 allocs/op
BenchmarkValidate/small/fast-2   	  1000	      300.0 ns/op	 10 MB/s	       0 B/op	       0 allocs/op
BenchmarkValidate/small/fast-2   	  1000	      200.0 ns/op	 10 MB/s	       0 B/op	       0 allocs/op
PASS
`
	var out strings.Builder
	if err := run(strings.NewReader(in), &out, "slow"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"| Validate/small | fast | 200 | 0 | 0 | 5.0x |", "| Validate/small | slow | 1000 | 64 | 2 | 1.0x |"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if err := run(strings.NewReader("nothing"), &out, "slow"); err == nil {
		t.Error("no error for input without benchmarks")
	}
}
