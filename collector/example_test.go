package collector_test

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
)

// A sink package decodes its section of the collector file with
// DecodeStrict, which names the file, line, column and field of each
// problem.
func ExampleDecodeStrict() {
	type Config struct {
		URL       string        `yaml:"url"`
		TokenFile string        `yaml:"token_file"`
		Timeout   time.Duration `yaml:"timeout"`
	}
	var node yaml.Node
	_ = yaml.Unmarshal([]byte("url: https://siem.example.com\ntoken: s3cret\ntimeout: 30\n"), &node)
	var cfg Config
	fmt.Println(collector.DecodeStrict(&node, "collector.yaml", &cfg))
	// Output:
	// collector.yaml:2:1: token: secrets are never written inline: use token_file
	// collector.yaml:3:10: timeout: want a duration with a unit, such as 30s or 5m, got the integer 30
}

// A filter becomes the consumer's filter subjects: the server does the
// filtering.
func ExampleFilter_Subjects() {
	f := collector.Filter{Classes: []int{2004}, MinSeverity: 4}
	subjects, _ := f.Subjects()
	fmt.Println(f)
	fmt.Println(subjects)
	// Output:
	// classes 2004; severity >= 4
	// [sandtrail.events.2004.4.> sandtrail.events.2004.5.> sandtrail.events.2004.6.> sandtrail.events.2004.99.>]
}
