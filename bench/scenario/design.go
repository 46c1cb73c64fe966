// Package scenario defines the bench's scenarios and runs them: it creates
// the users and rooms a scenario designs through Parley's HTTP API, splits
// the clients over worker processes (package coord), runs the connect
// phase and the load steps, samples the server meanwhile, measures a raw
// JetStream baseline, and assembles a report.Result with findings specific
// to the scenario.
package scenario

import (
	"flag"
	"time"
)

// Scenario is one named workload.
type Scenario struct {
	Name    string
	Summary string
	// Bind registers the scenario's flags on fs and returns what builds its
	// Design once they are parsed.
	Bind func(fs *flag.FlagSet) func() (Design, error)
}

// All lists the scenarios in the order the help shows them.
var All = []Scenario{connectScenario, dmScenario, groupsScenario, megaroomScenario, fanoutScenario, reconnectScenario, mixedScenario, chaosScenario}

// Lookup returns the scenario named name.
func Lookup(name string) (Scenario, bool) {
	for _, s := range All {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Design is a scenario's workload: who is online in which rooms, and what
// they do.
type Design struct {
	Params map[string]any
	// Clients are the simulated users, each one connection subscribed to
	// its rooms (indices from 0). A room's members are the clients that
	// list it; the first one creates and owns it.
	Clients []Client
	// Hold keeps the connections open and idle this long after connecting,
	// while the server is sampled.
	Hold time.Duration
	// Steps run one after another, each followed by a drain.
	Steps []Step
	// Fanout tracks when each message reached its last receiver.
	Fanout bool
	// VerifySteps has every step end with the verifier's summary so far
	// (StepOutcome.Verify), so anomalies can be told apart by step.
	VerifySteps bool
	// Archive checks the history store against the rooms at the end (see
	// ArchiveCheck).
	Archive bool
	// Findings adds the scenario's own figures to the generic ones.
	Findings func(*Outcome) Findings
}

// Client is one simulated user.
type Client struct {
	Rooms []int
}

// Step is one period of load, spread over the workers.
type Step struct {
	Name     string
	Duration time.Duration
	Rate     float64 // messages per second, all senders together
	Messages int     // at most this many (0: as many as Rate and Duration make)
	Senders  []Slot  // each sends one message in turn
	// HistoryRate is history reads per second by Readers in turn.
	HistoryRate float64
	Readers     []Slot
	// DisruptAt, if set, drops every connection at this offset; clients
	// reconnect and resume.
	DisruptAt time.Duration
	// RetryFor, if set, is how long a send is retried (see load.Traffic).
	RetryFor time.Duration
	// Fault, if set, is injected into the server during the step.
	Fault *Fault
}

// Slot is a client acting in one of its rooms.
type Slot struct {
	Client, Room int
}

// rooms returns each room's members, in client order.
func (d Design) rooms() [][]int {
	var members [][]int
	for i, c := range d.Clients {
		for _, r := range c.Rooms {
			for len(members) <= r {
				members = append(members, nil)
			}
			members[r] = append(members[r], i)
		}
	}
	return members
}

// memberSlots returns every (client, room) membership: each member of
// each room as a sender.
func (d Design) memberSlots() []Slot {
	var out []Slot
	for i, c := range d.Clients {
		for _, r := range c.Rooms {
			out = append(out, Slot{i, r})
		}
	}
	return out
}
