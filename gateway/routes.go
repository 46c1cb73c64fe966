package gateway

import "net/http"

// router is the gateway's ServeMux, remembering every pattern it is given,
// so a test can check that schemas/openapi.yaml documents exactly the
// routes served.
type router struct {
	*http.ServeMux
	patterns []string
}

func newRouter() *router { return &router{ServeMux: http.NewServeMux()} }

// HandleFunc registers and records a route.
func (rt *router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	rt.ServeMux.HandleFunc(pattern, h)
	rt.patterns = append(rt.patterns, pattern)
}

// Handle registers and records a route.
func (rt *router) Handle(pattern string, h http.Handler) {
	rt.ServeMux.Handle(pattern, h)
	rt.patterns = append(rt.patterns, pattern)
}
