package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sandtrail/sandtrail/bus"
	"github.com/sandtrail/sandtrail/emitter"
	"github.com/sandtrail/sandtrail/emitter/spool"
	"github.com/sandtrail/sandtrail/supervisor"
	"github.com/sandtrail/sandtrail/supervisor/policy"
)

// forwarded are the signals sandtrail run relays to the sandboxed process.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", "[--policy FILE] [--run-id ID] [--verbose] -- COMMAND [ARG...]")
	policyFile := fs.String("policy", "", "policy file (YAML or JSON); default: the built-in strict policy")
	runID := fs.String("run-id", "", "run id (metadata.correlation_uid); default: a new time-ordered UUID")
	verbose := fs.Bool("verbose", false, "print the posture and every control's verdict on stderr")
	spoolDir := fs.String("spool", defaultSpool(), "spool directory (env "+envSpool+")")
	noPublish := fs.Bool("no-publish", false, "only spool the events; a later sandtrail process with the same spool publishes them")
	flushWait := fs.Duration("flush", 2*time.Second, "how long to wait at exit for the bus to acknowledge the run's events (they stay spooled otherwise)")
	keyFile := signingKeyFlag(fs)
	var nf natsFlags
	nf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return usagef("run: no command given (sandtrail run [FLAGS] -- COMMAND [ARG...])")
	}
	pol, err := loadPolicy(*policyFile)
	if err != nil {
		fmt.Fprintf(e.stderr, "sandtrail: %v\nsandtrail: bad policy: nothing was started\n", err)
		return &exitError{supervisor.ExitRefused}
	}
	log := newLogger(e, zerolog.WarnLevel)
	id := *runID
	if id == "" {
		id = newRunID()
	}
	signer, err := loadSigner(*keyFile)
	if err != nil {
		fmt.Fprintf(e.stderr, "sandtrail: %v\n", err)
		return &exitError{supervisor.ExitRefused}
	}
	// The publisher's retries would crowd the command's terminal while the
	// bus is away; what is left unpublished is said once, at exit.
	cfg := emitter.Config{Spool: spool.Config{Dir: *spoolDir}, Host: emitter.DetectHost(), ProductVersion: buildVersion(),
		Logger: log.Level(max(log.GetLevel(), zerolog.ErrorLevel)), Signer: signer}
	var stopPublish func()
	if !*noPublish {
		ncfg, err := nf.config("sandtrail-run")
		if err != nil {
			return err
		}
		ncfg.RetryOnFailedConnect = true // never hold a sandbox start for the bus
		// The NATS client's connection chatter stays out of the command's terminal.
		nc, err := bus.Connect(ctx, ncfg, log.Level(max(log.GetLevel(), zerolog.WarnLevel)))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second)) // never leave a publish pending forever
		if err != nil {
			return err
		}
		cfg.Publisher = js
	}
	em, err := emitter.New(cfg)
	if err != nil {
		return err
	}
	if cfg.Publisher != nil {
		pctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = em.Run(pctx) }()
		stopPublish = func() { cancel(); <-done }
	}
	sigs := make(chan os.Signal, 8) // a burst of signals is forwarded, not dropped
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	res, launchErr := supervisor.Launch(context.WithoutCancel(ctx), supervisor.Config{
		Policy: pol, Argv: argv, Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr,
		Recorder: em.Trail(id), RunID: id, Signals: sigs, Logger: log,
	})
	fctx, cancel := context.WithTimeout(context.Background(), *flushWait)
	defer cancel()
	if cfg.Publisher != nil {
		if err := em.Flush(fctx); err != nil {
			log.Warn().Int("pending", em.Pending()).Str("spool", *spoolDir).Msg("events not yet acknowledged by NATS stay in the spool; the next sandtrail process with this spool publishes them")
		}
		stopPublish()
	}
	_ = em.Close(fctx) // events left unpublished stay in the spool, by design
	if launchErr != nil {
		return launchErr
	}
	if *verbose || res.Refused {
		report(e, res)
	}
	if res.ExitCode != 0 {
		return &exitError{res.ExitCode}
	}
	return nil
}

func loadPolicy(file string) (*policy.Policy, error) {
	if file == "" {
		return policy.Default().Resolve(), nil
	}
	p, err := policy.Load(file)
	if err != nil {
		return nil, err
	}
	return p.Resolve(), nil
}

func report(e *env, res *supervisor.Result) {
	w := tabwriter.NewWriter(e.stderr, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "sandtrail: run %s: posture %s\n", res.RunID, res.Posture)
	for _, c := range res.Controls {
		detail := c.Reason
		if c.Verdict == supervisor.Degraded {
			detail += " [in effect: " + fmt.Sprint(c.Compensating) + "]"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", c.Control, c.Mode, c.Verdict, detail)
	}
	if res.Refused {
		fmt.Fprintf(w, "sandtrail: launch refused: %s\n", res.Reason)
	}
	w.Flush()
}
