// Command sandtrail is a Linux sandbox supervisor whose every confinement
// decision becomes a schema-validated OCSF security event.
//
// Run `sandtrail help` for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sandtrail/sandtrail/supervisor"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case supervisor.HelperCommand:
			supervisor.HelperMain() // the re-executed sandbox helper; never returns
		case withoutSetpcap:
			execWithoutSetpcap(os.Args[2:]) // the demo's rootless-Podman-like supervisor; never returns
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
