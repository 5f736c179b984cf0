// Package victorialogs runs a private VictoriaLogs server for tests: the real
// receiver behind the Splunk HEC and Elasticsearch _bulk sinks' tests.
//
// VictoriaLogs accepts Splunk HEC (/services/collector/event, gzip too) and
// the Elasticsearch bulk API (/insert/elasticsearch/_bulk), so the sinks'
// requests are parsed and stored by real code, not a fake. It is not Splunk
// or Elasticsearch, and it is lenient in ways tests must not trust:
//
//   - a body without a JSON/NDJSON Content-Type gets 200 and stores nothing,
//     and _bulk reports every item 201 whatever happened: assert on row
//     counts ([Server.Count], [Server.WaitCount]), never on status codes;
//   - HEC checks no token and has no /services/collector/ack: indexer
//     acknowledgement and HEC error codes need an httptest fake;
//   - rows become searchable about a second after they were accepted, so
//     counts are polled.
//
// The binary comes from `go install` ([Install]); .ci/run installs it. A
// test that needs it and cannot find it fails, naming the command: a missing
// receiver is a broken machine, not a reason to skip.
package victorialogs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Install is the command that installs the VictoriaLogs version the tests
// were written against (.ci/run runs it when the binary is missing).
const Install = "GOFLAGS= go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.1"

// Binary is the name of the VictoriaLogs executable.
const Binary = "victoria-logs"

// startTimeout bounds how long Start waits for the server to listen and be
// healthy; it starts in milliseconds here.
const startTimeout = 30 * time.Second

// stopTimeout bounds the graceful stop before the process is killed.
const stopTimeout = 10 * time.Second

// Server is a running VictoriaLogs process owned by one test.
type Server struct {
	// URL is the base URL, http://127.0.0.1:PORT, without a trailing slash.
	// It stays the same across Stop and Restart.
	URL string

	bin, data string
	client    *http.Client // for queries; its idle connections are closed with the server
	output    *tail        // the last lines the process wrote, for failure messages

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of the binary.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}  // closed when cmd.Wait returned
	reader sync.WaitGroup // the output reader
	r      *os.File
}

// Path finds the victoria-logs binary: in PATH, then in $GOBIN, each
// $GOPATH/bin and $HOME/go/bin (where `go install` puts it).
func Path() (string, error) {
	if p, err := exec.LookPath(Binary); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range filepath.SplitList(os.Getenv("GOPATH")) {
		if d != "" {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, Binary)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("victorialogs: %s not found in PATH, $GOBIN, $GOPATH/bin or $HOME/go/bin (looked in %s); install it with `%s` (.ci/run does)",
		Binary, strings.Join(dirs, ", "), Install)
}

// Start starts VictoriaLogs on 127.0.0.1 with a random port and storage in a
// temporary directory, waits until it is healthy, and stops it when the test
// ends. It fails the test (never skips) when the binary is missing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Path()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		bin:    bin,
		data:   filepath.Join(t.TempDir(), "data"), // registered first, so removed after the process stopped
		client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		output: &tail{},
	}
	t.Cleanup(func() {
		s.Stop(t)
		s.client.CloseIdleConnections()
	})
	s.start(t, "127.0.0.1:0")
	return s
}

// Stop stops the server, keeping its storage: a receiver that is down, for
// tests of retries. Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Logf("victorialogs: no exit %v after SIGTERM; killing", stopTimeout)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.reader.Wait()
	p.r.Close()
	s.client.CloseIdleConnections()
}

// Restart starts a stopped server again on the same address with the same
// storage.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.start(t, strings.TrimPrefix(s.URL, "http://"))
}

// start runs the binary listening on addr and waits until it is healthy.
func (s *Server) start(t testing.TB, addr string) {
	t.Helper()
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		t.Fatal("victorialogs: start: already running")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("victorialogs: pipe: %v", err)
	}
	cmd := exec.Command(s.bin,
		"-httpListenAddr="+addr,
		"-storageDataPath="+s.data,
		// Tests may send events with old fixture timestamps: keep them all.
		"-retentionPeriod=100y",
		"-inmemoryDataFlushInterval=1s",
		// Lines of up to 2 MiB (the default 256 KiB would drop a large
		// event's _bulk line silently; NATS carries events of up to 1 MiB).
		"-insert.maxLineSizeBytes=2MiB",
	)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("victorialogs: start %s: %v", s.bin, err)
	}
	w.Close() // the child holds its copy; r sees EOF when the child exits

	p := &process{cmd: cmd, exited: make(chan struct{}), r: r}
	listening := make(chan string, 1) // the one address line; buffered so the reader never blocks on it
	p.reader.Go(func() { s.output.read(r, listening) })
	go func() { // owned by p: exits when the process does, which Stop ensures
		_ = cmd.Wait()
		close(p.exited)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case a := <-listening:
		s.URL = "http://" + a
	case <-p.exited:
		t.Fatalf("victorialogs: exited before listening:\n%s", s.output)
	case <-deadline.C:
		t.Fatalf("victorialogs: not listening after %v:\n%s", startTimeout, s.output)
	}
	if err := s.waitHealthy(p, deadline.C); err != nil {
		t.Fatalf("victorialogs: %v:\n%s", err, s.output)
	}
}

// HECURL is the Splunk HEC base URL (the sink appends
// /services/collector/event).
func (s *Server) HECURL() string { return s.URL + "/insert/splunk" }

// ElasticURL is the Elasticsearch base URL (the sink appends /_bulk), with
// the query arguments that make VictoriaLogs take the time from @timestamp
// and the message from the OCSF message attribute.
func (s *Server) ElasticURL() string {
	return s.URL + "/insert/elasticsearch?_time_field=%40timestamp&_msg_field=message"
}

// Count returns how many stored rows match the LogsQL query (for example
// `*`, `class_uid:=2003` or `fields.event_uid:="..."`).
func (s *Server) Count(ctx context.Context, query string) (int, error) {
	form := url.Values{"query": {query + " | stats count() as n"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/select/logsql/query", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("victorialogs: count %q: %w", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("victorialogs: count %q: %w", query, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("victorialogs: count %q: %s: %s", query, resp.Status, bytesTrim(body))
	}
	var row struct {
		N string `json:"n"`
	}
	if err := json.Unmarshal(body, &row); err != nil {
		return 0, fmt.Errorf("victorialogs: count %q: response %q: %w", query, bytesTrim(body), err)
	}
	n, err := strconv.Atoi(row.N)
	if err != nil {
		return 0, fmt.Errorf("victorialogs: count %q: response %q: %w", query, bytesTrim(body), err)
	}
	return n, nil
}

// Query returns the stored rows matching the LogsQL query, each a map of
// field name to value (nested JSON is flattened with dots: event.class_uid).
func (s *Server) Query(ctx context.Context, query string) ([]map[string]string, error) {
	form := url.Values{"query": {query}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/select/logsql/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("victorialogs: query %q: %w", query, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("victorialogs: query %q: %s: %s", query, resp.Status, bytesTrim(b))
	}
	var rows []map[string]string
	dec := json.NewDecoder(resp.Body)
	for dec.More() {
		var row map[string]string
		if err := dec.Decode(&row); err != nil {
			return nil, fmt.Errorf("victorialogs: query %q: row %d: %w", query, len(rows)+1, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// WaitCount polls Count until it returns want or ctx ends, and returns the
// last count: rows become searchable about a second after ingestion. A count
// above want is returned at once (it can only grow).
func (s *Server) WaitCount(ctx context.Context, query string, want int) (int, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := s.Count(ctx, query)
		if err == nil && n >= want {
			return n, nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return n, err
		case <-tick.C:
		}
	}
}

// Output returns the last lines VictoriaLogs logged, for failure messages.
func (s *Server) Output() string { return s.output.String() }

func (s *Server) waitHealthy(p *process, deadline <-chan time.Time) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		resp, err := s.client.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		last = err
		select {
		case <-deadline:
			return fmt.Errorf("not healthy after %v: %v", startTimeout, last)
		case <-p.exited:
			return errors.New("exited while starting")
		case <-tick.C:
		}
	}
}

// listenLine matches VictoriaLogs' line "started server at http://ADDR/".
var listenLine = regexp.MustCompile(`started server at http://([^/\s]+)/`)

// tail keeps the last lines of the process output.
type tail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 40

// read consumes r until EOF, sending the listen address once.
func (tl *tail) read(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		if !sent {
			if m := listenLine.FindStringSubmatch(line); m != nil {
				addr <- m[1]
				sent = true
			}
		}
		tl.mu.Lock()
		tl.lines = append(tl.lines, line)
		if len(tl.lines) > tailLines {
			tl.lines = tl.lines[len(tl.lines)-tailLines:]
		}
		tl.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r) // a line over 1 MiB: keep draining so the child never blocks
}

func (tl *tail) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return strings.Join(tl.lines, "\n")
}

func bytesTrim(b []byte) string {
	const max = 512
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
