// Command parley runs Parley: `parley dev` starts everything in one process
// on embedded defaults; `parley gateway|processor|archiver` run one role
// against existing NATS servers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "everything in one process: embedded NATS, gateway, processor, archiver, Pebble", runDev},
		{"gateway", "the WebSocket/HTTP edge, against --nats-url", roleCommand("gateway")},
		{"processor", "the per-room sequencer, against --nats-url", roleCommand("processor")},
		{"archiver", "the history writer and history service, against --nats-url", roleCommand("archiver")},
		{"bench", "load scenarios against a local server, with reports (bench/README.md)", runBench},
		{"migrate", "apply the ScyllaDB schema migrations (--scylla-* flags)", runMigrate},
		{"version", "print the version", func(context.Context, []string) error { fmt.Println("parley", version); return nil }},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: parley <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\n`parley <command> -h` lists a command's flags; every flag can also be set as PARLEY_<FLAG> (e.g. PARLEY_NATS_URL).\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	for _, c := range commands() {
		if c.name != os.Args[1] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:])
		stop()
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "parley:", err)
			os.Exit(1)
		}
		return
	}
	usage()
	os.Exit(2)
}
