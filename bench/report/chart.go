package report

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	"github.com/parley-chat/parley/bench/metrics"
)

// Chart layout: two panels sharing an x axis of seconds since the start.
const (
	chartW, chartH = 900, 500
	plotLeft       = 80.0
	plotRight      = 870.0
	gridColor      = "#ddd"
)

type panel struct{ top, bottom float64 }

var (
	latencyPanel = panel{top: 60, bottom: 265}
	ratePanel    = panel{top: 315, bottom: 445}
)

// line is one plotted series; its title shows as a tooltip.
type line struct {
	title  string
	color  string
	dashed bool
	xs     []int64   // Unix seconds
	ys     []float64 // µs for latencies, events/s for rates
}

var percentiles = []struct {
	name  string
	color string
	of    func(metrics.Snapshot) time.Duration
}{
	{"p50", "#1f77b4", p50},
	{"p99", "#ff7f0e", p99},
	{"p99.9", "#d62728", p999},
}

// latencyLines returns a line per percentile of each latency the timeline
// has, and a compact legend: one entry per colour, one per dash style.
func latencyLines(tl Timeline) (lines, legend []line) {
	for _, p := range percentiles {
		legend = append(legend, line{title: p.name, color: p.color})
	}
	for _, kind := range []struct {
		name   string
		dashed bool
		data   []metrics.IntervalSnapshot
	}{{"send→deliver", false, tl.SendDeliver}, {"send→ack", true, tl.SendAck}} {
		if len(kind.data) == 0 {
			continue
		}
		legend = append(legend, line{title: kind.name, color: "#555", dashed: kind.dashed})
		for _, p := range percentiles {
			l := line{title: kind.name + " " + p.name, color: p.color, dashed: kind.dashed}
			for _, s := range kind.data {
				l.xs = append(l.xs, s.Unix)
				l.ys = append(l.ys, float64(p.of(s.Snapshot))/float64(time.Microsecond))
			}
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil, nil
	}
	return lines, legend
}

func rateLines(tl Timeline) []line {
	var out []line
	for _, kind := range []struct {
		name, color string
		data        []metrics.Rate
	}{{"sent/s", "#2ca02c", tl.Sent}, {"delivered/s", "#9467bd", tl.Delivered}} {
		if len(kind.data) == 0 {
			continue
		}
		l := line{title: kind.name, color: kind.color}
		for _, r := range kind.data {
			l.xs = append(l.xs, r.Unix)
			l.ys = append(l.ys, float64(r.Count))
		}
		out = append(out, l)
	}
	return out
}

// svg accumulates the chart's markup.
type svg struct{ strings.Builder }

func (s *svg) text(x, y float64, anchor, attrs, body string) {
	fmt.Fprintf(s, `<text x="%.1f" y="%.1f" text-anchor="%s"%s>%s</text>`+"\n", x, y, anchor, attrs, html.EscapeString(body))
}

func (s *svg) hline(y float64, color string) {
	fmt.Fprintf(s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", plotLeft, y, plotRight, y, color)
}

// dash is the stroke attribute of a dashed line.
func (l line) dash() string {
	if l.dashed {
		return ` stroke-dasharray="6 4"`
	}
	return ""
}

func (s *svg) polyline(l line, x func(int64) float64, y func(float64) float64) {
	fmt.Fprintf(s, `<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="`, l.color, l.dash())
	for i := range l.xs {
		if i > 0 {
			s.WriteByte(' ')
		}
		fmt.Fprintf(s, "%.1f,%.1f", x(l.xs[i]), y(l.ys[i]))
	}
	fmt.Fprintf(s, `"><title>%s</title></polyline>`+"\n", html.EscapeString(l.title))
}

// legend draws a row of line samples and labels just above a panel.
func (s *svg) legend(p panel, lines []line) {
	x := plotLeft
	for _, l := range lines {
		fmt.Fprintf(s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", x, p.top-12, x+22, p.top-12, l.color, l.dash())
		s.text(x+27, p.top-8, "start", ` font-size="11"`, l.title)
		x += 40 + 6.5*float64(len([]rune(l.title)))
	}
}

// yTitle draws a panel's vertical axis title.
func (s *svg) yTitle(p panel, title string) {
	x, y := 18.0, (p.top+p.bottom)/2
	s.text(x, y, "middle", fmt.Sprintf(` transform="rotate(-90 %.1f %.1f)"`, x, y), title)
}

// frame outlines a panel, or says it has nothing to show.
func (s *svg) frame(p panel, empty bool) {
	fmt.Fprintf(s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#999"/>`+"\n", plotLeft, p.top, plotRight-plotLeft, p.bottom-p.top)
	if empty {
		s.text((plotLeft+plotRight)/2, (p.top+p.bottom)/2, "middle", ` fill="#999"`, "no data")
	}
}

// chart renders chart.svg: latency percentiles on a log scale over
// throughput, against seconds since the run started.
func chart(r *Result) string {
	lat, latLegend := latencyLines(r.Run.Timeline)
	rates := rateLines(r.Run.Timeline)
	t0 := r.Start.Unix()
	lo, hi := int64(0), max(r.End.Unix()-t0, 1)
	for _, l := range append(lat, rates...) {
		for _, x := range l.xs {
			lo, hi = min(lo, x-t0), max(hi, x-t0)
		}
	}
	x := func(unix int64) float64 {
		return plotLeft + float64(unix-t0-lo)/float64(hi-lo)*(plotRight-plotLeft)
	}

	var s svg
	fmt.Fprintf(&s, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">
<rect width="%d" height="%d" fill="#fff"/>
`, chartW, chartH, chartW, chartH, chartW, chartH)
	s.text(chartW/2, 22, "middle", ` font-size="15" font-weight="bold"`,
		fmt.Sprintf("%s — %s", r.Scenario, r.Start.UTC().Format("2006-01-02 15:04 UTC")))

	// Time grid across both panels; labels under the lower one.
	step := max(niceStep(float64(hi-lo)/8), 1) // whole seconds
	for t := math.Ceil(float64(lo)/step) * step; t <= float64(hi); t += step {
		px := x(t0 + int64(t))
		for _, p := range []panel{latencyPanel, ratePanel} {
			fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", px, p.top, px, p.bottom, gridColor)
		}
		s.text(px, ratePanel.bottom+16, "middle", "", fmt.Sprintf("%g", t))
	}
	s.text((plotLeft+plotRight)/2, ratePanel.bottom+40, "middle", "", "seconds since start")

	s.latencyPanel(lat, latLegend, x)
	s.ratePanel(rates, x)
	s.WriteString("</svg>\n")
	return s.String()
}

// latencyPanel plots lines in µs on a log scale spanning whole decades.
func (s *svg) latencyPanel(lines, legend []line, x func(int64) float64) {
	p := latencyPanel
	lowest, highest := math.Inf(1), 0.0
	for _, l := range lines {
		for _, v := range l.ys {
			if v > 0 {
				lowest, highest = min(lowest, v), max(highest, v)
			}
		}
	}
	s.yTitle(p, "latency (log scale)")
	if highest == 0 {
		s.frame(p, true)
		return
	}
	lo := math.Floor(math.Log10(lowest))
	hi := max(math.Ceil(math.Log10(highest)), lo+1)
	y := func(v float64) float64 {
		e := lo
		if v > 0 {
			e = max(math.Log10(v), lo)
		}
		return p.bottom - (e-lo)/(hi-lo)*(p.bottom-p.top)
	}
	for e := lo; e <= hi; e++ {
		decade := math.Pow(10, e)
		s.hline(y(decade), "#bbb")
		s.text(plotLeft-6, y(decade)+4, "end", "", decadeLabel(int(e)))
		if e < hi {
			for _, m := range []float64{2, 5} {
				s.hline(y(m*decade), gridColor)
			}
		}
	}
	s.frame(p, false)
	for _, l := range lines {
		s.polyline(l, x, y)
	}
	s.legend(p, legend)
}

// ratePanel plots lines in events per second on a linear scale from 0.
func (s *svg) ratePanel(lines []line, x func(int64) float64) {
	p := ratePanel
	highest := 0.0
	for _, l := range lines {
		for _, v := range l.ys {
			highest = max(highest, v)
		}
	}
	s.yTitle(p, "messages/s")
	if len(lines) == 0 {
		s.frame(p, true)
		return
	}
	headroom := max(highest, 1) * 1.05 // keep the busiest second off the frame
	step := niceStep(headroom / 4)
	top := math.Ceil(headroom/step) * step
	y := func(v float64) float64 { return p.bottom - v/top*(p.bottom-p.top) }
	for v := 0.0; v <= top; v += step {
		s.hline(y(v), gridColor)
		s.text(plotLeft-6, y(v)+4, "end", "", short(v))
	}
	s.frame(p, false)
	for _, l := range lines {
		s.polyline(l, x, y)
	}
	s.legend(p, lines)
}

// decadeLabel names 10^e microseconds: 1µs, 10µs, …, 1ms, …, 100s.
func decadeLabel(e int) string {
	units := []string{"µs", "ms", "s"}
	u := min(e/3, len(units)-1)
	return fmt.Sprintf("%.0f%s", math.Pow(10, float64(e-3*u)), units[u])
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}
