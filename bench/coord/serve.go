package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/parley-chat/parley/bench/load"
)

// statsEvery is how often a worker sends its running Stats.
const statsEvery = time.Second

// Serve is the worker side: it runs the Commands read from in, writing
// Replies to out, until OpClose, the end of in, or ctx's end.
func Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex // one Reply at a time on out
	enc := json.NewEncoder(out)
	write := func(r Reply) error {
		mu.Lock()
		defer mu.Unlock()
		return enc.Encode(r)
	}

	var w *load.Worker
	var stats sync.WaitGroup
	defer func() {
		cancel()
		stats.Wait()
		if w != nil {
			w.Close()
		}
	}()
	dec := json.NewDecoder(in)
	for {
		var cmd Command
		if err := dec.Decode(&cmd); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the coordinator went away
			}
			return fmt.Errorf("worker: read command: %w", err)
		}
		if w == nil && cmd.Op != OpPlan && cmd.Op != OpClose {
			return fmt.Errorf("worker: %s before %s", cmd.Op, OpPlan)
		}
		r := Reply{Op: cmd.Op}
		var err error
		switch cmd.Op {
		case OpPlan:
			if w != nil || cmd.Plan == nil {
				return errors.New("worker: one plan, once")
			}
			w = load.NewWorker(*cmd.Plan)
			stats.Go(func() { sendStats(ctx, w, write) })
			err = w.Prepare(ctx)
		case OpConnect:
			if load.Sleep(ctx, time.Until(cmd.At)) {
				w.Connect(ctx)
			}
		case OpRun:
			if cmd.Traffic == nil {
				return errors.New("worker: run without traffic")
			}
			err = w.Run(ctx, *cmd.Traffic, cmd.At)
		case OpDrain:
			w.Drain(ctx, cmd.Quiet, cmd.Limit)
		case OpReport:
			var rep load.Report
			if rep, err = w.Report(cmd.Final); err == nil {
				r.Report = &rep
			}
		case OpClose:
			return write(r)
		default:
			err = fmt.Errorf("unknown op %q", cmd.Op)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			r.Err = err.Error()
		}
		if err := write(r); err != nil {
			return fmt.Errorf("worker: write reply: %w", err)
		}
	}
}

func sendStats(ctx context.Context, w *load.Worker, write func(Reply) error) {
	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s := w.Stats()
			if write(Reply{Op: OpStats, Stats: &s}) != nil {
				return
			}
		}
	}
}
