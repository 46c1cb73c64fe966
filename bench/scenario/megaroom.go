package scenario

import (
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/parley-chat/parley/bench/load"
)

var megaroomScenario = Scenario{
	Name:    "megaroom",
	Summary: "one room with N online members; one member sends K messages: broadcast fan-out time, send until the last member has it",
	Bind: func(fs *flag.FlagSet) func() (Design, error) {
		members := fs.Int("members", 5000, "online members, one client each")
		messages := fs.Int("messages", 20, "messages the one sender sends")
		rate := fs.Float64("rate", 1, "messages per second: keep fan-outs apart to measure each alone")
		return func() (Design, error) {
			if err := positive(map[string]int{"members": *members, "messages": *messages}); err != nil {
				return Design{}, err
			}
			if *rate <= 0 {
				return Design{}, fmt.Errorf("--rate must be positive")
			}
			d := Design{
				Params:   map[string]any{"members": *members, "messages": *messages, "rate": *rate},
				Fanout:   true,
				Findings: megaroomFindings,
			}
			for range *members {
				d.Clients = append(d.Clients, Client{Rooms: []int{0}})
			}
			// Message i is due at i/rate: the last at (K-1)/rate.
			dur := time.Duration(float64(*messages) / *rate * float64(time.Second))
			st := step(*rate, dur, []Slot{{0, 0}})
			st.Messages = *messages
			d.Steps = []Step{st}
			return d, nil
		}
	},
}

// megaroomFindings: each message's time from send until its last
// receiver got it, over all workers.
func megaroomFindings(o *Outcome) Findings {
	var f Findings
	online := o.Connect.Count(load.Connected)
	f.figure("Members online", float64(online), "", "")
	points := o.Total.Fanout()
	if len(points) == 0 {
		return f
	}
	var times []time.Duration
	complete := 0
	t := Table{
		Title:  "Fan-out per message",
		Note:   "Time from send until the last online member received it; deliveries/s is receivers ÷ that time.",
		Header: []string{"seq", "receivers", "send → last delivery", "deliveries/s"},
	}
	for _, p := range points {
		d := time.Duration(p.Last - p.SentAt)
		times = append(times, d)
		if p.Receivers >= online {
			complete++
		}
		t.Rows = append(t.Rows, []string{fmt.Sprint(p.Seq), fmt.Sprint(p.Receivers), fmtDur(d), fmtNum(perSecond(p.Receivers, d))})
	}
	slices.Sort(times)
	f.figure("Messages that reached every online member", float64(complete), "", fmt.Sprintf("of %d", len(points)))
	f.latency("Fan-out time p50", times[len(times)/2], "send until the last member has it")
	f.latency("Fan-out time max", times[len(times)-1], "")
	if mid := times[len(times)/2]; mid > 0 {
		f.figure("Fan-out deliveries/s (median message)", perSecond(online, mid), "/s", "online members ÷ median fan-out time")
	}
	f.Tables = append(f.Tables, t)
	return f
}
