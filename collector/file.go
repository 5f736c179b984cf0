package collector

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File is the collector's configuration file (YAML), as an operator writes
// it; docs/examples/collector.yaml shows every key. [ParseFile] reads it
// strictly; cmd/sandtrail turns it into a [Config], building each sink from
// its type-specific section and reading the secrets the file names.
//
//	nats:    {urls, name, creds_file, nkey_file, user, password_file | password_env,
//	          token_file | token_env, tls: {ca_file, cert_file, key_file, server_name},
//	          stream, dlq_stream}
//	metrics: {listen: "127.0.0.1:9464"}        # /metrics and /healthz; omit for none
//	health:  {max_failing: 5m}
//	collector: {raw_data_max, drain_timeout}
//	sinks:
//	  - name: siem                    # consumer sandtrail-siem
//	    type: splunk                  # ndjson | stdout | splunk | elastic | syslog | alert
//	    filter: {classes: [2004], min_severity: 3, hosts: [web-1]}
//	    batch: {max_events: 256, max_wait: 1s}
//	    max_deliver: 20
//	    ack_wait: 30s
//	    retry: {min: 1s, max: 1m}
//	    splunk: {...}                 # the settings of the type, a key named after it
//
// Secrets are never written in the file: only the names of files or
// environment variables that hold them.
type File struct {
	NATS      FileNATS      `yaml:"nats"`
	Metrics   FileMetrics   `yaml:"metrics"`
	Health    FileHealth    `yaml:"health"`
	Collector FileCollector `yaml:"collector"`
	Sinks     []FileSink    `yaml:"-"`

	// Name is the file name given to ParseFile, for later errors.
	Name string `yaml:"-"`
}

// FileNATS is how to reach NATS; command-line flags override it.
type FileNATS struct {
	URLs         []string `yaml:"urls"`
	Name         string   `yaml:"name"`
	CredsFile    string   `yaml:"creds_file"`
	NKeyFile     string   `yaml:"nkey_file"`
	User         string   `yaml:"user"`
	PasswordFile string   `yaml:"password_file"`
	PasswordEnv  string   `yaml:"password_env"`
	TokenFile    string   `yaml:"token_file"`
	TokenEnv     string   `yaml:"token_env"`
	TLS          FileTLS  `yaml:"tls"`
	Stream       string   `yaml:"stream"`
	DLQStream    string   `yaml:"dlq_stream"`
}

// FileTLS holds TLS file names for the NATS connection.
type FileTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// FileMetrics says where /metrics and /healthz are served.
type FileMetrics struct {
	// Listen is host:port; empty serves nothing.
	Listen string `yaml:"listen"`
}

// FileHealth holds the health settings.
type FileHealth struct {
	MaxFailing time.Duration `yaml:"max_failing"`
}

// FileCollector holds the collector-wide settings of [Config].
type FileCollector struct {
	RawDataMax   int           `yaml:"raw_data_max"`
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// FileSink is one entry of sinks.
type FileSink struct {
	Name       string        `yaml:"name"`
	Type       string        `yaml:"type"`
	Filter     FileFilter    `yaml:"filter"`
	Batch      FileBatch     `yaml:"batch"`
	MaxDeliver int           `yaml:"max_deliver"`
	AckWait    time.Duration `yaml:"ack_wait"`
	Retry      FileRetry     `yaml:"retry"`

	// Settings is the mapping under the key named after Type (nil when
	// absent), for the sink package's Decode; decode it with DecodeStrict
	// and the file's name so that errors point into the file.
	Settings *yaml.Node `yaml:"-"`
	// Line and TypeLine locate the entry and its type, for errors about
	// them found later (an unknown type).
	Line, TypeLine, TypeColumn int `yaml:"-"`
	// Path is the entry's field path, sinks[i].
	Path string `yaml:"-"`
}

// FileFilter is [Filter] in the file.
type FileFilter struct {
	Classes     []int    `yaml:"classes"`
	MinSeverity int      `yaml:"min_severity"`
	Hosts       []string `yaml:"hosts"`
}

// FileBatch is the batching of a sink.
type FileBatch struct {
	MaxEvents int           `yaml:"max_events"`
	MaxWait   time.Duration `yaml:"max_wait"`
}

// FileRetry bounds the backoff of a sink.
type FileRetry struct {
	Min time.Duration `yaml:"min"`
	Max time.Duration `yaml:"max"`
}

// SinkConfig returns the sink's part of a [Config], feeding sink.
func (s FileSink) SinkConfig(sink Sink) SinkConfig {
	return SinkConfig{
		Name: s.Name, Type: s.Type, Sink: sink,
		Filter:    Filter{Classes: s.Filter.Classes, MinSeverity: s.Filter.MinSeverity, Hosts: s.Filter.Hosts},
		MaxEvents: s.Batch.MaxEvents, MaxWait: s.Batch.MaxWait,
		MaxDeliver: s.MaxDeliver, AckWait: s.AckWait,
		RetryMin: s.Retry.Min, RetryMax: s.Retry.Max,
	}
}

// Errorf returns a *ConfigError about the sink's entry, for problems found
// after parsing (building the sink failed).
func (s FileSink) Errorf(file, format string, args ...any) *ConfigError {
	return &ConfigError{File: file, Line: s.Line, Field: s.Path, Msg: fmt.Sprintf(format, args...)}
}

// TypeErrorf returns a *ConfigError pointing at the sink's type.
func (s FileSink) TypeErrorf(file, format string, args ...any) *ConfigError {
	return &ConfigError{File: file, Line: s.TypeLine, Column: s.TypeColumn, Field: s.Path + ".type", Msg: fmt.Sprintf(format, args...)}
}

// sinkCommon is a sink entry without its type-specific section.
type sinkCommon struct {
	Name       string        `yaml:"name"`
	Type       string        `yaml:"type"`
	Filter     FileFilter    `yaml:"filter"`
	Batch      FileBatch     `yaml:"batch"`
	MaxDeliver int           `yaml:"max_deliver"`
	AckWait    time.Duration `yaml:"ack_wait"`
	Retry      FileRetry     `yaml:"retry"`
}

// ParseFile parses a collector configuration. name is used in errors,
// which give FILE:LINE:COL: FIELD: MSG for every problem (a *ConfigError,
// or ConfigErrors). It checks what can be checked without building the
// sinks; the sink types and their sections are left to the caller.
func ParseFile(name string, data []byte) (*File, error) {
	f := &File{Name: name}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, &ConfigError{File: name, Line: yamlLine(err), Msg: yamlMessage(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &ConfigError{File: name, Line: extra.Line, Msg: "more than one YAML document"}
	}
	w := &walker{file: name, pos: map[string]*yaml.Node{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: name, Line: root.Line, Msg: "want a mapping with nats, metrics, health and sinks, got " + describe(root)}
	}
	// sinks is decoded by hand (its entries hold a key named after their
	// type); the rest of the root by the walker.
	var sinks *yaml.Node
	rest := &yaml.Node{Kind: yaml.MappingNode, Line: root.Line, Column: root.Column}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Value == "sinks" {
			if sinks != nil {
				w.errorf(k, "sinks", "duplicate key (first at line %d)", sinks.Line)
				continue
			}
			sinks = root.Content[i+1]
			continue
		}
		rest.Content = append(rest.Content, root.Content[i], root.Content[i+1])
	}
	w.value(rest, reflect.ValueOf(f).Elem(), "")
	switch {
	case sinks == nil || sinks.ShortTag() == "!!null":
		w.errorf(root, "sinks", "no sinks: the collector needs at least one")
	case sinks.Kind != yaml.SequenceNode:
		w.errorf(sinks, "sinks", "want a list, got %s", describe(sinks))
	default:
		for i, n := range sinks.Content {
			if s, ok := w.sink(n, fmt.Sprintf("sinks[%d]", i)); ok {
				f.Sinks = append(f.Sinks, s)
			}
		}
	}
	if len(w.errs) == 0 {
		w.check(f)
	}
	if err := w.result(); err != nil {
		return nil, err
	}
	return f, nil
}

func (w *walker) sink(n *yaml.Node, path string) (FileSink, bool) {
	s := FileSink{Line: n.Line, Path: path}
	if n.Kind != yaml.MappingNode {
		w.errorf(n, path, "want a mapping, got %s", describe(n))
		return s, false
	}
	kind := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" && n.Content[i+1].Kind == yaml.ScalarNode {
			kind = n.Content[i+1].Value
			s.TypeLine, s.TypeColumn = n.Content[i+1].Line, n.Content[i+1].Column
		}
	}
	common := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if kind != "" && k.Value == kind {
			if s.Settings != nil {
				w.errorf(k, join(path, k.Value), "duplicate key")
				continue
			}
			if v.Kind != yaml.MappingNode && v.ShortTag() != "!!null" {
				w.errorf(v, join(path, k.Value), "want a mapping of %s settings, got %s", kind, describe(v))
				continue
			}
			s.Settings = v
			continue
		}
		common.Content = append(common.Content, k, v)
	}
	before := len(w.errs)
	var c sinkCommon
	w.value(common, reflect.ValueOf(&c).Elem(), path)
	if kind == "" {
		w.errorf(n, join(path, "type"), "missing: every sink has a type (ndjson, stdout, splunk, elastic, syslog, alert)")
	}
	s.Name, s.Type, s.Filter, s.Batch = c.Name, c.Type, c.Filter, c.Batch
	s.MaxDeliver, s.AckWait, s.Retry = c.MaxDeliver, c.AckWait, c.Retry
	return s, len(w.errs) == before
}

// check validates the decoded values, pointing at where each was written.
func (w *walker) check(f *File) {
	at := func(field string) *yaml.Node { return w.pos[field] }
	if l := f.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			w.errorf(at("metrics.listen"), "metrics.listen", "want host:port, got %q", l)
		}
	}
	if f.Health.MaxFailing < 0 {
		w.errorf(at("health.max_failing"), "health.max_failing", "must not be negative")
	}
	if r := f.Collector.RawDataMax; r < 0 || r > MaxRawDataMax {
		w.errorf(at("collector.raw_data_max"), "collector.raw_data_max", "want 1 to %d bytes (0: the default %d)", MaxRawDataMax, DefaultRawDataMax)
	}
	if f.Collector.DrainTimeout < 0 {
		w.errorf(at("collector.drain_timeout"), "collector.drain_timeout", "must not be negative")
	}
	if (f.NATS.PasswordFile != "" || f.NATS.PasswordEnv != "") != (f.NATS.User != "") {
		w.errorf(at("nats"), "nats", "user and password_file (or password_env) go together")
	}
	for _, pair := range [][2]string{{"password_file", "password_env"}, {"token_file", "token_env"}} {
		if w.pos["nats."+pair[0]] != nil && w.pos["nats."+pair[1]] != nil {
			w.errorf(at("nats."+pair[1]), "nats."+pair[1], "set only one of %s and %s", pair[0], pair[1])
		}
	}
	names := map[string]string{}
	for _, s := range f.Sinks {
		p := s.Path
		if !sinkName.MatchString(s.Name) {
			w.errorf(orNode(at(p+".name"), s.Line), p+".name", "want 1 to 64 letters, digits, '-' or '_', got %q", s.Name)
		} else if first, dup := names[s.Name]; dup {
			w.errorf(at(p+".name"), p+".name", "two sinks named %s (first is %s)", s.Name, first)
		} else {
			names[s.Name] = p
		}
		for i, c := range s.Filter.Classes {
			if _, err := (Filter{Classes: []int{c}}).Subjects(); err != nil {
				w.errorf(at(fmt.Sprintf("%s.filter.classes[%d]", p, i)), fmt.Sprintf("%s.filter.classes[%d]", p, i), "%v", err)
			}
		}
		if ms := s.Filter.MinSeverity; ms < 0 || ms > 6 {
			w.errorf(at(p+".filter.min_severity"), p+".filter.min_severity", "want 1 (Informational) to 6 (Fatal), or 0 for all, got %d", ms)
		}
		for i, h := range s.Filter.Hosts {
			if strings.TrimSpace(h) == "" {
				w.errorf(at(fmt.Sprintf("%s.filter.hosts[%d]", p, i)), fmt.Sprintf("%s.filter.hosts[%d]", p, i), "empty host name")
			}
		}
		if _, err := s.SinkConfig(nopSink{}).withDefaults(); err != nil && len(w.errs) == 0 {
			w.errorf(orNode(at(p), s.Line), p, "%s", fileMessage(err))
		}
	}
}

// fileMessage renames SinkConfig's fields to the file's keys.
func fileMessage(err error) string {
	r := strings.NewReplacer("MaxEvents", "batch.max_events", "MaxWait", "batch.max_wait", "MaxDeliver", "max_deliver",
		"AckWait", "ack_wait", "RetryMin", "retry.min", "RetryMax", "retry.max", "filter: ", "filter: ")
	return r.Replace(err.Error())
}

func orNode(n *yaml.Node, line int) *yaml.Node {
	if n != nil {
		return n
	}
	return &yaml.Node{Line: line}
}

// nopSink stands in for a sink while checking a file.
type nopSink struct{}

func (nopSink) Write(_ context.Context, b []Event) []Outcome { return make([]Outcome, len(b)) }
func (nopSink) Close(context.Context) error                  { return nil }

// yamlLine digs the line out of a yaml.v3 syntax error ("yaml: line 3: ...").
func yamlLine(err error) int {
	var line int
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if _, e := fmt.Sscanf(msg, "line %d:", &line); e == nil {
		return line
	}
	return 0
}
