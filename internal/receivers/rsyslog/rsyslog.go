// Package rsyslog runs a private rsyslogd for tests: a real RFC 5425
// receiver (syslog over TLS, octet-counted framing per RFC 6587, which
// imtcp supports natively) on 127.0.0.1, optionally requiring a client
// certificate, that writes every message it parses as one JSON object per
// line into a file the test reads back.
//
// It needs rsyslogd and its GnuTLS network stream driver (Debian packages
// rsyslog and rsyslog-gnutls, installed by .ci/run). When either is
// missing the test fails with that message: it never skips.
package rsyslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options choose the listener's security.
type Options struct {
	// MutualTLS makes rsyslog require a client certificate signed by the
	// PKI's CA (StreamDriver.AuthMode "x509/certvalid"); otherwise only
	// the server authenticates (AuthMode "anon").
	MutualTLS bool
	// MaxMessageSize is rsyslog's maxMessageSize (and imtcp's octet-counted
	// maxFrameSize) in bytes; 0 means 1 MiB. rsyslog truncates longer
	// messages.
	MaxMessageSize int
}

// Message is one syslog message as rsyslog parsed it.
type Message struct {
	PRI            int
	Timestamp      string // as rsyslog formats it (RFC 3339)
	Hostname       string
	AppName        string
	ProcID         string
	MsgID          string
	StructuredData string // the STRUCTURED-DATA field, verbatim
	Msg            string // the MSG part, verbatim
}

// Server is a running private rsyslogd.
type Server struct {
	Addr string // 127.0.0.1:port
	PKI  *PKI

	t       testing.TB
	bin     string
	opts    Options
	dir     string
	port    int
	out     string
	logFile string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// Binary returns the path of rsyslogd, or an error that says how to
// install it (with the GnuTLS driver) when it or the driver is missing.
func Binary() (string, error) {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/rsyslogd"); serr != nil {
			return "", errors.New("rsyslog: rsyslogd not found: .ci/run must install the Debian packages rsyslog and rsyslog-gnutls (apt-get install -y rsyslog rsyslog-gnutls)")
		}
		bin = "/usr/sbin/rsyslogd"
	}
	mods, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
	more, _ := filepath.Glob("/usr/lib*/rsyslog/lmnsd_gtls.so")
	if len(mods)+len(more) == 0 {
		return "", errors.New("rsyslog: rsyslogd has no GnuTLS stream driver (lmnsd_gtls.so): .ci/run must install the Debian package rsyslog-gnutls")
	}
	return bin, nil
}

// Start writes a PKI and a private configuration into a temporary
// directory, starts rsyslogd on a port the kernel picks and returns once
// it listens. The server is stopped when the test ends; its own log is
// printed if the test failed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = 1 << 20
	}
	dir := t.TempDir()
	s := &Server{PKI: NewPKI(t), t: t, bin: bin, opts: opts, dir: dir,
		out: filepath.Join(dir, "messages.jsonl"), logFile: filepath.Join(dir, "rsyslogd.log")}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(s.logFile)
			t.Logf("rsyslogd output:\n%s", b)
		}
	})
	s.start()
	return s
}

// Stop terminates rsyslogd (SIGTERM, then SIGKILL after 10 s) and waits
// for it. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Restart stops rsyslogd and starts it again on the same port; messages
// already written stay in the output file.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

func (s *Server) start() {
	t := s.t
	t.Helper()
	portFile := filepath.Join(s.dir, "port")
	_ = os.Remove(portFile)
	conf := filepath.Join(s.dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(s.config(portFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(s.bin, "-N1", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("rsyslog: configuration check: %v\n%s", err, out)
	}
	log, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(s.bin, "-n", "-f", conf, "-i", filepath.Join(s.dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("rsyslog: start: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.exited)

	deadline := time.Now().Add(15 * time.Second)
	for {
		p := s.port // a restart binds the same port; rsyslog writes the port file only for port 0
		if p == 0 {
			if b, err := os.ReadFile(portFile); err == nil {
				p, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			}
		}
		if p > 0 && listening(p) {
			s.port = p
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
			return
		}
		select {
		case <-s.exited:
			s.cmd = nil
			b, _ := os.ReadFile(s.logFile)
			t.Fatalf("rsyslog: rsyslogd exited before listening:\n%s", b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslog: rsyslogd did not listen within 15 s")
		}
	}
}

// listening reports whether a socket listens on 127.0.0.1:port, read from
// /proc/net/tcp so that no probe connection reaches rsyslog.
func listening(port int) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return true // not Linux: trust the port file
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

func (s *Server) config(portFile string) string {
	auth := "anon"
	if s.opts.MutualTLS {
		auth = "x509/certvalid"
	}
	port := "0"
	if s.port != 0 {
		port = strconv.Itoa(s.port)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global(
  workDirectory=%q
  maxMessageSize="%d"
  parser.escapeControlCharactersOnReceive="off"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile=%q
  defaultNetstreamDriverCertFile=%q
  defaultNetstreamDriverKeyFile=%q
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode=%q maxFrameSize="%d")
template(name="sandtrail_jsonl" type="list" option.jsonf="on") {
  property(outname="pri" name="pri" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
ruleset(name="sandtrail") {
  action(type="omfile" file=%q template="sandtrail_jsonl")
}
input(type="imtcp" address="127.0.0.1" port=%q listenPortFileName=%q ruleset="sandtrail")
`, filepath.Join(s.dir, "work"), s.opts.MaxMessageSize, s.PKI.CAFile, s.PKI.ServerCertFile,
		s.PKI.ServerKeyFile, auth, s.opts.MaxMessageSize+16, s.out, port, portFile)
	return b.String()
}

// Messages returns every message rsyslog has written so far, across
// restarts, in the order it wrote them.
func (s *Server) Messages() ([]Message, error) {
	b, err := os.ReadFile(s.out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// rsyslog may be writing a line right now: read only complete lines.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var msgs []Message
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r struct {
			PRI            string `json:"pri"`
			Timestamp      string `json:"timestamp"`
			Hostname       string `json:"hostname"`
			AppName        string `json:"app_name"`
			ProcID         string `json:"procid"`
			MsgID          string `json:"msgid"`
			StructuredData string `json:"structured_data"`
			Msg            string `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return msgs, fmt.Errorf("rsyslog: output line %d: %w", len(msgs)+1, err)
		}
		pri, err := strconv.Atoi(r.PRI)
		if err != nil {
			return msgs, fmt.Errorf("rsyslog: output line %d: pri %q: %w", len(msgs)+1, r.PRI, err)
		}
		msgs = append(msgs, Message{PRI: pri, Timestamp: r.Timestamp, Hostname: r.Hostname, AppName: r.AppName,
			ProcID: r.ProcID, MsgID: r.MsgID, StructuredData: r.StructuredData, Msg: r.Msg})
	}
	return msgs, sc.Err()
}

// Wait polls the output until it holds at least n messages or timeout
// passes, and returns what it holds; it fails the test on a read error.
func (s *Server) Wait(n int, timeout time.Duration) []Message {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := s.Messages()
		if err != nil {
			s.t.Fatal(err)
		}
		if len(msgs) >= n || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(20 * time.Millisecond)
	}
}
