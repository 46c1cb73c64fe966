package httpapi

import (
	"net/http"
	"strings"
	"time"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"
	"github.com/parley-chat/parley/pkg/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// Router routes the gateway's requests and remembers every pattern it is
// given, so a test can check that schemas/openapi.yaml documents exactly
// the routes served. API routes (/api/…) and the others (health, metrics,
// /ws and the web app, which takes every other GET path) are routed apart,
// so the web app's catch-all never answers for the API. A request that no
// route takes gets the API's JSON error instead of ServeMux's plain text:
// 405 with an Allow header where its path is served with other methods,
// else 404.
type Router struct {
	api, site *http.ServeMux
	patterns  []string
	fail      func(w http.ResponseWriter, r *http.Request, e *protocol.Error)
	// Latency, when set, observes each routed request's duration in
	// seconds, but WebSocket upgrades' (which last as long as the
	// connection on the goroutine transport).
	Latency prometheus.Observer
}

const apiPrefix = "/api/"

// NewRouter answers unrouted requests with fail.
func NewRouter(fail func(w http.ResponseWriter, r *http.Request, e *protocol.Error)) *Router {
	return &Router{api: http.NewServeMux(), site: http.NewServeMux(), fail: fail}
}

// muxFor is the mux that routes path.
func (rt *Router) muxFor(path string) *http.ServeMux {
	if strings.HasPrefix(path, apiPrefix) {
		return rt.api
	}
	return rt.site
}

// HandleFunc registers and records a route.
func (rt *Router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, http.HandlerFunc(h))
}

// Handle registers and records a route, a ServeMux pattern
// "[METHOD ]/path".
func (rt *Router) Handle(pattern string, h http.Handler) {
	path := pattern
	if _, p, hasMethod := strings.Cut(pattern, " "); hasMethod {
		path = p
	}
	rt.muxFor(path).Handle(pattern, h)
	rt.patterns = append(rt.patterns, pattern)
}

// Patterns lists the routes registered, in order.
func (rt *Router) Patterns() []string { return rt.patterns }

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := rt.muxFor(r.URL.Path)
	h, pattern := mux.Handler(r)
	if pattern == "" { // ServeMux's own 404 or 405
		rt.unrouted(w, r, h)
		return
	}
	if rt.Latency != nil && pattern != webSocketPattern {
		start := time.Now()
		defer func() { rt.Latency.Observe(time.Since(start).Seconds()) }()
	}
	mux.ServeHTTP(w, r)
}

// webSocketPattern is the route of WebSocket upgrades.
const webSocketPattern = "GET /ws"

// unrouted answers a request that no route takes with the status and Allow
// header of ServeMux's answer h, and the API's JSON error body.
func (rt *Router) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	probe := statusProbe{header: make(http.Header)}
	h.ServeHTTP(&probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		rt.fail(w, r, protocol.Reject(pb.ErrorCode_ERROR_CODE_METHOD_NOT_ALLOWED, "%s %s: allowed methods are %s", r.Method, r.URL.Path, allow))
		return
	}
	rt.fail(w, r, protocol.Reject(pb.ErrorCode_ERROR_CODE_NOT_FOUND, "no route %s %s", r.Method, r.URL.Path))
}

// statusProbe is a ResponseWriter that keeps only the status and headers.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }
