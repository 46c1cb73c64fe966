package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestServesAppAndSDK(t *testing.T) {
	h := Handler()
	for path, ctype := range map[string]string{
		"/":                "text/html; charset=utf-8",
		"/index.html":      "text/html; charset=utf-8",
		"/app.js":          "text/javascript; charset=utf-8",
		"/style.css":       "text/css; charset=utf-8",
		"/favicon.svg":     "image/svg+xml",
		"/sdk/parley.js":   "text/javascript; charset=utf-8",
		"/sdk/parley.d.ts": "text/plain; charset=utf-8",
	} {
		res := get(t, h, path, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: HTTP %d", path, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != ctype {
			t.Errorf("%s: Content-Type %q, want %q", path, got, ctype)
		}
		if got := res.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy || strings.Contains(got, "unsafe-inline") {
			t.Errorf("%s: Content-Security-Policy %q", path, got)
		}
		if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" {
			t.Errorf("%s: Cache-Control %q, ETag %q: want no-cache with an ETag", path, res.Header.Get("Cache-Control"), res.Header.Get("ETag"))
		}
	}
}

func TestRevalidatesWithETag(t *testing.T) {
	h := Handler()
	etag := get(t, h, "/app.js", nil).Header.Get("ETag")
	if res := get(t, h, "/app.js", http.Header{"If-None-Match": {etag}}); res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with the current ETag: HTTP %d, want 304", res.StatusCode)
	}
	if get(t, h, "/style.css", nil).Header.Get("ETag") == etag {
		t.Fatal("two files share an ETag")
	}
}

func TestUnknownPathIsNotFound(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/nope.js", "/sdk/README.md", "/app/app.js", "/sdk/"} {
		if res := get(t, h, path, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: HTTP %d, want 404", path, res.StatusCode)
		}
	}
}
