package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
)

// A request that no route takes gets the API's JSON error: 404 for a path
// nothing serves under /api/ (whatever the method, never the web app's
// answer), 405 with Allow for a served path asked with another method.
func TestUnroutedRequestsGetJSONErrors(t *testing.T) {
	h := New(nil, nil, nil, nil, zap.NewNop(), Config{DevTokens: true}).Handler()
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"POST", "/api/v1/nope", 404, "NOT_FOUND", ""},
		{"GET", "/api/v1/nope", 404, "NOT_FOUND", ""},
		{"DELETE", "/api/", 404, "NOT_FOUND", ""},
		{"DELETE", "/api/v1/rooms", 405, "METHOD_NOT_ALLOWED", "POST"},
		{"POST", "/api/v1/rooms/r1", 405, "METHOD_NOT_ALLOWED", "GET, HEAD, PATCH"},
		{"GET", "/api/v1/dev/tokens", 405, "METHOD_NOT_ALLOWED", "POST"},
		{"POST", "/healthz", 405, "METHOD_NOT_ALLOWED", "GET, HEAD"},
		{"PUT", "/ws", 405, "METHOD_NOT_ALLOWED", "GET, HEAD"},
		{"POST", "/index.html", 405, "METHOD_NOT_ALLOWED", "GET, HEAD"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		var body struct {
			Error struct{ Code, Message string }
		}
		err := json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != c.status || err != nil || body.Error.Code != c.code || body.Error.Message == "" {
			t.Errorf("%s %s: HTTP %d %q, want %d with the JSON error %s", c.method, c.path, w.Code, w.Body, c.status, c.code)
		}
		if got := w.Header().Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", c.method, c.path, ct)
		}
	}

	// Served routes and the web app are unchanged.
	for path, status := range map[string]int{"/": http.StatusOK, "/no-such-file": http.StatusNotFound} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != status || w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: HTTP %d, want %d from the web app", path, w.Code, status)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/rooms", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("POST /api/v1/rooms without a token: HTTP %d, want 401", w.Code)
	}
}
