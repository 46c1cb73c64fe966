package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/sample"
)

// comparison is a row of the results table: a figure of a Run, and
// whether the Run measured it at all.
type comparison struct {
	label  string
	value  func(Run) (float64, bool)
	format func(float64) string
}

func durf(f float64) string { return dur(time.Duration(f)) }

func sizef(f float64) string { return size(int64(f)) }

func percentf(f float64) string { return fmt.Sprintf("%.0f%%", f) }

func countOf(f func(Run) uint64) func(Run) (float64, bool) {
	return func(r Run) (float64, bool) { return float64(f(r)), true }
}

func rateOf(f func(Throughput) float64) func(Run) (float64, bool) {
	return func(r Run) (float64, bool) { return f(r.Throughput), true }
}

func latencyOf(f func(Latency) metrics.Snapshot, p func(metrics.Snapshot) time.Duration) func(Run) (float64, bool) {
	return func(r Run) (float64, bool) {
		s := f(r.Latency)
		return float64(p(s)), s.Count > 0
	}
}

func serverOf(f func(sample.ProcSummary) float64) func(Run) (float64, bool) {
	return func(r Run) (float64, bool) {
		if r.Server == nil {
			return 0, false
		}
		return f(r.Server.Summary.Total), true
	}
}

var (
	sendAck     = func(l Latency) metrics.Snapshot { return l.SendAck }
	sendDeliver = func(l Latency) metrics.Snapshot { return l.SendDeliver }
	p50         = func(s metrics.Snapshot) time.Duration { return s.P50 }
	p99         = func(s metrics.Snapshot) time.Duration { return s.P99 }
	p999        = func(s metrics.Snapshot) time.Duration { return s.P999 }
)

var comparisons = []comparison{
	{"Connections", countOf(func(r Run) uint64 { return r.Totals.Connections }), num},
	{"Messages sent", countOf(func(r Run) uint64 { return r.Totals.Sent }), num},
	{"Messages acked", countOf(func(r Run) uint64 { return r.Totals.Acked }), num},
	{"Deliveries", countOf(func(r Run) uint64 { return r.Totals.Delivered }), num},
	{"Errors", countOf(func(r Run) uint64 { return r.Totals.Errors }), num},
	{"Sent/s", rateOf(func(t Throughput) float64 { return t.SentPerSec }), num},
	{"Delivered/s", rateOf(func(t Throughput) float64 { return t.DeliveredPerSec }), num},
	{"Peak delivered/s", rateOf(func(t Throughput) float64 { return t.PeakDeliveredPerSec }), num},
	{"send→ack p50", latencyOf(sendAck, p50), durf},
	{"send→ack p99", latencyOf(sendAck, p99), durf},
	{"send→ack p99.9", latencyOf(sendAck, p999), durf},
	{"send→deliver p50", latencyOf(sendDeliver, p50), durf},
	{"send→deliver p99", latencyOf(sendDeliver, p99), durf},
	{"send→deliver p99.9", latencyOf(sendDeliver, p999), durf},
	{"Server CPU time (s)", serverOf(func(p sample.ProcSummary) float64 { return p.CPUSeconds }), num},
	{"Server mean CPU", serverOf(func(p sample.ProcSummary) float64 { return p.MeanCPUPercent }), percentf},
	{"Server peak RSS", serverOf(func(p sample.ProcSummary) float64 { return float64(p.PeakRSSBytes) }), sizef},
}

// summary renders summary.md.
func summary(r *Result) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("# Bench: %s\n\n", r.Scenario)
	m := r.Machine
	table(&b, []string{"Run", ""}, "ll", [][]string{
		{"Started", r.Start.UTC().Format("2006-01-02 15:04:05 UTC")},
		{"Duration", r.End.Sub(r.Start).Round(time.Second).String()},
		{"Command", "`" + strings.Join(r.Command, " ") + "`"},
		{"Machine", fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s, %s %s %s, %s",
			m.CPUModel, m.Cores, m.GOMAXPROCS, size(m.MemoryBytes), m.OS, m.Kernel, m.Arch, m.GoVersion)},
		{"Host", m.Hostname},
		{"Server processes", DescribeServers(r.Servers)},
	})

	if len(r.Params) > 0 {
		p("\n## Parameters\n\n")
		var rows [][]string
		for _, k := range slices.Sorted(maps.Keys(r.Params)) {
			rows = append(rows, []string{k, fmt.Sprint(r.Params[k])})
		}
		table(&b, []string{"Parameter", "Value"}, "ll", rows)
	}

	p("\n## Results\n\n")
	header, align := []string{"", r.Scenario}, "lr"
	for _, bl := range r.Baselines {
		header = append(header, bl.Name, "ratio")
		align += "rr"
	}
	var rows [][]string
	for _, c := range comparisons {
		// A row shows when some run has a nonzero figure; unmeasured ones read "–".
		show := false
		fig := func(run Run) (float64, string) {
			v, ok := c.value(run)
			if !ok {
				return 0, "–"
			}
			show = show || v != 0
			return v, c.format(v)
		}
		v, text := fig(r.Run)
		row := []string{c.label, text}
		for _, bl := range r.Baselines {
			bv, btext := fig(bl.Run)
			row = append(row, btext, ratio(v, bv))
		}
		if show {
			rows = append(rows, row)
		}
	}
	table(&b, header, align, rows)
	if len(r.Baselines) > 0 {
		p("\nRatio: this run ÷ baseline (above 1: more throughput, or slower).\n")
		for _, bl := range r.Baselines {
			if bl.Description != "" {
				p("\n- **%s**: %s", bl.Name, bl.Description)
			}
		}
		p("\n")
	}

	p("\n## Latency\n\n")
	rows = nil
	add := func(name string, s metrics.Snapshot) {
		if s.Count > 0 {
			rows = append(rows, []string{name, num(float64(s.Count)), dur(s.Min), dur(s.P50), dur(s.P90), dur(s.P99), dur(s.P999), dur(s.Max), dur(s.Mean)})
		}
	}
	add("send→ack", r.Run.Latency.SendAck)
	add("send→deliver", r.Run.Latency.SendDeliver)
	for _, bl := range r.Baselines {
		add("send→ack ("+bl.Name+")", bl.Run.Latency.SendAck)
		add("send→deliver ("+bl.Name+")", bl.Run.Latency.SendDeliver)
	}
	table(&b, []string{"", "count", "min", "p50", "p90", "p99", "p99.9", "max", "mean"}, "lrrrrrrrr", rows)

	if v := r.Run.Verify; v != nil {
		p("\n## Delivery verification\n\n")
		if v.Clean() {
			p("**Clean**: every receiver got every acknowledged message exactly once, in order, and the server stored each client message once.\n\n")
		} else {
			p("**Anomalies found.**\n\n")
		}
		table(&b, []string{"Rooms", "Receivers", "Sent", "Acked", "Delivered", "Lost", "Duplicated", "Reordered", "Stored twice", "Gaps", "Silent"}, "rrrrrrrrrrr",
			[][]string{{num(float64(v.Rooms)), num(float64(v.Receivers)), num(float64(v.Sent)), num(float64(v.Acked)), num(float64(v.Delivered)),
				num(float64(v.Lost)), num(float64(v.Duplicated)), num(float64(v.Reordered)), num(float64(v.StoredTwice)), num(float64(v.Gaps)), num(float64(v.Silent))}})
	}

	if s := r.Run.Server; s != nil {
		p("\n## Server\n\n")
		rows = nil
		for _, ps := range append(slices.Clone(s.Summary.Processes), s.Summary.Total) {
			pid := ""
			if ps.PID != 0 {
				pid = fmt.Sprint(ps.PID)
			}
			rows = append(rows, []string{ps.Name, pid, fmt.Sprintf("%.1f", ps.CPUSeconds), percentf(ps.MeanCPUPercent),
				percentf(ps.PeakCPUPercent), size(ps.PeakRSSBytes), fmt.Sprint(ps.PeakThreads)})
		}
		table(&b, []string{"Process", "PID", "CPU s", "mean CPU", "peak CPU", "peak RSS", "peak threads"}, "lrrrrrr", rows)
		if len(s.Summary.Metrics) > 0 {
			p("\n")
			rows = nil
			for _, ms := range s.Summary.Metrics {
				rows = append(rows, []string{ms.Metric, ms.Endpoint, num(ms.Last), num(ms.Max), num(ms.Mean)})
			}
			table(&b, []string{"Metric", "Endpoint", "last", "max", "mean"}, "llrrr", rows)
		}
	}

	if len(r.Servers) > 0 {
		p("\nCommand lines:\n\n")
		for _, sp := range r.Servers {
			p("- %d: `%s`\n", sp.PID, strings.Join(sp.Command, " "))
		}
	}

	p("\n## Over time\n\n![latency and throughput over time](chart.svg)\n")
	return b.String()
}

// table writes a Markdown table; align has an 'l' or 'r' per column.
func table(b *strings.Builder, header []string, align string, rows [][]string) {
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + cell(c) + " |")
		}
		b.WriteString("\n")
	}
	line(header)
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = "---"
		if align[i] == 'r' {
			seps[i] = "--:"
		}
	}
	line(seps)
	for _, r := range rows {
		line(r)
	}
}

// cell keeps a value from breaking the table.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
