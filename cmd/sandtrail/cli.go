package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and found a problem (an invalid event, a failed check)
	exitUsage   = 2 // bad command line or unusable input
)

// env is what a subcommand may touch: its streams. Subcommands never call
// os.Exit; they return an error, and exitCode maps it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	cmds := []command{
		{"demo", "the main job in one command: three sandboxes, NATS, the collector, an alert: sandtrail demo [--dir DIR]", runDemo},
		{"validate", "check OCSF events (NDJSON, a JSON event or a JSON array) against sandtrail's schema", runValidate},
		{"run", "run a command confined by a policy, every decision an OCSF event: sandtrail run [--policy FILE] -- COMMAND [ARG...]", runRun},
		{"probe", "show what this host can confine (--json, --emit)", runProbe},
		{"policy", "check policy files or show the effective policy: sandtrail policy check FILE... | show [FILE]", runPolicy},
		{"schema", "export the JSON Schema documents: sandtrail schema export DIR", runSchema},
		{"server", "run the embedded NATS JetStream server with sandtrail's streams (--collect FILE: and the collector)", runServer},
		{"collect", "export events to SIEMs and files: sandtrail collect --config FILE [--check]", runCollect},
		{"replay", "read events back from the stream by time, run, class, severity or host: NDJSON, text or a per-run summary", runReplay},
		{"verify", "prove runs' audit trails complete and untampered, on the stream or in exported NDJSON files", runVerify},
		{"version", "print the version", runVersion},
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	return cmds
}

// usageError is a bad command line: exit 2 with the message.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitError carries an exit status for a result already reported.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printHelp(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		printHelp(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return exitCode(stderr, c.run(ctx, e, args[1:]))
		}
	}
	fmt.Fprintf(stderr, "sandtrail: unknown command %q\nRun 'sandtrail help' for the list of commands.\n", name)
	return exitUsage
}

func exitCode(stderr io.Writer, err error) int {
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "sandtrail: %s\n", ue.msg)
		return exitUsage
	}
	fmt.Fprintf(stderr, "sandtrail: %v\n", err)
	return exitFailure
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "sandtrail: a sandbox supervisor whose every confinement decision is an OCSF event.")
	fmt.Fprintln(w, "\nUsage: sandtrail COMMAND [FLAGS] [ARGS]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "  help       show this list")
	fmt.Fprintln(w, "\nRun 'sandtrail COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: sandtrail %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; a bad flag is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: exitUsage} // the flag package already printed the problem and usage
	}
	return nil
}
