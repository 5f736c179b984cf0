package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/bus/embedded"
	"github.com/sandtrail/sandtrail/chain"
	"github.com/sandtrail/sandtrail/collector"
	"github.com/sandtrail/sandtrail/collector/alert"
	"github.com/sandtrail/sandtrail/collector/ndjson"
	"github.com/sandtrail/sandtrail/collector/stdout"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
)

// scenario is one sandbox the demo runs.
type scenario struct {
	name, title string
	policy      string // YAML
	dropSetpcap bool   // start the supervisor without CAP_SETPCAP (rootless Podman)
	command     []string
}

var demoScenarios = []scenario{
	{
		name: "confined", title: "fully confined (default policy)",
		policy:  "name: demo-confined\nversion: \"1\"\n",
		command: []string{"/bin/sh", "-c", "echo '  [sandbox 1] hello from a fully confined sandbox, uid' $(id -u)"},
	},
	{
		name: "degraded", title: "no CAP_SETPCAP, bounding set best_effort",
		policy: "name: demo-degraded\nversion: \"1\"\ncontrols:\n  namespaces:\n    mode: off\n" +
			"  capability_bounding_set:\n    mode: best_effort\n",
		dropSetpcap: true,
		command:     []string{"/bin/sh", "-c", "echo '  [sandbox 2] running degraded: the bounding set could not be cleared'"},
	},
	{
		name: "refused", title: "no CAP_SETPCAP, bounding set required",
		policy: "name: demo-refused\nversion: \"1\"\ncontrols:\n  namespaces:\n    mode: off\n" +
			"  capability_bounding_set:\n    mode: required\n",
		dropSetpcap: true,
		command:     []string{"/bin/sh", "-c", "echo '  [sandbox 3] this must never print'"},
	},
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo", "[--dir DIR]")
	dirFlag := fs.String("dir", "", "where the demo writes its files (default: a new directory under the system temp dir)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ui := newUI(e.stdout)
	dir := *dirFlag
	if dir == "" {
		d, err := os.MkdirTemp("", "sandtrail-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dir, _ = filepath.Abs(dir)
	log := newLogger(e, zerolog.WarnLevel)
	keyFile, pubFile, err := demoKeys(dir)
	if err != nil {
		return err
	}
	ui.title("sandtrail demo: three sandboxes, their decisions as OCSF events, through NATS to SIEM-shaped sinks")
	ui.step("files go to %s", dir)

	// 1. The embedded NATS server.
	srv, err := embedded.Start(ctx, embedded.Config{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), Logger: log.Level(zerolog.ErrorLevel)})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer srv.Shutdown(context.Background())
	url := srv.ClientURL()
	ui.step("NATS JetStream (embedded) listening on %s", url)
	nc, err := bus.Connect(ctx, bus.ConnConfig{URLs: []string{url}, Name: "sandtrail-demo"}, log.Level(zerolog.ErrorLevel))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		return err
	}
	if err := bus.EnsureStreams(ctx, js, bus.Streams{Events: bus.StreamConfig{MaxBytes: 256 << 20}, DLQ: bus.StreamConfig{MaxBytes: 64 << 20}}); err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	// 2. A local alert receiver standing in for an operator's webhook.
	alerts := &alertReceiver{file: filepath.Join(dir, "alerts.ndjson")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: alerts, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	// 3. The collector, in-process, with three sinks.
	eventsDir := filepath.Join(dir, "events")
	signer, err := loadSigner(keyFile) // the collector signs its own trail with the runs' key
	if err != nil {
		return err
	}
	col, err := demoCollector(js, log, ui, eventsDir, "http://"+ln.Addr().String()+"/alert", signer)
	if err != nil {
		return err
	}
	colCtx, stopCol := context.WithCancel(context.Background())
	colDone := make(chan error, 1)
	go func() { colDone <- col.Run(colCtx) }()
	defer func() {
		stopCol()
		<-colDone
	}()
	ui.step("collector running: sinks stdout, ndjson (%s), alert (webhook)", eventsDir)

	// 4. The sandboxes, each a real `sandtrail run` process.
	root := os.Geteuid() == 0
	var skipped []string
	runs := make([]demoRun, 0, len(demoScenarios))
	for i, sc := range demoScenarios {
		r := demoRun{scenario: sc, id: fmt.Sprintf("demo-%d-%s", i+1, newRunID()[:8])}
		if sc.dropSetpcap && !root {
			// An unprivileged user has no CAP_SETPCAP to drop: the host
			// already is the rootless case.
			skipped = append(skipped, fmt.Sprintf("run %d: started as an unprivileged user, which already lacks CAP_SETPCAP (no capability to remove)", i+1))
		}
		ui.step("run %d: %s", i+1, sc.title)
		r.exit, r.stderr, err = demoLaunch(ctx, dir, url, keyFile, r, root)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}

	// 5. Publish anything a run left in the spool (its bus acknowledgement
	// took longer than its --flush), then wait until the collector
	// delivered every run's trail.
	if err := drainSpool(ctx, js, filepath.Join(dir, "spool"), log); err != nil {
		return err
	}
	ui.step("waiting for the collector to deliver every event")
	deadline := time.Now().Add(30 * time.Second)
	var trails map[string]*trailSummary
	for {
		trails = readTrails(eventsDir)
		if allDelivered(runs, trails) && (alerts.count() > 0 || time.Now().After(deadline.Add(-20*time.Second))) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: not every event reached the ndjson sink within 30 s (see %s)", eventsDir)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = col.Close(cctx)

	// 6. The summary.
	ui.title("what happened")
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tSCENARIO\tEXIT\tPOSTURE\tSCORE\tEVENTS\tALERT")
	for i, r := range runs {
		t := trails[r.id]
		posture, score, n := "-", "-", 0
		if t != nil {
			posture, score, n = t.posture, t.score, t.events
		}
		al := "-"
		if a := alerts.forRun(r.id); a != "" {
			al = a
		}
		fmt.Fprintf(w, "%d %s\t%s\t%d\t%s\t%s\t%d\t%s\n", i+1, r.id, r.name, r.exit, ui.posture(posture), score, n, al)
	}
	w.Flush()
	for _, s := range skipped {
		ui.note("note: %s", s)
	}
	ui.title("files")
	fmt.Fprintf(e.stdout, "  events (NDJSON, as a SIEM would get them)  %s\n", eventsDir)
	fmt.Fprintf(e.stdout, "  alerts the webhook received                %s\n", alerts.file)
	fmt.Fprintf(e.stdout, "  the JetStream store                        %s\n", filepath.Join(dir, "nats"))
	fmt.Fprintf(e.stdout, "  the key that signed each run's last event  %s (public: %s)\n", keyFile, pubFile)
	ui.title("try next")
	fmt.Fprintf(e.stdout, "  sandtrail validate %s/*.ndjson\n", eventsDir)
	fmt.Fprintf(e.stdout, "  sandtrail verify --key %s %s/*.ndjson\n", pubFile, eventsDir)
	fmt.Fprintf(e.stdout, "      (every trail in the export, the collector's own included; --run %s for one)\n", runs[1].id)
	fmt.Fprintf(e.stdout, "  sandtrail server --store %s --listen 127.0.0.1:4222 &   # then:\n", filepath.Join(dir, "nats"))
	fmt.Fprintf(e.stdout, "  sandtrail replay --run %s\n", runs[1].id)
	return nil
}

type demoRun struct {
	scenario
	id     string
	exit   int
	stderr string
}

func demoCollector(js jetstream.JetStream, log zerolog.Logger, ui *ui, eventsDir, alertURL string, signer *chain.Signer) (*collector.Collector, error) {
	out, err := stdout.New(stdout.Config{Out: ui.w, Color: ui.colorMode()})
	if err != nil {
		return nil, err
	}
	nd, err := ndjson.New(ndjson.Config{Dir: eventsDir, Prefix: "events", Logger: log})
	if err != nil {
		return nil, err
	}
	al, err := alert.New(alert.Config{Mode: "webhook", URL: alertURL, Window: time.Second})
	if err != nil {
		return nil, err
	}
	return collector.New(collector.Config{
		JetStream: js,
		Sinks: []collector.SinkConfig{
			{Name: "demo-stdout", Type: "stdout", Sink: out, MaxWait: 200 * time.Millisecond},
			{Name: "demo-ndjson", Type: "ndjson", Sink: nd, MaxWait: 200 * time.Millisecond},
			{Name: "demo-alert", Type: "alert", Sink: al, MaxWait: 200 * time.Millisecond},
		},
		ProductVersion: buildVersion(),
		Signer:         signer,
		Logger:         log,
	})
}

// demoLaunch runs one scenario as a separate `sandtrail run` process.
func demoLaunch(ctx context.Context, dir, url, keyFile string, r demoRun, root bool) (int, string, error) {
	pfile := filepath.Join(dir, r.name+".policy.yaml")
	if err := os.WriteFile(pfile, []byte(r.policy), 0o644); err != nil {
		return 0, "", err
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, "", err
	}
	args := []string{"run", "--nats", url, "--spool", filepath.Join(dir, "spool"), "--run-id", r.id, "--policy", pfile, "--signing-key", keyFile, "--flush", "15s", "--"}
	args = append(args, r.command...)
	if r.dropSetpcap && root {
		args = append([]string{withoutSetpcap}, args...)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	var errb bytes.Buffer
	cmd.Stdout = os.Stdout
	cmd.Stderr = &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, "", fmt.Errorf("demo: run %s: %w", r.id, err)
	}
	return cmd.ProcessState.ExitCode(), errb.String(), nil
}

// trailSummary is what the ndjson files say about one run.
type trailSummary struct {
	events         int
	final          bool // its EXIT or LAUNCH_REFUSED event arrived
	posture, score string
}

func readTrails(dir string) map[string]*trailSummary {
	out := map[string]*trailSummary{}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	sort.Strings(files)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 2<<20)
		for sc.Scan() {
			var ev struct {
				RiskScore     *int   `json:"risk_score"`
				SecurityLevel string `json:"security_level"`
				Metadata      struct {
					CorrelationUID string `json:"correlation_uid"`
					EventCode      string `json:"event_code"`
				} `json:"metadata"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			t := out[ev.Metadata.CorrelationUID]
			if t == nil {
				t = &trailSummary{posture: "refused", score: "-"}
				out[ev.Metadata.CorrelationUID] = t
			}
			t.events++
			switch {
			case strings.HasPrefix(ev.Metadata.EventCode, "POSTURE_"):
				t.posture = ev.SecurityLevel
				if ev.RiskScore != nil {
					t.score = fmt.Sprintf("%d/100", *ev.RiskScore)
				}
			case ev.Metadata.EventCode == "EXIT", ev.Metadata.EventCode == "LAUNCH_REFUSED", ev.Metadata.EventCode == "LAUNCH_FAILED":
				t.final = true
			}
		}
		fh.Close()
	}
	return out
}

func allDelivered(runs []demoRun, trails map[string]*trailSummary) bool {
	for _, r := range runs {
		if t := trails[r.id]; t == nil || !t.final {
			return false
		}
	}
	return true
}

// alertReceiver is the demo's webhook: it keeps what it receives.
type alertReceiver struct {
	file string
	mu   sync.Mutex
	got  []string
}

func (a *alertReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.got = append(a.got, string(body))
	f, ferr := os.OpenFile(a.file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if ferr == nil {
		_, _ = f.Write(append(bytes.TrimSpace(body), '\n'))
		_ = f.Close()
	}
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (a *alertReceiver) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.got)
}

// forRun returns a short description of the alert about run id, if any.
func (a *alertReceiver) forRun(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, body := range a.got {
		if !strings.Contains(body, id) {
			continue
		}
		var p struct {
			Alerts []struct {
				Run       string `json:"run"`
				AlertName string `json:"alertname"`
				Severity  string `json:"severity"`
			} `json:"alerts"`
		}
		if json.Unmarshal([]byte(body), &p) == nil {
			for _, a := range p.Alerts {
				if a.Run == id && a.AlertName != "" {
					return a.AlertName + " (" + a.Severity + ")"
				}
			}
		}
		return "alert sent"
	}
	return ""
}

// demoKeys makes the ed25519 key that signs each run's trail: the private
// seed (hex, 0600) and the public key (hex) for sandtrail verify --key.
func demoKeys(dir string) (keyFile, pubFile string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	keyFile, pubFile = filepath.Join(dir, "signing.key"), filepath.Join(dir, "signing.pub")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pubFile, []byte(hex.EncodeToString(pub)+"\n"), 0o644); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, nil
}

// drainSpool publishes what sandtrail run processes left in the spool, as
// the next sandtrail process with that spool always does.
func drainSpool(ctx context.Context, js jetstream.JetStream, dir string, log zerolog.Logger) error {
	em, err := emitter.New(emitter.Config{Spool: spool.Config{Dir: dir}, Publisher: js, Logger: log})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = em.Run(rctx) }()
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	// Flush fails while Run has not started yet: try until the deadline.
	for err = em.Flush(fctx); err != nil && fctx.Err() == nil; err = em.Flush(fctx) {
		time.Sleep(50 * time.Millisecond)
	}
	if cerr := em.Close(fctx); err == nil {
		err = cerr
	}
	cancel()
	<-done
	if err != nil {
		return fmt.Errorf("demo: publish the spool: %w", err)
	}
	return nil
}
