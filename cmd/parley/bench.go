package main

import (
	"context"
	"fmt"
	"os"

	"github.com/parley-chat/parley/bench/cli"
)

// runBench is `parley bench`: the load generator. Runs re-execute this
// binary as `parley bench worker` for their worker processes.
func runBench(ctx context.Context, args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find this binary to start workers: %w", err)
	}
	return cli.Main(ctx, args, []string{exe, "bench", cli.WorkerCommand})
}
