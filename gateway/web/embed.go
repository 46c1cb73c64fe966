// Package web serves Parley's web client and its JavaScript SDK, embedded
// in the binary: the app (app/) at / and the SDK (sdk/) at /sdk/.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed app sdk/parley.js sdk/parley.d.ts
var files embed.FS

// ContentSecurityPolicy allows the pages only their own scripts, styles and
// images (no inline code, no other origin) and connections to the API and
// the WebSocket.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".ts":   "text/plain; charset=utf-8", // parley.d.ts, to read
}

// asset is one file to serve, with its validator.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the embedded files. They are revalidated on every use
// (Cache-Control: no-cache, with an ETag of their content), so a new
// binary takes effect at the next page load and an unchanged file costs a
// 304.
func Handler() http.Handler {
	assets := make(map[string]asset)
	add := func(dir, prefix string) {
		_ = fs.WalkDir(files, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			body, err := files.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(body)
			assets[prefix+p[len(dir)+1:]] = asset{
				body:  body,
				ctype: contentTypes[path.Ext(p)],
				etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			}
			return nil
		})
	}
	add("app", "/")
	add("sdk", "/sdk/")
	assets["/"] = assets["/index.html"]

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
