package sample

import "time"

// Summary condenses a Result.
type Summary struct {
	Processes []ProcSummary `json:"processes,omitempty"`
	// Total adds up the processes at each sampling time (its PID is 0):
	// the server as a whole.
	Total   ProcSummary     `json:"total"`
	Metrics []MetricSummary `json:"metrics,omitempty"`
}

// ProcSummary condenses a process's readings over the sampling window.
type ProcSummary struct {
	Target
	CPUSeconds     float64 `json:"cpu_seconds"`      // consumed during the window
	MeanCPUPercent float64 `json:"mean_cpu_percent"` // CPUSeconds over the window; 100 = one core
	PeakCPUPercent float64 `json:"peak_cpu_percent"` // highest over one interval
	PeakRSSBytes   int64   `json:"peak_rss_bytes"`
	PeakThreads    int     `json:"peak_threads"`
}

// MetricSummary condenses a metric's points.
type MetricSummary struct {
	Endpoint string  `json:"endpoint"`
	Metric   string  `json:"metric"`
	Points   int     `json:"points"`
	Last     float64 `json:"last"`
	Max      float64 `json:"max"`
	Mean     float64 `json:"mean"`
}

func summarize(r Result) Summary {
	var s Summary
	var total []ProcPoint // one point per sampling time, in order
	at := map[time.Time]int{}
	for _, ps := range r.Processes {
		s.Processes = append(s.Processes, summarizeProc(ps.Target, ps.Points))
		for _, p := range ps.Points {
			i, ok := at[p.Time]
			if !ok {
				i = len(total)
				at[p.Time] = i
				total = append(total, ProcPoint{Time: p.Time})
			}
			t := &total[i]
			t.CPUPercent += p.CPUPercent
			t.RSSBytes += p.RSSBytes
			t.Threads += p.Threads
		}
	}
	s.Total = summarizeProc(Target{Name: "total"}, total) // peaks of the sums
	// CPU time adds up the processes' own, rather than differencing summed
	// readings, which would drop when a process exits.
	for _, p := range s.Processes {
		s.Total.CPUSeconds += p.CPUSeconds
	}
	if w := window(total); w > 0 {
		s.Total.MeanCPUPercent = 100 * s.Total.CPUSeconds / w
	}
	for _, ms := range r.Metrics {
		m := MetricSummary{Endpoint: ms.Endpoint, Metric: ms.Metric, Points: len(ms.Points)}
		for i, p := range ms.Points {
			if i == 0 || p.Value > m.Max {
				m.Max = p.Value
			}
			m.Mean += p.Value / float64(len(ms.Points))
			m.Last = p.Value
		}
		s.Metrics = append(s.Metrics, m)
	}
	return s
}

// summarizeProc condenses points of one process, in time order.
func summarizeProc(t Target, points []ProcPoint) ProcSummary {
	s := ProcSummary{Target: t}
	if len(points) == 0 {
		return s
	}
	first, last := points[0], points[len(points)-1]
	s.CPUSeconds = last.CPUSeconds - first.CPUSeconds
	if w := window(points); w > 0 {
		s.MeanCPUPercent = 100 * s.CPUSeconds / w
	}
	for _, p := range points {
		s.PeakCPUPercent = max(s.PeakCPUPercent, p.CPUPercent)
		s.PeakRSSBytes = max(s.PeakRSSBytes, p.RSSBytes)
		s.PeakThreads = max(s.PeakThreads, p.Threads)
	}
	return s
}

// window is the seconds between the first and last point.
func window(points []ProcPoint) float64 {
	if len(points) < 2 {
		return 0
	}
	return points[len(points)-1].Time.Sub(points[0].Time).Seconds()
}
