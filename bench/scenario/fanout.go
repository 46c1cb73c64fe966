package scenario

import (
	"flag"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/bench/metrics"
)

var fanoutScenario = Scenario{
	Name: "fanout",
	Summary: "a few large rooms, every member online and sending, at a rate meant to saturate the gateways' fan-out: " +
		"deliveries/s achieved against offered, send→deliver and fan-out time",
	Bind: func(fs *flag.FlagSet) func() (Design, error) {
		grid := bindGrid(fs, 2, 1000, 100, 15*time.Second)
		return func() (Design, error) {
			d, err := grid.design()
			if err != nil {
				return Design{}, err
			}
			d.Fanout = true
			d.Findings = fanoutFindings
			return d, nil
		}
	},
}

// fanoutStep is what one step of the fanout scenario achieved.
type fanoutStep struct {
	name        string
	offered     float64 // messages sent per second × members per room
	achieved    float64 // deliveries ÷ (last delivery − step start)
	complete    int     // messages every member got
	messages    int
	sendDeliver metrics.Snapshot
	times       []time.Duration // per message, send until its last delivery, sorted
}

func measureFanout(s StepOutcome, members int) fanoutStep {
	a := s.Agg
	st := fanoutStep{
		name:        s.Step.Name,
		offered:     perSecond(a.Count(load.Sent), s.Step.Duration) * float64(members),
		sendDeliver: a.Latency(load.SendDeliver),
	}
	last := s.End
	for _, p := range a.Fanout() {
		st.times = append(st.times, time.Duration(p.Last-p.SentAt))
		if at := time.Unix(0, p.Last); at.After(last) {
			last = at
		}
		if p.Receivers >= uint64(members) {
			st.complete++
		}
	}
	slices.Sort(st.times)
	st.messages = len(st.times)
	st.achieved = perSecond(a.Count(load.Delivered), last.Sub(s.Start))
	return st
}

// quantile returns the q-quantile (0 < q ≤ 1) of sorted durations, 0 for
// none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]
}

// fanoutFindings: per step, the deliveries/s the server achieved against
// those offered, and the fastest step's figures. A step whose deliveries
// fall well below the offered rate measured the server's fan-out limit
// (on a machine the bench shares: see its CPU columns in Steps).
func fanoutFindings(o *Outcome) Findings {
	var f Findings
	members, _ := o.Design.Params["members"].(int)
	t := Table{
		Title: "Fan-out per step",
		Note: "Offered: messages sent/s × members per room (every member, the sender included, receives each message). " +
			"Achieved: the step's deliveries ÷ the time from its start until its last delivery, drain included. " +
			"Fan-out time: send until the last member has the message.",
		Header: []string{"step", "offered deliveries/s", "achieved deliveries/s", "achieved ÷ offered",
			"send→deliver p50", "p99", "fan-out time p50", "p99", "max", "messages to every member"},
	}
	var best *fanoutStep
	for _, s := range o.Steps {
		st := measureFanout(s, members)
		t.Rows = append(t.Rows, []string{st.name, fmtNum(st.offered), fmtNum(st.achieved), fmt.Sprintf("%.2f", st.achieved/st.offered),
			fmtDur(st.sendDeliver.P50), fmtDur(st.sendDeliver.P99),
			fmtDur(quantile(st.times, 0.5)), fmtDur(quantile(st.times, 0.99)), fmtDur(quantile(st.times, 1)),
			fmt.Sprintf("%d of %d", st.complete, st.messages)})
		if best == nil || st.achieved > best.achieved {
			best = &st
		}
	}
	if best == nil || best.offered == 0 {
		return f
	}
	f.figure("Fan-out deliveries/s", best.achieved, "/s",
		fmt.Sprintf("step %s: its deliveries ÷ the time from its start until its last delivery", best.name))
	f.figure("Offered deliveries/s", best.offered, "/s", "that step's messages sent/s × members per room")
	f.figure("Achieved ÷ offered", best.achieved/best.offered, "", "well below 1: the server's fan-out (or the CPU it shares with the bench) was the limit")
	f.snapshotFigures("Send→deliver", best.sendDeliver, "that step's messages, drain included")
	f.latency("Fan-out time p50", quantile(best.times, 0.5), "send until the last member has it")
	f.latency("Fan-out time p99", quantile(best.times, 0.99), "")
	f.figure("Messages that reached every member", float64(best.complete), "", fmt.Sprintf("of %d", best.messages))
	f.Tables = append(f.Tables, t)
	return f
}
