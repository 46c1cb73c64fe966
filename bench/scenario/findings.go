package scenario

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-chat/parley/bench/load"
	"github.com/parley-chat/parley/bench/metrics"
	"github.com/parley-chat/parley/bench/sample"
	"github.com/parley-chat/parley/bench/verify"
)

// Findings are a run's figures beyond the generic ones of report.Result:
// what its scenario is about (memory per connection, fan-out time,
// catch-up time, the highest sustained rate, …) and what went wrong.
// WriteFindings puts them next to the report's files.
type Findings struct {
	Figures []Figure `json:"figures"`
	Tables  []Table  `json:"tables,omitempty"`
	Notes   []string `json:"notes,omitempty"` // what went wrong with the run itself
	// Failures are checks of the scenario that failed; any fails the run.
	Failures []string `json:"failures,omitempty"`
}

// Figure is one measured value.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"` // "ms", "bytes", "/s", "s", "" (a count or ratio)
	Note  string  `json:"note,omitempty"`
}

// Table is a small table of figures, already formatted.
type Table struct {
	Title  string     `json:"title"`
	Note   string     `json:"note,omitempty"`
	Header []string   `json:"header"`
	Rows   [][]string `json:"rows"`
}

func (f *Findings) add(o Findings) {
	f.Figures = append(f.Figures, o.Figures...)
	f.Tables = append(f.Tables, o.Tables...)
	f.Notes = append(f.Notes, o.Notes...)
	f.Failures = append(f.Failures, o.Failures...)
}

func (f *Findings) fail(format string, a ...any) {
	f.Failures = append(f.Failures, fmt.Sprintf(format, a...))
}

func (f *Findings) figure(name string, v float64, unit, note string) {
	f.Figures = append(f.Figures, Figure{Name: name, Value: v, Unit: unit, Note: note})
}

// latency adds a latency figure in milliseconds.
func (f *Findings) latency(name string, d time.Duration, note string) {
	f.figure(name, ms(d), "ms", note)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Text formats the value with its unit for people.
func (fg Figure) Text() string {
	switch fg.Unit {
	case "ms":
		return fmtMS(fg.Value)
	case "bytes":
		return fmtBytes(fg.Value)
	case "":
		return fmtNum(fg.Value)
	default:
		return fmtNum(fg.Value) + " " + fg.Unit
	}
}

func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func fmtDur(d time.Duration) string { return fmtMS(ms(d)) }

func fmtBytes(v float64) string {
	for _, u := range []struct {
		div  float64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if v >= u.div {
			return fmt.Sprintf("%.1f %s", v/u.div, u.name)
		}
	}
	return fmt.Sprintf("%.0f B", v)
}

func fmtNum(v float64) string {
	if v == float64(int64(v)) || v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// markdown renders the findings as a summary.md section.
func (f Findings) markdown() string {
	var b strings.Builder
	b.WriteString("\n## Findings\n\n")
	for _, n := range f.Failures {
		fmt.Fprintf(&b, "- **FAILED: %s**\n", n)
	}
	for _, n := range f.Notes {
		fmt.Fprintf(&b, "- **%s**\n", n)
	}
	if len(f.Notes)+len(f.Failures) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("| Figure | Value | Note |\n| --- | --: | --- |\n")
	for _, fg := range f.Figures {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(fg.Name), fg.Text(), cell(fg.Note))
	}
	for _, t := range f.Tables {
		fmt.Fprintf(&b, "\n### %s\n\n", t.Title)
		if t.Note != "" {
			fmt.Fprintf(&b, "%s\n\n", t.Note)
		}
		if len(t.Rows) == 0 {
			continue
		}
		row := func(cells []string) {
			b.WriteString("|")
			for _, c := range cells {
				b.WriteString(" " + cell(c) + " |")
			}
			b.WriteString("\n")
		}
		row(t.Header)
		seps := make([]string, len(t.Header))
		for i := range seps {
			seps[i] = "---"
		}
		row(seps)
		for _, r := range t.Rows {
			row(r)
		}
	}
	return b.String()
}

func cell(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }

// WriteFindings writes findings.json into dir, a report directory, and
// appends the findings to its summary.md.
func WriteFindings(dir string, f Findings) error {
	js, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "findings.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md, err := os.OpenFile(filepath.Join(dir, "summary.md"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := md.WriteString(f.markdown()); err != nil {
		md.Close()
		return err
	}
	return md.Close()
}

// genericFindings are the figures every run has.
func genericFindings(o *Outcome) Findings {
	var f Findings
	c := o.Connect
	connected := c.Count(load.Connected)
	f.figure("Clients connected", float64(connected), "", fmt.Sprintf("of %d, over %d worker processes", len(o.Design.Clients), o.Workers))
	f.figure("Connect rate", perSecond(connected, c.End.Sub(c.Start)), "/s",
		"clients connected, authenticated and subscribed to their rooms per second, all at once")
	f.latency("Connect p50", c.Latency(load.Connect).P50, "dial, WebSocket handshake, auth")
	f.latency("Connect p99", c.Latency(load.Connect).P99, "")
	f.latency("Subscribe p99", c.Latency(load.Subscribe).P99, "one Subscribe request")

	if len(o.Steps) > 0 {
		stepFindings(&f, o)
	}
	if v := o.Result.Run.Verify; v != nil {
		anomalyFindings(&f, *v)
	}
	f.Tables = append(f.Tables, errorTable(o))
	return f
}

// stepFindings adds the throughput figures and the table of steps.
func stepFindings(f *Findings, o *Outcome) {
	t := o.Total
	var window time.Duration
	rows := [][]string{}
	for _, s := range o.Steps {
		window += s.Step.Duration
		a := s.Agg
		sd, sa := a.Latency(load.SendDeliver), a.Latency(load.SendAck)
		cpu, secs := cpuWindow(o.Server, s.Start, s.End)
		rows = append(rows, []string{
			s.Step.Name, s.Step.Duration.String(), fmtNum(s.Step.Rate),
			fmtNum(perSecond(a.Count(load.Sent), s.Step.Duration)), fmtNum(perSecond(a.Count(load.Delivered), s.Step.Duration)),
			fmtDur(sd.P50), fmtDur(sd.P99), fmtDur(sd.Max), fmtDur(sa.P99), fmtDur(a.Latency(load.SendLag).P99),
			fmt.Sprint(a.Count(load.Reconnected)),
			percent(cpu, secs), fmt.Sprintf("%.2f", s.CPU.ServerWait), fmt.Sprintf("%.0f%%", 100*s.CPU.BenchCPU), fmt.Sprintf("%.0f%%", 100*s.CPU.MachineBusy),
		})
	}
	f.Tables = append(f.Tables, Table{
		Title: "Steps",
		Note: "Rates over each step's duration; latencies of its messages. Send lag is how late sends left against " +
			"their schedule: a large one means the load generator, not the server, fell behind. " +
			"Reconnects: client connections lost and re-established in the step or its drain (a disruption's drops included). " +
			"Server and bench CPU: 100% is one core. " +
			"Server CPU wait: the server's threads' time runnable but without a CPU, per second. Machine busy: all CPUs, 100% = all busy. " +
			"With the machine busy near 100% and a large CPU wait, latencies measure the crowded machine more than the server.",
		Header: []string{"step", "duration", "target msg/s", "sent/s", "delivered/s", "deliver p50", "deliver p99", "deliver max",
			"ack p99", "send lag p99", "reconnects", "server CPU", "server CPU wait", "bench CPU", "machine busy"},
		Rows: rows,
	})
	delivered := t.Count(load.Delivered)
	f.figure("Deliveries/s", perSecond(delivered, window), "/s", "messages received by clients, over the steps")
	if o.Server != nil && delivered > 0 {
		f.figure("Server CPU-seconds per million deliveries", o.Server.Summary.Total.CPUSeconds/float64(delivered)*1e6, "s",
			"server processes only, over the steps and their drains; the bench shares the machine")
	}
	if o.Backlog != nil {
		f.figure("Server backlog after the drain", float64(*o.Backlog), "",
			"messages the processor or the archiver had not finished when every client had its deliveries")
	}
	if bl := o.Result.Baselines; len(bl) > 0 && bl[0].Run.Server != nil && bl[0].Run.Totals.Acked > 0 && o.Server != nil && t.Count(load.Sent) > 0 {
		f.figure("Server CPU per message", 1e6*o.Server.Summary.Total.CPUSeconds/float64(t.Count(load.Sent)), "µs",
			"over the steps and their drains, its deliveries included")
		f.figure("Server CPU per message, raw JetStream", 1e6*bl[0].Run.Server.Summary.Total.CPUSeconds/float64(bl[0].Run.Totals.Acked), "µs",
			"the baseline's async publish with acks, for comparison")
	}
	f.figure("Reconnects", float64(o.count(load.Reconnected)), "",
		"client connections lost and re-established during the run, a disruption's drops included; per step in Steps")
	if n := t.Count(load.Retried); n > 0 {
		f.figure("Send retries", float64(n), "", fmt.Sprintf("same client_msg_id; %d acks said duplicate", t.Count(load.DuplicateAcks)))
	}
}

// anomalyFindings adds what delivery verification found wrong; any of it
// fails the run.
func anomalyFindings(f *Findings, v verify.Totals) {
	f.figure("Deliveries lost", float64(v.Lost), "", "seqs up to a room's highest acked one that a member never got")
	f.figure("Deliveries duplicated", float64(v.Duplicated), "", "seqs a member got again")
	f.figure("Deliveries reordered", float64(v.Reordered), "", "seqs a member got after a higher one")
	f.figure("Messages stored twice", float64(v.StoredTwice), "", "client messages (room, sender, client_msg_id) delivered under more than one seq")
}

// namedPhase is a part of the run that the workers reported on.
type namedPhase struct {
	name string
	agg  *load.Aggregate
}

// phases returns the parts of the run that took place, in order.
func (o *Outcome) phases() []namedPhase {
	phases := []namedPhase{{"connect", o.Connect}}
	if o.Hold != nil {
		phases = append(phases, namedPhase{"hold", o.Hold})
	}
	for _, s := range o.Steps {
		phases = append(phases, namedPhase{"step " + s.Step.Name, s.Agg})
	}
	return phases
}

// count adds up a counter over the whole run.
func (o *Outcome) count(c load.Counter) uint64 {
	var n uint64
	for _, p := range o.phases() {
		n += p.agg.Count(c)
	}
	return n
}

// errorTable lists every kind of error of the run.
func errorTable(o *Outcome) Table {
	t := Table{Title: "Errors", Header: []string{"phase", "error", "count", "first seen"}}
	for _, p := range o.phases() {
		for _, class := range p.agg.ErrorClasses() {
			e := p.agg.Errors[class]
			t.Rows = append(t.Rows, []string{p.name, class, fmt.Sprint(e.Count), e.Example})
		}
	}
	if len(t.Rows) == 0 {
		t.Note = "None."
	}
	return t
}

// cpuWindow is the CPU time the sampled processes used between from and
// to, from the samples inside that window, and the seconds those samples
// span.
func cpuWindow(r *sample.Result, from, to time.Time) (cpu, secs float64) {
	if r == nil {
		return 0, 0
	}
	for _, p := range r.Processes {
		var first, last *sample.ProcPoint
		for i := range p.Points {
			pt := &p.Points[i]
			if pt.Time.Before(from) || pt.Time.After(to) {
				continue
			}
			if first == nil {
				first = pt
			}
			last = pt
		}
		if first != nil {
			cpu += last.CPUSeconds - first.CPUSeconds
			secs = max(secs, last.Time.Sub(first.Time).Seconds())
		}
	}
	return cpu, secs
}

// percent formats CPU seconds over a window as a CPU percentage (100% =
// one core busy).
func percent(cpu, secs float64) string {
	if secs <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*cpu/secs)
}

// snapshotFigures adds p50, p99 and max of a latency.
func (f *Findings) snapshotFigures(name string, s metrics.Snapshot, note string) {
	f.latency(name+" p50", s.P50, note)
	f.latency(name+" p99", s.P99, "")
	f.latency(name+" max", s.Max, "")
}
