package bus_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sandtrail/sandtrail/bus"
)

func TestSubjects(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"event", bus.EventSubject(2004, 4, "web-1"), "sandtrail.events.2004.4.web-1"},
		{"event fqdn", bus.EventSubject(2003, 1, "Web-1.Example.COM"), "sandtrail.events.2003.1.web-1_example_com"},
		{"event empty host", bus.EventSubject(1007, 2, ""), "sandtrail.events.1007.2.unknown"},
		{"event wildcard host", bus.EventSubject(5019, 99, "a*b>c"), "sandtrail.events.5019.99.a_b_c"},
		{"dlq", bus.DLQSubject("schema_violation"), "sandtrail.dlq.schema_violation"},
		{"dlq dotted", bus.DLQSubject("bad.json"), "sandtrail.dlq.bad_json"},
		{"dlq empty", bus.DLQSubject(""), "sandtrail.dlq.unknown"},
		{"filter class", bus.FilterClass(2004), "sandtrail.events.2004.>"},
		{"filter class severity", bus.FilterClassSeverity(2004, 4), "sandtrail.events.2004.4.>"},
		{"events wildcard", bus.EventsWildcard, "sandtrail.events.>"},
		{"dlq wildcard", bus.DLQWildcard, "sandtrail.dlq.>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"host", "host"},
		{"HOST-01_a", "host-01_a"},
		{"web.example.com", "web_example_com"},
		{"a b\tc\nd", "a_b_c_d"},
		{"*", "_"},
		{">", "_"},
		{"$SYS", "_sys"},
		{"héte", "h_te"},  // one '_' per rune, not per byte
		{"a\xffb", "a_b"}, // invalid UTF-8
		{"a\x00b", "a_b"}, // control character
		{"", "unknown"},
		{strings.Repeat("x", 300), strings.Repeat("x", 253)},
	}
	for _, tt := range tests {
		got := bus.Token(tt.in)
		if got != tt.want {
			t.Errorf("Token(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzToken checks that every host gives exactly one valid subject token.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "web-1.example.com", "a*b>c", "\xff", " \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		tok := bus.Token(host)
		if tok == "" || len(tok) > 253 {
			t.Fatalf("Token(%q) = %q: empty or too long", host, tok)
		}
		for _, r := range tok {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("Token(%q) = %q: contains %q", host, tok, r)
			}
		}
		subj := bus.EventSubject(1, 2, host)
		if n := strings.Count(subj, "."); n != 4 {
			t.Fatalf("EventSubject(1, 2, %q) = %q: %d dots, want 4", host, subj, n)
		}
	})
}

func ExampleEventSubject() {
	fmt.Println(bus.EventSubject(2004, 4, "build-07.ci.example.com"))
	fmt.Println(bus.FilterClassSeverity(2004, 4))
	fmt.Println(bus.DLQSubject("schema_violation"))
	// Output:
	// sandtrail.events.2004.4.build-07_ci_example_com
	// sandtrail.events.2004.4.>
	// sandtrail.dlq.schema_violation
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"sandtrail.events.>", "sandtrail.events.2004.4.h", true},
		{"sandtrail.events.>", "sandtrail.events", false},
		{"sandtrail.events.2004.>", "sandtrail.events.2004.4.h", true},
		{"sandtrail.events.2004.>", "sandtrail.events.2003.4.h", false},
		{"sandtrail.events.*.4.>", "sandtrail.events.2004.4.h", true},
		{"sandtrail.events.*.*.h", "sandtrail.events.2004.4.h", true},
		{"sandtrail.events.*.*.h", "sandtrail.events.2004.4.g", false},
		{"sandtrail.events.*.*.h", "sandtrail.events.2004.4", false},
		{"sandtrail.events.*.*", "sandtrail.events.2004.4.h", false},
		{"sandtrail.events.2004.4.h", "sandtrail.events.2004.4.h", true},
		{"sandtrail.dlq.>", "sandtrail.events.2004.4.h", false},
		{">", "a", true},
		{"*", "a.b", false},
	} {
		if got := bus.Matches(tc.filter, tc.subject); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tc.filter, tc.subject, got, tc.want)
		}
	}
}
