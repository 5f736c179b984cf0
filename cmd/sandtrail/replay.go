package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/sandtrail/sandtrail/collector"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/replay"
	"github.com/sandtrail/sandtrail/schema"
)

// replayFlags are the stream-reading flags replay and verify share.
type replayFlags struct {
	nats      natsFlags
	stream    string
	since     string
	until     string
	run       string
	clockSkew time.Duration
}

func (f *replayFlags) register(fs *flag.FlagSet) {
	f.nats.register(fs)
	fs.StringVar(&f.stream, "stream", bus.EventsStream, "JetStream stream to read")
	fs.StringVar(&f.since, "since", "", "only events at or after this time: RFC 3339, a date (UTC), or a duration ago (90m, 36h, 7d)")
	fs.StringVar(&f.run, "run", "", "only the events of this run (metadata.correlation_uid)")
	fs.DurationVar(&f.clockSkew, "clock-skew", replay.DefaultClockSkew, "how far before --since to start reading by the stream's clock (hosts' clocks may run ahead)")
}

// filter parses the shared flags at now.
func (f *replayFlags) filter(now time.Time) (replay.Filter, error) {
	var flt replay.Filter
	var err error
	if flt.Since, err = parseTime("since", f.since, now); err != nil {
		return flt, err
	}
	if flt.Until, err = parseTime("until", f.until, now); err != nil {
		return flt, err
	}
	flt.Run = f.run
	return flt, nil
}

// connect connects to NATS as the flags say; the caller closes nc.
func (f *replayFlags) connect(ctx context.Context, e *env, name string) (*nats.Conn, jetstream.JetStream, error) {
	cfg, err := f.nats.config(name)
	if err != nil {
		return nil, nil, err
	}
	nc, err := bus.Connect(ctx, cfg, newLogger(e, zerolog.WarnLevel))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func runReplay(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "replay", "[--since T] [--until T] [--run ID] [--class C,...] [--severity S] [--host H,...] [--format ndjson|text|summary] [--to FILE]")
	var rf replayFlags
	rf.register(fs)
	fs.StringVar(&rf.until, "until", "", "only events before this time (same forms as --since)")
	classes := fs.String("class", "", "only these OCSF classes, comma-separated: class_uid or name (2004, detection_finding)")
	severity := fs.String("severity", "", "minimum severity: 1-6 or informational, low, medium, high, critical, fatal (99 Other is kept)")
	hosts := fs.String("host", "", "only events from these hosts, comma-separated")
	format := fs.String("format", "ndjson", "output: ndjson (the events as published), text (one line per event) or summary (a table per run)")
	to := fs.String("to", "", "re-export to the sinks of this collector config file instead of printing (idempotent by metadata.uid)")
	maxDelay := fs.Duration("max-delay", 0, "with --until: stop at messages stored this long after --until (faster; misses events held longer in a spool). Default: read to the end")
	keyFile := fs.String("key", "", "with --format summary: ed25519 public key file to check the runs' signatures")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("replay: unexpected argument %q", fs.Arg(0))
	}
	flt, err := rf.filter(time.Now())
	if err != nil {
		return err
	}
	if flt.Classes, err = parseClasses(*classes); err != nil {
		return err
	}
	if flt.MinSeverity, err = parseSeverity(*severity); err != nil {
		return err
	}
	flt.Hosts = splitList(*hosts)
	if err := flt.Validate(); err != nil {
		return usagef("%s", strings.TrimPrefix(err.Error(), "replay: "))
	}
	var out output
	switch *format {
	case "ndjson":
		out = &ndjsonOutput{}
	case "text":
		out = &textOutput{}
	case "summary":
		var vcfg chain.VerifierConfig
		if *keyFile != "" {
			if vcfg.PublicKey, err = chain.LoadPublicKey(*keyFile); err != nil {
				return usagef("replay: %v", err)
			}
		}
		out = &summaryOutput{s: replay.NewSummary(vcfg), filtered: filteredByMore(flt), checked: *keyFile != ""}
	default:
		return usagef("replay: unknown format %q (ndjson, text or summary)", *format)
	}
	if *to != "" {
		exp, err := newExportOutput(e, *to)
		if err != nil {
			return err
		}
		out = exp
	}
	nc, js, err := rf.connect(ctx, e, "sandtrail-replay")
	if err != nil {
		return err
	}
	defer nc.Close()

	w := bufio.NewWriterSize(e.stdout, 256<<10)
	prog := newProgress(e, "replay")
	st, err := replay.Read(ctx, js, replay.Config{
		Stream: rf.stream, Filter: flt, ClockSkew: rf.clockSkew, MaxDelay: *maxDelay, Progress: prog.update,
	}, func(ms []replay.Message) error { return out.write(w, ms) })
	prog.done()
	if ferr := out.finish(w); ferr != nil && err == nil {
		err = ferr
	}
	if ferr := w.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	if st.Malformed > 0 {
		fmt.Fprintf(e.stderr, "sandtrail: replay: %d messages of %s were not readable events and were skipped\n", st.Malformed, rf.stream)
	}
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintf(e.stderr, "sandtrail: replay interrupted: %d events written, read up to stream sequence %d of %d\n", st.Matched, st.LastSeq, st.EndSeq)
		return &exitError{code: exitFailure}
	case errors.Is(err, replay.ErrNoStream):
		return fmt.Errorf("%w (is this the right server? --stream names another)", err)
	case err != nil:
		return err
	}
	if prog.tty {
		fmt.Fprintf(e.stderr, "sandtrail: replay: %d events of %d scanned (%s)\n", st.Matched, st.Scanned, flt)
	}
	return nil
}

// filteredByMore reports whether the filter selects part of runs (time,
// class, severity, host): then a summary's trail verdicts cover parts.
func filteredByMore(f replay.Filter) bool {
	return !f.Since.IsZero() || !f.Until.IsZero() || len(f.Classes) > 0 || f.MinSeverity > 0 || len(f.Hosts) > 0
}

// output writes replayed events.
type output interface {
	write(w *bufio.Writer, ms []replay.Message) error
	finish(w *bufio.Writer) error
}

type ndjsonOutput struct{}

func (ndjsonOutput) write(w *bufio.Writer, ms []replay.Message) error {
	for i := range ms {
		w.Write(ms[i].Data)
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return nil
}

func (ndjsonOutput) finish(*bufio.Writer) error { return nil }

type textOutput struct{ line []byte }

// write prints one line per event:
// TIME HOST SEVERITY CLASS EVENT_CODE RUN#SEQ MESSAGE.
func (t *textOutput) write(w *bufio.Writer, ms []replay.Message) error {
	for i := range ms {
		m := &ms[i]
		b := t.line[:0]
		b = time.UnixMilli(m.Time).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
		b = append(b, ' ')
		b = appendPadded(b, orDash(m.Host), 16)
		b = appendPadded(b, severityName(m.SeverityID, m.Severity), 13)
		b = appendPadded(b, strconv.Itoa(m.ClassUID)+" "+className(m.ClassUID, m.ClassName), 32)
		b = appendPadded(b, orDash(m.EventCode), 22)
		b = append(b, orDash(m.Run)...)
		b = append(b, '#')
		b = strconv.AppendInt(b, m.Seq, 10)
		b = append(b, "  "...)
		b = append(b, oneLine(m.Message)...)
		b = append(b, '\n')
		t.line = b
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (*textOutput) finish(*bufio.Writer) error { return nil }

type summaryOutput struct {
	s                 *replay.Summary
	filtered, checked bool
}

func (o *summaryOutput) write(_ *bufio.Writer, ms []replay.Message) error {
	for i := range ms {
		o.s.Add(&ms[i])
	}
	return nil
}

// finish prints one row per run.
func (o *summaryOutput) finish(w *bufio.Writer) error {
	runs := o.s.Runs()
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tHOST\tEVENTS\tFIRST\tLAST\tMAX SEVERITY\tCLASSES\tTRAIL")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\n", r.Run, orDash(strings.Join(r.Hosts, ",")), r.Events,
			r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339), severityName(r.MaxSeverity, ""), len(r.Classes), trailCell(&r.Trail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d runs\n", len(runs))
	if o.filtered {
		fmt.Fprintln(w, "TRAIL covers only the events selected; `sandtrail verify --run RUN` gives a run's verdict.")
	}
	if !o.checked {
		fmt.Fprintln(w, "Signatures not checked (no --key).")
	}
	return nil
}

// trailCell sums up a run's chain verdict in a few words.
func trailCell(r *chain.RunReport) string {
	switch r.Status {
	case chain.StatusComplete:
		if r.Signature == chain.SigValid {
			return "complete, signed"
		}
		return "complete"
	case chain.StatusIncomplete:
		if n := r.MissingCount(); n > 0 {
			return fmt.Sprintf("incomplete: %d missing", n)
		}
		return "incomplete: no final event"
	}
	return string(r.Status)
}

func appendPadded(b []byte, s string, width int) []byte {
	b = append(b, s...)
	for n := len(s); n < width; n++ {
		b = append(b, ' ')
	}
	return append(b, ' ')
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a message on its line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\t") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`, "\t", " ").Replace(s)
}

func className(uid int, given string) string {
	if c, ok := schema.Class(uid); ok {
		return c.Caption
	}
	return orDash(given)
}

func severityName(id int, given string) string {
	if c := schema.SeverityID(id).Caption(); c != "" && id != 99 {
		return c
	}
	return orDash(given)
}

// parseTime reads a --since or --until value: RFC 3339, a date or date and
// time without zone (UTC), "now", or a duration ago (90m, 36h, 7d, 1d12h).
func parseTime(flagName, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return time.Time{}, nil
	case "now":
		return now, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := parseAgo(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("--%s %q: want RFC 3339 (2026-11-24T09:00:00Z), a date (2026-11-24), or a duration ago (90m, 36h, 7d)", flagName, s)
}

// parseAgo is time.ParseDuration with a "d" (24h) unit in front.
func parseAgo(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, errors.New("bad days")
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("bad duration")
	}
	return days + d, nil
}

// parseClasses reads --class: class_uids, names or captions.
func parseClasses(s string) ([]int, error) {
	var out []int
	for _, item := range splitList(s) {
		if n, err := strconv.Atoi(item); err == nil {
			out = append(out, n)
			continue
		}
		found := false
		for _, c := range schema.Classes() {
			if strings.EqualFold(item, c.Name) || strings.EqualFold(item, c.Caption) || strings.EqualFold(strings.ReplaceAll(item, "-", "_"), c.Name) {
				out, found = append(out, c.UID), true
				break
			}
		}
		if !found {
			return nil, usagef("--class %q: not a class_uid or a class sandtrail emits (for example 2004 or detection_finding)", item)
		}
	}
	return out, nil
}

// parseSeverity reads --severity: 1-6 or a caption.
func parseSeverity(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= 6 {
		return n, nil
	}
	for id := 1; id <= 6; id++ {
		if strings.EqualFold(s, schema.SeverityID(id).Caption()) {
			return id, nil
		}
	}
	return 0, usagef("--severity %q: want 1-6 or informational, low, medium, high, critical, fatal", s)
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// progress shows a replay's progress on stderr when it is a terminal, at
// most five times a second.
type progress struct {
	w     io.Writer
	verb  string
	tty   bool
	last  time.Time
	shown bool
}

func newProgress(e *env, verb string) *progress {
	return &progress{w: e.stderr, verb: verb, tty: isTerminal(e.stderr)}
}

func (p *progress) update(pr replay.Progress) {
	if !p.tty || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if pr.Total > 0 {
		pct = min(100, 100*float64(pr.Scanned)/float64(pr.Total))
	}
	fmt.Fprintf(p.w, "\r\033[K%s: %d of ~%d messages scanned (%.0f%%), %d selected", p.verb, pr.Scanned, pr.Total, pct, pr.Matched)
	p.shown = true
}

// done clears the progress line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// exportOutput re-exports replayed events to the sinks of a collector
// config file (--to), idempotent by metadata.uid.
type exportOutput struct {
	e     *env
	sinks []collector.SinkConfig
	stats []replay.ExportStats
}

func newExportOutput(e *env, file string) (*exportOutput, error) {
	f, err := loadCollectorFile(e, file)
	if err != nil {
		return nil, err
	}
	log := newLogger(e, zerolog.WarnLevel)
	types := sinkTypes()
	x := &exportOutput{e: e}
	for _, s := range f.Sinks {
		sink, err := types[s.Type](e, log.With().Str("sink", s.Name).Logger(), s.Settings, f.Name, true)
		if err != nil {
			_ = x.finish(nil)
			return nil, fmt.Errorf("replay: sink %s (%s): %w", s.Name, s.Type, err)
		}
		x.sinks = append(x.sinks, s.SinkConfig(sink))
	}
	x.stats = make([]replay.ExportStats, len(x.sinks))
	return x, nil
}

func (x *exportOutput) write(_ *bufio.Writer, ms []replay.Message) error {
	for i, s := range x.sinks {
		sel := ms
		if subjects, err := s.Filter.Subjects(); err == nil && len(subjects) > 0 {
			sel = nil
			for _, m := range ms {
				if matchesAny(m.Subject, subjects) {
					sel = append(sel, m)
				}
			}
		}
		if len(sel) == 0 {
			continue
		}
		if err := replay.Export(context.Background(), s.Sink, sel, replay.ExportConfig{}, &x.stats[i]); err != nil {
			return fmt.Errorf("replay: sink %s: %w", s.Name, err)
		}
	}
	return nil
}

func (x *exportOutput) finish(*bufio.Writer) error {
	var errs []error
	for i, s := range x.sinks {
		if err := s.Sink.Close(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("replay: close sink %s: %w", s.Name, err))
		}
		if i < len(x.stats) {
			fmt.Fprintf(x.e.stderr, "sandtrail: replay: sink %s: %d delivered, %d rejected\n", s.Name, x.stats[i].Delivered, x.stats[i].Rejected)
		}
	}
	return errors.Join(errs...)
}

// matchesAny reports whether a subject matches one of the NATS subject
// filters (tokens, with * and a trailing >).
func matchesAny(subject string, filters []string) bool {
	st := strings.Split(subject, ".")
	for _, f := range filters {
		ft := strings.Split(f, ".")
		ok := true
		for i, tok := range ft {
			if tok == ">" {
				ok = i < len(st)
				break
			}
			if i >= len(st) || (tok != "*" && tok != st[i]) {
				ok = false
				break
			}
			if i == len(ft)-1 && len(st) != len(ft) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}
