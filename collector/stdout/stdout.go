// Package stdout is the collector's sink for people watching a terminal:
// one readable line per event,
//
//	2025-11-27 18:03:20.123 HIGH     Detection Finding   run=run-019ac6e2… control=seccomp  seccomp degraded: ...
//
// with the event's time (local, or UTC), severity, class, run
// (metadata.correlation_uid), control (compliance.control, else the
// control named in finding_info.uid, else metadata.event_code) and
// message, pulled out with a light decode. Severities are coloured only
// when the output is a terminal and Color allows it; control characters
// in events are escaped, so an event cannot drive the terminal.
//
// An event is Delivered once its line was written to Out; nothing is
// fsynced. Use collector/ndjson to keep events.
package stdout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/sandtrail/sandtrail/collector"
)

// Color modes of [Config].
const (
	ColorAuto   = "auto"   // colour when Out is a terminal
	ColorAlways = "always" // always colour
	ColorNever  = "never"  // never colour
)

// Config configures a [Sink]. The zero value writes to os.Stdout in local
// time, coloured on a terminal.
type Config struct {
	// Color is auto (the default), always or never. cmd/sandtrail turns
	// auto into never when NO_COLOR is set.
	Color string `yaml:"color"`
	// UTC prints times in UTC rather than local time.
	UTC bool `yaml:"utc"`
	// Out receives the lines. Default os.Stdout.
	Out io.Writer `yaml:"-"`
}

// Decode reads the sink's section of a collector configuration file
// strictly (see collector.DecodeStrict). A missing section is the zero
// Config.
func Decode(node *yaml.Node, file string) (Config, error) {
	var c Config
	err := collector.DecodeStrict(node, file, &c)
	return c, err
}

// Sink prints events.
type Sink struct {
	out    io.Writer
	color  bool
	utc    bool
	mu     sync.Mutex
	buf    []byte
	closed bool
}

var _ collector.Sink = (*Sink)(nil)

// New checks cfg.
func New(cfg Config) (*Sink, error) {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	s := &Sink{out: cfg.Out, utc: cfg.UTC}
	switch cfg.Color {
	case "", ColorAuto:
		s.color = isTerminal(cfg.Out)
	case ColorAlways:
		s.color = true
	case ColorNever:
	default:
		return nil, fmt.Errorf("stdout: color %q: want auto, always or never", cfg.Color)
	}
	return s, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Write prints one line per event with a single write to Out.
func (s *Sink) Write(ctx context.Context, batch []collector.Event) []collector.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return collector.RetryAll(len(batch), "stdout: sink closed", 0)
	}
	if err := ctx.Err(); err != nil {
		return collector.RetryAll(len(batch), "stdout: "+err.Error(), 0)
	}
	s.buf = s.buf[:0]
	for _, ev := range batch {
		s.buf = s.appendLine(s.buf, ev)
	}
	if len(s.buf) > 0 {
		if _, err := s.out.Write(s.buf); err != nil {
			return collector.RetryAll(len(batch), "stdout: "+err.Error(), 0)
		}
	}
	if cap(s.buf) > 1<<20 {
		s.buf = nil
	}
	return make([]collector.Outcome, len(batch))
}

// details are the fields the line shows that collector.Event lacks.
type details struct {
	Message  string `json:"message"`
	Metadata struct {
		EventCode string `json:"event_code"`
	} `json:"metadata"`
	Compliance struct {
		Control string `json:"control"`
	} `json:"compliance"`
	FindingInfo struct {
		UID string `json:"uid"`
	} `json:"finding_info"`
}

var severityNames = map[int]string{0: "UNKNOWN", 1: "INFO", 2: "LOW", 3: "MEDIUM", 4: "HIGH", 5: "CRITICAL", 6: "FATAL", 99: "OTHER"}

// ANSI colours by severity: dim, cyan, yellow, red, bold red, reverse red.
var severityColors = map[int]string{1: "\x1b[2m", 2: "\x1b[36m", 3: "\x1b[33m", 4: "\x1b[31m", 5: "\x1b[1;31m", 6: "\x1b[7;31m"}

func (s *Sink) appendLine(b []byte, ev collector.Event) []byte {
	var d details
	_ = json.Unmarshal(ev.Data, &d) // the collector validated it; a field that is missing stays empty
	t := time.UnixMilli(ev.Time)
	if s.utc {
		t = t.UTC()
	}
	b = t.AppendFormat(b, "2006-01-02 15:04:05.000")
	b = append(b, ' ')
	sev, ok := severityNames[ev.SeverityID]
	if !ok {
		sev = fmt.Sprintf("SEV%d", ev.SeverityID)
	}
	if c, ok := severityColors[ev.SeverityID]; ok && s.color {
		b = append(b, c...)
		b = fmt.Appendf(b, "%-8s", sev)
		b = append(b, "\x1b[0m"...)
	} else {
		b = fmt.Appendf(b, "%-8s", sev)
	}
	b = append(b, ' ')
	b = fmt.Appendf(b, "%-19s", safe(ev.ClassName))
	if ev.RunID != "" {
		b = append(b, " run="...)
		b = append(b, safe(ev.RunID)...)
	}
	if c := control(d); c != "" {
		b = append(b, " control="...)
		b = append(b, safe(c)...)
	} else if d.Metadata.EventCode != "" {
		b = append(b, " code="...)
		b = append(b, safe(d.Metadata.EventCode)...)
	}
	if d.Message != "" {
		b = append(b, "  "...)
		b = append(b, safe(d.Message)...)
	}
	return append(b, '\n')
}

// control names the control an event is about.
func control(d details) string {
	if d.Compliance.Control != "" {
		return d.Compliance.Control
	}
	// sandtrail's finding uids are <run>/<control>[/<verdict>].
	if parts := strings.Split(d.FindingInfo.UID, "/"); len(parts) >= 2 {
		return parts[1]
	}
	return ""
}

// safe escapes control characters (C0, DEL, C1) and invalid UTF-8.
func safe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || isControl(r) {
			return true
		}
		i += size
	}
	return false
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Close marks the sink closed; it does not close Out. It is idempotent.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
