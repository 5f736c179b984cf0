package bus_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sandtrail/sandtrail/bus"
)

func TestEventFilterSubjects(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    bus.EventFilter
		want []string
		err  string
	}{
		{"zero: everything", bus.EventFilter{}, []string{"sandtrail.events.>"}, ""},
		{"classes, sorted, once each", bus.EventFilter{Classes: []int{2004, 2003, 2004}},
			[]string{"sandtrail.events.2003.>", "sandtrail.events.2004.>"}, ""},
		{"minimum severity keeps 99 Other", bus.EventFilter{MinSeverity: 5},
			[]string{"sandtrail.events.*.5.>", "sandtrail.events.*.6.>", "sandtrail.events.*.99.>"}, ""},
		{"class and severity", bus.EventFilter{Classes: []int{2004}, MinSeverity: 6},
			[]string{"sandtrail.events.2004.6.>", "sandtrail.events.2004.99.>"}, ""},
		{"hosts as tokens", bus.EventFilter{Hosts: []string{"A.b", "a_b"}}, []string{"sandtrail.events.*.*.a_b"}, ""},
		{"all three", bus.EventFilter{Classes: []int{1007}, MinSeverity: 6, Hosts: []string{"db", "Web-1.example.com"}},
			[]string{"sandtrail.events.1007.6.db", "sandtrail.events.1007.6.web-1_example_com",
				"sandtrail.events.1007.99.db", "sandtrail.events.1007.99.web-1_example_com"}, ""},
		{"class 0", bus.EventFilter{Classes: []int{0}}, nil, "class 0: want a positive class_uid"},
		{"severity 7", bus.EventFilter{MinSeverity: 7}, nil, "minimum severity 7"},
		{"negative severity", bus.EventFilter{MinSeverity: -1}, nil, "minimum severity -1"},
		{"empty host", bus.EventFilter{Hosts: []string{"h", ""}}, nil, "empty host name"},
		{"too many", bus.EventFilter{Classes: seq(1, 50), MinSeverity: 1}, nil, "50 classes x 7 severities x 1 hosts make 350 filter subjects, more than 256: select fewer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f.Subjects()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want the error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			// Every event subject the filter selects matches exactly one
			// filter subject: the server refuses overlapping filters.
			for _, subj := range []string{bus.EventSubject(1007, 6, "db"), bus.EventSubject(2004, 99, "a.b"), bus.EventSubject(2003, 1, "x")} {
				n := 0
				for _, f := range got {
					if bus.Matches(f, subj) {
						n++
					}
				}
				if n > 1 {
					t.Errorf("%s matches %d filter subjects of %q", subj, n, got)
				}
			}
		})
	}
}

func seq(lo, hi int) []int {
	var out []int
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

// A collector sink's filter, or replay's, becomes the consumer's filter
// subjects: the server does the filtering.
func ExampleEventFilter_Subjects() {
	subjects, err := bus.EventFilter{Classes: []int{2004}, MinSeverity: 5, Hosts: []string{"Build-7.ci"}}.Subjects()
	fmt.Println(subjects, err)
	// Output:
	// [sandtrail.events.2004.5.build-7_ci sandtrail.events.2004.6.build-7_ci sandtrail.events.2004.99.build-7_ci] <nil>
}
