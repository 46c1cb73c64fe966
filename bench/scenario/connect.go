package scenario

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/bench/sample"
)

var connectScenario = Scenario{
	Name:    "connect",
	Summary: "connection storm, then idle connections held, each subscribed to a few rooms: connect rate and server memory per connection",
	Bind: func(fs *flag.FlagSet) func() (Design, error) {
		clients := fs.Int("clients", 5000, "connections to open, one user each")
		perClient := fs.Int("rooms-per-client", 3, "rooms each client subscribes to")
		roomSize := fs.Int("room-size", 30, "members per room")
		hold := fs.Duration("hold", 30*time.Second, "how long to hold the idle connections while sampling the server")
		return func() (Design, error) {
			if err := positive(map[string]int{"clients": *clients, "rooms-per-client": *perClient, "room-size": *roomSize}); err != nil {
				return Design{}, err
			}
			if *hold <= 0 {
				return Design{}, fmt.Errorf("--hold must be positive")
			}
			// Client i's memberships are i·k … i·k+k-1 round the rooms: k
			// distinct rooms each, room-size members per room.
			k := *perClient
			rooms := max(k, *clients*k / *roomSize)
			d := Design{
				Params:   map[string]any{"clients": *clients, "rooms_per_client": k, "rooms": rooms, "hold": hold.String()},
				Hold:     *hold,
				Findings: connectFindings,
			}
			for i := range *clients {
				var c Client
				for j := range k {
					c.Rooms = append(c.Rooms, (i*k+j)%rooms)
				}
				d.Clients = append(d.Clients, c)
			}
			return d, nil
		}
	},
}

// connectFindings derives the server's memory per held connection: its
// memory during the hold against before the storm, divided by the
// connections. RSS comes from /proc; Go heap and stacks from /metrics,
// when the server exports them. Go keeps freed memory, so on a server
// that ran earlier loads the RSS growth reads low: run connect first.
func connectFindings(o *Outcome) Findings {
	var f Findings
	if o.Hold == nil {
		return f
	}
	f.figure("Reconnects during the hold", float64(o.Hold.Count(load.Connected)), "", "idle connections the server closed (see Errors)")
	connected := float64(o.Connect.Count(load.Connected))
	if o.Server == nil || connected == 0 {
		return f
	}
	note := fmt.Sprintf("growth over the hold's mean ÷ %.0f connections, each subscribed to %v rooms", connected, o.Design.Params["rooms_per_client"])
	if rss := meanProcs(o.Server, o.Hold.Start); rss > 0 && o.ServerRSSBefore > 0 {
		f.figure("Server RSS before connecting", float64(o.ServerRSSBefore), "bytes", "")
		f.figure("Server RSS while holding", rss, "bytes", "mean over the hold")
		f.figure("Server RSS per connection", (rss-float64(o.ServerRSSBefore))/connected, "bytes", note)
		end := lastProcs(o.Server)
		f.figure("Server RSS at the end of the hold", end, "bytes", "last sample: after a garbage collection once the hold passes the runtime's forced one (2 min)")
		f.figure("Server RSS per connection at the end of the hold", (end-float64(o.ServerRSSBefore))/connected, "bytes",
			"steady state of idle connections: the storm's garbage collected, free memory returned")
	}
	heap := []string{"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes"}
	if during, ok := meanMetrics(o.Server, o.Hold.Start, heap); ok {
		var before float64
		for _, m := range heap {
			before += o.MetricsBefore[m]
		}
		f.figure("Server Go heap+stacks while holding", during, "bytes", "mean over the hold")
		f.figure("Server Go heap+stacks per connection", (during-before)/connected, "bytes", note)
	}
	if end, ok := lastMetric(o.Server, liveHeap); ok {
		before := o.MetricsBefore[liveHeap]
		f.figure("Server Go live heap at the end of the hold", end, "bytes", "what the last GC found live")
		f.figure("Server Go live heap per connection", (end-before)/connected, "bytes",
			"growth ÷ connections: the connections' own objects, without the garbage collector's headroom (GOGC) that heap in use and RSS include")
	}
	if cpu, secs := cpuWindow(o.Server, o.Hold.Start, o.Hold.End); secs > 0 {
		f.figure("Server CPU while holding", 100*cpu/secs, "%", "idle connections: heartbeats only (100% = one core)")
	}
	if t, ok := endpointTable(o.Server, o.Hold.Start); ok {
		f.Tables = append(f.Tables, t)
	}
	return f
}

// endpointTable shows each scraped process's share of the hold, when
// there are several (gateways sharing a port): means from from on of its
// connections, RSS and Go heap+stacks.
func endpointTable(r *sample.Result, from time.Time) (Table, bool) {
	const conns, rss, heap, stacks = "parley_gateway_connections", "process_resident_memory_bytes",
		"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes"
	means := map[string]map[string]float64{}
	var endpoints []string
	for _, m := range r.Metrics {
		at := map[time.Time]float64{}
		for _, pt := range m.Points {
			if !pt.Time.Before(from) {
				at[pt.Time] = pt.Value
			}
		}
		if means[m.Endpoint] == nil {
			means[m.Endpoint] = map[string]float64{}
			endpoints = append(endpoints, m.Endpoint)
		}
		means[m.Endpoint][m.Metric] = meanOf(at)
	}
	if len(endpoints) < 2 {
		return Table{}, false
	}
	t := Table{
		Title:  "Per process while holding",
		Note:   "Means over the hold of each process's own /metrics. Heap+stacks per connection includes the process's fixed share.",
		Header: []string{"endpoint", "connections", "RSS", "Go heap+stacks", "heap+stacks per connection"},
	}
	for _, e := range endpoints {
		m := means[e]
		per := "–"
		if m[conns] > 0 {
			per = fmtBytes((m[heap] + m[stacks]) / m[conns])
		}
		t.Rows = append(t.Rows, []string{e, fmtNum(m[conns]), fmtBytes(m[rss]), fmtBytes(m[heap] + m[stacks]), per})
	}
	return t, true
}

// meanProcs averages the sampled processes' summed RSS from from on.
func meanProcs(r *sample.Result, from time.Time) float64 {
	at := map[time.Time]float64{}
	for _, p := range r.Processes {
		for _, pt := range p.Points {
			if !pt.Time.Before(from) {
				at[pt.Time] += float64(pt.RSSBytes)
			}
		}
	}
	return meanOf(at)
}

// lastProcs sums the sampled processes' last RSS.
func lastProcs(r *sample.Result) float64 {
	var sum float64
	for _, p := range r.Processes {
		if len(p.Points) > 0 {
			sum += float64(p.Points[len(p.Points)-1].RSSBytes)
		}
	}
	return sum
}

// liveHeap is the Go heap the last garbage collection found live.
const liveHeap = "go_gc_heap_live_bytes"

// lastMetric sums each endpoint's latest value of name.
func lastMetric(r *sample.Result, name string) (float64, bool) {
	var sum float64
	found := false
	for _, m := range r.Metrics {
		if m.Metric == name && len(m.Points) > 0 {
			sum += m.Points[len(m.Points)-1].Value
			found = true
		}
	}
	return sum, found
}

// meanMetrics averages the sum of metrics (over names and endpoints) from
// from on, reporting false unless every name was sampled.
func meanMetrics(r *sample.Result, from time.Time, names []string) (float64, bool) {
	at := map[time.Time]float64{}
	found := map[string]bool{}
	for _, m := range r.Metrics {
		if !slices.Contains(names, m.Metric) {
			continue
		}
		for _, pt := range m.Points {
			if !pt.Time.Before(from) {
				at[pt.Time] += pt.Value
				found[m.Metric] = true
			}
		}
	}
	return meanOf(at), len(found) == len(names)
}

func meanOf(at map[time.Time]float64) float64 {
	if len(at) == 0 {
		return 0
	}
	var sum float64
	for _, v := range at {
		sum += v
	}
	return sum / float64(len(at))
}

// positive checks integer flags by name.
func positive(flags map[string]int) error {
	for _, name := range slices.Sorted(maps.Keys(flags)) {
		if flags[name] <= 0 {
			return fmt.Errorf("--%s must be positive", name)
		}
	}
	return nil
}
