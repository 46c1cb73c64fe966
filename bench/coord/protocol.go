// Package coord runs a bench across worker processes: a coordinator
// spawns workers (re-executions of the parley binary as `parley-bench
// worker`, or goroutines in tests), hands each its load.Plan, starts every
// phase at one wall-clock instant, and collects their reports and running
// stats.
//
// The two sides speak JSON lines over the worker's stdin and stdout: one
// Command at a time to the worker, which answers each with one Reply of the
// same Op, and sends Stats replies on its own once a second in between.
// Worker logs go to stderr; stdout carries nothing but replies.
package coord

import (
	"time"

	"github.com/parley-chat/parley/bench/load"
)

// Op is what a Command asks of a worker.
type Op string

const (
	OpPlan    Op = "plan"    // take the Plan and get tokens
	OpConnect Op = "connect" // at At, connect every client
	OpRun     Op = "run"     // at At, run the Traffic
	OpDrain   Op = "drain"   // wait for deliveries and resumes to settle
	OpReport  Op = "report"  // answer with a Report; Final adds the verifier summary
	OpClose   Op = "close"   // close every connection and exit
	OpStats   Op = "stats"   // (worker to coordinator only) running figures
)

// Command is one order to a worker.
type Command struct {
	Op      Op            `json:"op"`
	Plan    *load.Plan    `json:"plan,omitempty"`
	Traffic *load.Traffic `json:"traffic,omitempty"`
	At      time.Time     `json:"at,omitzero"`
	Quiet   time.Duration `json:"quiet,omitempty"` // drain: settled after this long without deliveries
	Limit   time.Duration `json:"limit,omitempty"` // drain: give up after this long
	Final   bool          `json:"final,omitempty"`
}

// Reply is a worker's answer to a Command, or its running Stats.
type Reply struct {
	Op     Op           `json:"op"`
	Err    string       `json:"err,omitempty"`
	Report *load.Report `json:"report,omitempty"`
	Stats  *load.Stats  `json:"stats,omitempty"`
}
