package ops

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a process's metrics registry, holding the Go
// runtime's figures (go_*, with the live heap as go_gc_heap_live_bytes),
// the process's (process_*: CPU, resident memory, open files) and the
// build's (go_build_info). Components register their own collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return reg
}

// Desc names a metric of a component: parley_<name>, with help text and
// labels.
func Desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("parley_"+name, help, labels, nil)
}

// Count sends a counter's value.
func Count(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// Level sends a gauge's value.
func Level(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// latencyBuckets are the upper bounds, in seconds, of Parley's latency
// histograms: 0.5 ms to 10 s.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Latency returns a histogram of durations in seconds, parley_<name>.
func Latency(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_" + name, Help: help, Buckets: latencyBuckets})
}
