package coord

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/parley-chat/parley/bench/load"
)

// Pipes connect the coordinator to one worker.
type Pipes struct {
	In   io.WriteCloser // the worker's commands
	Out  io.ReadCloser  // its replies
	Wait func() error   // returns once the worker has exited
	PID  int            // the worker's process
}

// A Spawner starts worker i.
type Spawner func(ctx context.Context, i int) (*Pipes, error)

// Exec spawns workers as processes running argv (typically the parley
// binary with `bench worker`), with env added to this process's
// environment. Their stderr is ours.
func Exec(argv []string, env ...string) Spawner {
	return func(ctx context.Context, i int) (*Pipes, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		cmd.WaitDelay = 5 * time.Second
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start worker %d: %w", i, err)
		}
		return &Pipes{In: in, Out: out, Wait: cmd.Wait, PID: cmd.Process.Pid}, nil
	}
}

// InProcess spawns workers as goroutines running Serve, for tests: the
// same protocol without processes.
func InProcess() Spawner {
	return func(ctx context.Context, _ int) (*Pipes, error) {
		cmdR, cmdW := io.Pipe()
		repR, repW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := Serve(ctx, cmdR, repW)
			repW.CloseWithError(io.EOF)
			cmdR.Close()
			done <- err
		}()
		return &Pipes{In: cmdW, Out: repR, Wait: func() error { return <-done }, PID: os.Getpid()}, nil
	}
}

// Coordinator drives a set of workers.
type Coordinator struct {
	workers []*remote
}

// remote is the coordinator's end of one worker.
type remote struct {
	i       int
	pipes   *Pipes
	enc     *json.Encoder
	replies chan Reply
	gone    chan struct{} // closed when the worker's output ended
	err     error         // why, once gone is closed

	mu    sync.Mutex
	stats load.Stats
}

// Start spawns n workers.
func Start(ctx context.Context, spawn Spawner, n int) (*Coordinator, error) {
	c := &Coordinator{}
	for i := range n {
		p, err := spawn(ctx, i)
		if err != nil {
			c.Close()
			return nil, err
		}
		r := &remote{i: i, pipes: p, enc: json.NewEncoder(p.In), replies: make(chan Reply, 1), gone: make(chan struct{})}
		go r.read()
		c.workers = append(c.workers, r)
	}
	return c, nil
}

// read routes the worker's replies: Stats are kept, answers queued.
func (r *remote) read() {
	defer close(r.gone)
	sc := bufio.NewScanner(r.pipes.Out)
	sc.Buffer(make([]byte, 64<<10), 1<<30) // a final report of a big run is large
	for sc.Scan() {
		var rep Reply
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			r.err = fmt.Errorf("worker %d: bad reply: %w", r.i, err)
			return
		}
		if rep.Op == OpStats && rep.Stats != nil {
			r.mu.Lock()
			r.stats = *rep.Stats
			r.mu.Unlock()
			continue
		}
		r.replies <- rep
	}
	r.err = sc.Err()
	if r.err == nil {
		r.err = fmt.Errorf("worker %d exited", r.i)
	}
}

// Workers is the number of workers.
func (c *Coordinator) Workers() int { return len(c.workers) }

// PIDs returns the workers' processes, each once.
func (c *Coordinator) PIDs() []int {
	var pids []int
	for _, r := range c.workers {
		if !slices.Contains(pids, r.pipes.PID) {
			pids = append(pids, r.pipes.PID)
		}
	}
	return pids
}

// Do sends each worker i the command cmd(i) and waits for every answer.
// A worker's error answer, or its exit, fails the whole call.
func (c *Coordinator) Do(ctx context.Context, cmd func(i int) Command) ([]Reply, error) {
	for _, r := range c.workers {
		if err := r.enc.Encode(cmd(r.i)); err != nil {
			return nil, fmt.Errorf("worker %d: send command: %w", r.i, err)
		}
	}
	out := make([]Reply, len(c.workers))
	var errs []error
	for _, r := range c.workers {
		select {
		case rep := <-r.replies:
			if rep.Err != "" {
				errs = append(errs, fmt.Errorf("worker %d: %s: %s", r.i, rep.Op, rep.Err))
			}
			out[r.i] = rep
		case <-r.gone:
			errs = append(errs, r.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, errors.Join(errs...)
}

// All sends every worker the same command.
func (c *Coordinator) All(ctx context.Context, cmd Command) ([]Reply, error) {
	return c.Do(ctx, func(int) Command { return cmd })
}

// Stats adds up the workers' latest running figures.
func (c *Coordinator) Stats() load.Stats {
	var s load.Stats
	for _, r := range c.workers {
		r.mu.Lock()
		s.Add(r.stats)
		r.mu.Unlock()
	}
	return s
}

// Close asks every worker to close and waits for it to exit, at most a
// few seconds each before its pipes are closed under it.
func (c *Coordinator) Close() error {
	var errs []error
	for _, r := range c.workers {
		_ = r.enc.Encode(Command{Op: OpClose})
		select {
		case <-r.gone:
		case <-time.After(10 * time.Second):
		}
		r.pipes.In.Close()
		r.pipes.Out.Close()
		if err := r.pipes.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", r.i, err))
		}
	}
	return errors.Join(errs...)
}
