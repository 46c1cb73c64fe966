package scenario

import (
	"flag"
	"fmt"
	"time"

	"github.com/parley-chat/parley/bench/load"
)

var reconnectScenario = Scenario{
	Name: "reconnect",
	Summary: "clients in rooms with traffic all drop their connections at once (no close handshake) and resume after their last seq: " +
		"time until every client has caught up, with no gap",
	Bind: func(fs *flag.FlagSet) func() (Design, error) {
		clients := fs.Int("clients", 1000, "clients, one user each")
		roomSize := fs.Int("room-size", 10, "members per room")
		rate, duration := trafficFlags(fs, 500, 20*time.Second)
		dropAt := fs.Duration("drop-at", 0, "when after the start every client drops (default: a third of --duration)")
		return func() (Design, error) {
			if err := positive(map[string]int{"clients": *clients, "room-size": *roomSize}); err != nil {
				return Design{}, err
			}
			if err := checkTraffic(*rate, *duration); err != nil {
				return Design{}, err
			}
			at := *dropAt
			if at == 0 {
				at = *duration / 3
			}
			if at <= 0 || at >= *duration {
				return Design{}, fmt.Errorf("--drop-at must fall within --duration")
			}
			rooms := max(1, *clients / *roomSize)
			d := Design{
				Params: map[string]any{
					"clients": *clients, "rooms": rooms, "rate": *rate, "duration": duration.String(), "drop_at": at.Round(time.Millisecond).String(),
				},
				Findings: reconnectFindings,
			}
			for i := range *clients {
				d.Clients = append(d.Clients, Client{Rooms: []int{i * rooms / *clients}})
			}
			st := step(*rate, *duration, shuffled(d.memberSlots()))
			st.DisruptAt = at
			d.Steps = []Step{st}
			return d, nil
		}
	},
}

func reconnectFindings(o *Outcome) Findings {
	var f Findings
	t := o.Total
	dropped := t.Count(load.Disrupted)
	f.figure("Clients dropped", float64(dropped), "", "all at once, without a close handshake")
	f.figure("Clients caught up", float64(t.Count(load.CaughtUp)), "", fmt.Sprintf("of %d: back at every room's head after resubscribing", dropped))
	catchUp := t.Latency(load.CatchUp)
	f.latency("Time to full catch-up", catchUp.Max, "drop until the last client had every message up to the heads its resubscribes reported")
	f.snapshotFigures("Catch-up per client", catchUp, "drop until caught up")
	f.snapshotFigures("Resume per client", t.Latency(load.Resume), "drop until reconnected and every room resubscribed")
	return f
}
