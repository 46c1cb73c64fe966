// Package ops serves what operators and orchestrators ask of every Parley
// process: liveness (/healthz), readiness (/readyz), Prometheus metrics
// (/metrics) and runtime profiles (/debug/pprof/). Each component
// contributes a Check and a prometheus.Collector to the process's
// registry (NewRegistry); the process decides the address.
//
// Metric labels are low-cardinality only: a code, a kind, a close reason,
// never a room or a user.
package ops

import (
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports why a process is not alive or not ready; nil means it is.
type Check func() error

// Handler serves /livez (the process answers: for a liveness probe,
// which must not depend on NATS or the store, or their hiccup restarts
// every pod at once), /healthz (every live check passes), /readyz (every
// ready check passes; 503 with the first failure otherwise), /metrics
// (what metrics gathers) and /debug/pprof/.
func Handler(live, ready []Check, metrics prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", checked(nil, "ok"))
	mux.HandleFunc("GET /healthz", checked(live, "ok"))
	mux.HandleFunc("GET /readyz", checked(ready, "ready"))
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func checked(checks []Check, okText string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for _, c := range checks {
			if err := c(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, okText)
	}
}
