// Command parley-bench is Parley's load generator: scenarios against a
// running deployment, with reports under bench/results (bench/README.md).
// It is its own binary, so the server carries no load generator. Runs
// re-execute it as `parley-bench worker` for their worker processes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/parley-chat/parley/bench/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary to start workers: %w", err)
	}
	return cli.Main(ctx, args, []string{exe, cli.WorkerCommand})
}
