package sample

import (
	"context"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Target is a process to watch.
type Target struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// Endpoint is a Prometheus text endpoint to scrape.
type Endpoint struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Config says what to sample.
type Config struct {
	Interval  time.Duration // default 1 s
	Processes []Target
	Endpoints []Endpoint
	// Metrics are the metric names kept from every endpoint. Each point is
	// the sum over the metric's label sets (so a gauge split by labels
	// reads as its total); a sum of NaN or ±Inf is left out.
	Metrics []string
	// Client scrapes the endpoints; default: a client timing out after
	// the interval. Its timeout bounds how long Stop can wait.
	Client *http.Client
}

// ProcPoint is one reading of a process.
type ProcPoint struct {
	Time       time.Time `json:"t"`
	CPUSeconds float64   `json:"cpu_s"`   // since the process started
	CPUPercent float64   `json:"cpu_pct"` // since the previous point; 100 = one core busy
	RSSBytes   int64     `json:"rss_bytes"`
	Threads    int       `json:"threads"`
}

// ProcSeries is a process's readings. A process that could not be read
// (typically: it exited) is not read again; Error says why.
type ProcSeries struct {
	Target
	Points []ProcPoint `json:"points"`
	Error  string      `json:"error,omitempty"`
}

// MetricPoint is one scraped value.
type MetricPoint struct {
	Time  time.Time `json:"t"`
	Value float64   `json:"v"`
}

// MetricSeries is one metric of one endpoint over time. Scrapes that
// failed leave no point; Errors counts them and Error is the last reason.
type MetricSeries struct {
	Endpoint string        `json:"endpoint"`
	Metric   string        `json:"metric"`
	Points   []MetricPoint `json:"points"`
	Errors   int           `json:"errors,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Result is everything a Sampler collected, with its summary.
type Result struct {
	Summary   Summary        `json:"summary"`
	Processes []ProcSeries   `json:"processes,omitempty"`
	Metrics   []MetricSeries `json:"metrics,omitempty"`
}

// Sampler samples in the background between Start and Stop.
type Sampler struct {
	cfg  Config
	stop chan struct{}
	done chan struct{}

	// Owned by the sampling goroutine until done is closed, then by Stop.
	last   time.Time // of the latest sample
	procs  []ProcSeries
	series []MetricSeries // per endpoint, per metric, in Config order
}

// Start takes a first sample at once and then one every interval.
func Start(cfg Config) *Sampler {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Interval}
	}
	s := &Sampler{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	for _, t := range cfg.Processes {
		s.procs = append(s.procs, ProcSeries{Target: t})
	}
	for _, e := range cfg.Endpoints {
		for _, m := range cfg.Metrics {
			s.series = append(s.series, MetricSeries{Endpoint: e.Name, Metric: m})
		}
	}
	go s.loop()
	return s
}

func (s *Sampler) loop() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// Stop ends sampling and returns the result. It takes a last sample, so
// that even a short run has a start and an end, unless the latest is under
// half an interval old: CPU time counts in ticks of 10 ms, so a rate over a
// much shorter time would be mostly rounding. Call it once.
func (s *Sampler) Stop() Result {
	close(s.stop)
	<-s.done
	if time.Since(s.last) >= s.cfg.Interval/2 {
		s.sample()
	}
	r := Result{Processes: slices.Clone(s.procs), Metrics: slices.Clone(s.series)}
	r.Summary = summarize(r)
	return r
}

// sample takes one reading of every process and endpoint, all stamped
// with the same time so that readings of different processes add up.
func (s *Sampler) sample() {
	now := time.Now()
	s.last = now
	// Scrape outside the lock: it waits on the network.
	scraped := make([][]PromSample, len(s.cfg.Endpoints))
	errs := make([]error, len(s.cfg.Endpoints))
	var wg sync.WaitGroup
	for i, e := range s.cfg.Endpoints {
		wg.Go(func() { scraped[i], errs[i] = ScrapeProm(context.Background(), s.cfg.Client, e.URL) })
	}
	wg.Wait()

	for i := range s.procs {
		if s.procs[i].Error == "" {
			readProc(&s.procs[i], now)
		}
	}
	for i := range s.cfg.Endpoints {
		for j, m := range s.cfg.Metrics {
			ms := &s.series[i*len(s.cfg.Metrics)+j]
			if errs[i] != nil {
				ms.Errors++
				ms.Error = errs[i].Error()
				continue
			}
			if v, ok := sum(scraped[i], m); ok && !math.IsNaN(v) && !math.IsInf(v, 0) { // JSON holds neither
				ms.Points = append(ms.Points, MetricPoint{Time: now, Value: v})
			}
		}
	}
}

// readProc adds a reading to ps or, if the process cannot be read, sets
// its Error, which ends its sampling.
func readProc(ps *ProcSeries, now time.Time) {
	p, err := ReadProc(ps.PID)
	if err != nil {
		ps.Error = err.Error()
		return
	}
	pt := ProcPoint{Time: now, CPUSeconds: p.CPUSeconds, RSSBytes: p.RSSBytes, Threads: p.Threads}
	if n := len(ps.Points); n > 0 {
		prev := ps.Points[n-1]
		if dt := now.Sub(prev.Time).Seconds(); dt > 0 {
			pt.CPUPercent = 100 * (p.CPUSeconds - prev.CPUSeconds) / dt
		}
	}
	ps.Points = append(ps.Points, pt)
}

// sum adds up the samples named name, reporting whether there were any.
func sum(samples []PromSample, name string) (float64, bool) {
	var v float64
	found := false
	for _, s := range samples {
		if s.Name == name {
			v += s.Value
			found = true
		}
	}
	return v, found
}
