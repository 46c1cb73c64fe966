package scenario

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/bench/load"
)

// trafficFlags binds the flags every chatting scenario has.
func trafficFlags(fs *flag.FlagSet, rate float64, d time.Duration) (*float64, *time.Duration) {
	return fs.Float64("rate", rate, "messages per second, all senders together"),
		fs.Duration("duration", d, "how long to send")
}

func checkTraffic(rate float64, d time.Duration) error {
	if rate <= 0 || d <= 0 {
		return fmt.Errorf("--rate and --duration must be positive")
	}
	return nil
}

// step is a step of rate messages per second by senders in turn.
func step(rate float64, d time.Duration, senders []Slot) Step {
	return Step{Name: fmt.Sprintf("%g msg/s", rate), Duration: d, Rate: rate, Senders: senders}
}

var dmScenario = Scenario{
	Name:    "dm",
	Summary: "many 1:1 conversations: pairs of users in two-member rooms, both sending",
	Bind: func(fs *flag.FlagSet) func() (Design, error) {
		pairs := fs.Int("pairs", 1000, "two-member rooms, two clients each")
		rate, duration := trafficFlags(fs, 1000, 30*time.Second)
		return func() (Design, error) {
			if err := positive(map[string]int{"pairs": *pairs}); err != nil {
				return Design{}, err
			}
			if err := checkTraffic(*rate, *duration); err != nil {
				return Design{}, err
			}
			d := Design{Params: map[string]any{"pairs": *pairs, "rate": *rate, "duration": duration.String()}}
			for p := range *pairs {
				d.Clients = append(d.Clients, Client{Rooms: []int{p}}, Client{Rooms: []int{p}})
			}
			d.Steps = []Step{step(*rate, *duration, shuffled(d.memberSlots()))}
			return d, nil
		}
	},
}

var groupsScenario = Scenario{
	Name: "groups",
	Summary: "R rooms × M members, all online and subscribed, every member sending, S messages/s in total; " +
		"--ramp steps through rates to find the highest one whose p99 send→deliver stays within --slo",
	Bind: func(fs *flag.FlagSet) func() (Design, error) {
		grid := bindGrid(fs, 100, 10, 2000, 30*time.Second)
		slo := fs.Duration("slo", 50*time.Millisecond, "the p99 send→deliver a sustained rate must keep")
		return func() (Design, error) {
			d, err := grid.design()
			if err != nil {
				return Design{}, err
			}
			d.Params["slo"] = slo.String()
			d.Findings = func(o *Outcome) Findings { return sustainedFindings(o, *slo) }
			return d, nil
		}
	},
}

// gridFlags are the flags of a scenario of R rooms × M members, every
// member sending, at one rate or a ramp of rates.
type gridFlags struct {
	rooms, members *int
	rate           *float64
	duration       *time.Duration
	ramp           *string
}

func bindGrid(fs *flag.FlagSet, rooms, members int, rate float64, d time.Duration) gridFlags {
	g := gridFlags{rooms: fs.Int("rooms", rooms, "rooms"), members: fs.Int("members", members, "members per room, one client each")}
	g.rate, g.duration = trafficFlags(fs, rate, d)
	g.ramp = fs.String("ramp", "", "comma-separated rates to run one after another, each for --duration (instead of --rate)")
	return g
}

// design places member m of room r as client r·M+m, subscribed to that
// room only; every member is a sender, in a shuffled order so that
// consecutive messages hit different rooms and partitions; one step per
// rate.
func (g gridFlags) design() (Design, error) {
	if err := positive(map[string]int{"rooms": *g.rooms, "members": *g.members}); err != nil {
		return Design{}, err
	}
	rates, err := parseRates(*g.ramp, *g.rate)
	if err != nil {
		return Design{}, err
	}
	if err := checkTraffic(rates[0], *g.duration); err != nil {
		return Design{}, err
	}
	d := Design{Params: map[string]any{"rooms": *g.rooms, "members": *g.members, "duration": g.duration.String()}}
	if *g.ramp != "" {
		d.Params["ramp"] = *g.ramp
	} else {
		d.Params["rate"] = *g.rate
	}
	for r := range *g.rooms {
		for range *g.members {
			d.Clients = append(d.Clients, Client{Rooms: []int{r}})
		}
	}
	senders := shuffled(d.memberSlots())
	for _, r := range rates {
		d.Steps = append(d.Steps, step(r, *g.duration, senders))
	}
	return d, nil
}

// parseRates reads a --ramp list, or gives the single rate without one.
func parseRates(ramp string, rate float64) ([]float64, error) {
	if ramp == "" {
		return []float64{rate}, nil
	}
	var out []float64
	for _, f := range strings.Split(ramp, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("--ramp: %q is not a positive rate", f)
		}
		out = append(out, r)
	}
	return out, nil
}

// sustainedFindings finds the highest step rate the server kept: sent at
// 95% of the target or more, every message acked, p99 send→deliver
// within slo.
func sustainedFindings(o *Outcome, slo time.Duration) Findings {
	var f Findings
	var best float64
	for _, s := range o.Steps {
		a := s.Agg
		sent := a.Count(load.Sent)
		if perSecond(sent, s.Step.Duration) >= 0.95*s.Step.Rate && a.Count(load.Acked) == sent && a.Latency(load.SendDeliver).P99 <= slo {
			best = max(best, s.Step.Rate)
		}
	}
	name := fmt.Sprintf("Max sustained msg/s with p99 send→deliver ≤ %v", slo)
	if best == 0 {
		f.figure(name, 0, "/s", "no step qualified (see Steps): lower the rate")
		return f
	}
	f.figure(name, best, "/s", "the highest step rate that qualified: a lower bound; --ramp for more steps")
	if bl := o.Result.Baselines; len(bl) > 0 && bl[0].Run.Throughput.AckedPerSec > 0 {
		f.figure("Max sustained ÷ raw JetStream publish/s", best/bl[0].Run.Throughput.AckedPerSec, "", "")
	}
	return f
}

var mixedScenario = Scenario{
	Name: "mixed",
	Summary: "a realistic mix: mostly idle users, some active senders, some reading history, all in the same rooms " +
		"(typing and receipts join once the gateway serves them)",
	Bind: func(fs *flag.FlagSet) func() (Design, error) {
		idle := fs.Int("idle", 2000, "users online in their room doing nothing")
		active := fs.Int("active", 200, "users sending messages")
		readers := fs.Int("readers", 100, "users reading history pages")
		roomSize := fs.Int("room-size", 20, "members per room")
		rate, duration := trafficFlags(fs, 500, 30*time.Second)
		historyRate := fs.Float64("history-rate", 50, "history page reads per second, all readers together")
		return func() (Design, error) {
			if err := positive(map[string]int{"idle": *idle, "active": *active, "readers": *readers, "room-size": *roomSize}); err != nil {
				return Design{}, err
			}
			if err := checkTraffic(*rate, *duration); err != nil {
				return Design{}, err
			}
			n := *idle + *active + *readers
			rooms := max(1, n / *roomSize)
			d := Design{Params: map[string]any{
				"idle": *idle, "active": *active, "readers": *readers, "rooms": rooms,
				"rate": *rate, "history_rate": *historyRate, "duration": duration.String(),
			}}
			// Clients go round the rooms, so every room holds each kind:
			// active ones first, then readers, then idle ones.
			var senders, readSlots []Slot
			for i := range n {
				r := i % rooms
				d.Clients = append(d.Clients, Client{Rooms: []int{r}})
				switch {
				case i < *active:
					senders = append(senders, Slot{i, r})
				case i < *active+*readers:
					readSlots = append(readSlots, Slot{i, r})
				}
			}
			st := step(*rate, *duration, senders)
			st.HistoryRate, st.Readers = *historyRate, readSlots
			// Extension point: typing indicators and read receipts get
			// their own rates and slots here, and in load.Traffic, once the
			// gateway serves Typing and MarkRead; no stand-in until then.
			d.Steps = []Step{st}
			d.Findings = mixedFindings
			return d, nil
		}
	},
}

func mixedFindings(o *Outcome) Findings {
	var f Findings
	t := o.Total
	f.figure("History reads/s", perSecond(t.Count(load.HistoryReads), o.Design.Steps[0].Duration), "/s", "")
	f.snapshotFigures("History read", t.Latency(load.History), "newest page of 50, checked dense and ascending")
	return f
}
