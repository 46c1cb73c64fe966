// Package media is the gateway's HTTP API for files: one-shot and
// resumable uploads, downloads, previews and signed links. Who may read
// an upload and which messages carry it are package refs' job (the send
// path records references there); previews are package derive's.
//
// Invariants:
//   - Limits hold while streaming: a body is never buffered whole; the
//     per-file limit (Config.MaxFileBytes) and the per-user quota of bytes
//     in unsent uploads (Config.UserQuotaBytes) are enforced before or
//     while bytes are stored, and a refused upload leaves nothing behind.
//   - The type is sniffed from the bytes; images whose header declares
//     more than Config.MaxPixels pixels are refused before decoding.
//   - An upload belongs to its uploader until it is sent in a room; from
//     then on only members of a room where it was sent can fetch it,
//     checked at every download. Unknown ids and ids the caller may not
//     see get the same 404.
//   - Risky types (anything a browser could execute) are always served by
//     the gateway as attachments with nosniff; other downloads from S3 are
//     redirects to short-lived presigned URLs.
//   - Every upload in progress has a record holding its quota
//     reservation, so whatever a failure leaves behind is collected.
package media

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	pb "github.com/parley-chat/parley/pkg/proto/parleyv1"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/media/catalog"
	"github.com/parley-chat/parley/internal/media/derive"
	"github.com/parley-chat/parley/internal/media/inspect"
	"github.com/parley-chat/parley/internal/media/refs"
	blob "github.com/parley-chat/parley/pkg/media"
	"github.com/parley-chat/parley/pkg/protocol"
)

// Authenticator names the user a request is authenticated as (the
// gateway's bearer-token check), or fails.
type Authenticator interface {
	Authenticate(r *http.Request) (user string, err error)
}

// AuthFunc adapts a function to Authenticator.
type AuthFunc func(r *http.Request) (string, error)

func (f AuthFunc) Authenticate(r *http.Request) (string, error) { return f(r) }

// Config of the handler; zero fields take the defaults.
type Config struct {
	MaxFileBytes   int64         // default 100 MiB
	UserQuotaBytes int64         // bytes in a user's unsent uploads, default 1 GiB
	MaxPixels      int           // default 50 megapixels
	Scan           bool          // uploads wait for the virus-scan hook (package derive)
	PresignTTL     time.Duration // presigned URLs and links, default 5 minutes
	// LinkKey signs the gateway's links (see links.go); every gateway of a
	// deployment needs the same key. Empty: a random key, for one gateway.
	LinkKey []byte
}

// Defaults of the upload limits.
const (
	DefaultMaxFileBytes   = 100 << 20
	DefaultUserQuotaBytes = 1 << 30
)

func (c *Config) defaults() {
	if c.MaxFileBytes <= 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.UserQuotaBytes <= 0 {
		c.UserQuotaBytes = DefaultUserQuotaBytes
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = 50_000_000
	}
	if c.PresignTTL <= 0 {
		c.PresignTTL = 5 * time.Minute
	}
	if len(c.LinkKey) == 0 {
		c.LinkKey = make([]byte, 32)
		rand.Read(c.LinkKey)
	}
}

// Handler serves the routes below.
type Handler struct {
	cfg   Config
	auth  Authenticator
	refs  *refs.Refs
	cat   *catalog.Catalog
	blobs blob.Store
	js    jetstream.JetStream
	log   *zap.Logger
	mux   *http.ServeMux
}

// New returns the handler. js is used to enqueue derivative jobs (the
// derive work queue must exist: derive.EnsureQueue).
func New(cfg Config, auth Authenticator, keeper *refs.Refs, cat *catalog.Catalog, blobs blob.Store, js jetstream.JetStream, log *zap.Logger) *Handler {
	cfg.defaults()
	h := &Handler{cfg: cfg, auth: auth, refs: keeper, cat: cat, blobs: blobs, js: js, log: log, mux: http.NewServeMux()}
	h.Routes(h.mux.Handle)
	return h
}

// URLPrefix starts the url of every upload: URLPrefix + id.
const URLPrefix = refs.URLPrefix

// Routes registers each route with handle, e.g. a gateway's router's
// Handle.
func (h *Handler) Routes(handle func(pattern string, handler http.Handler)) {
	for pattern, fn := range map[string]func(http.ResponseWriter, *http.Request, string){
		"POST /api/v1/media":           h.oneShot,
		"GET /api/v1/media/{id}":       h.download,
		"GET /api/v1/media/{id}/thumb": h.thumb,
		"GET /api/v1/media/{id}/info":  h.info,
		"POST /api/v1/uploads":         h.create,
		"HEAD /api/v1/uploads/{id}":    h.offset,
		"PATCH /api/v1/uploads/{id}":   h.patch,
		"DELETE /api/v1/uploads/{id}":  h.cancel,
	} {
		handle(pattern, h.authed(fn))
	}
	handle("GET /api/v1/media/{id}/link/{variant}", http.HandlerFunc(h.link))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// fail answers a refusal with its code's HTTP status and the API's JSON
// error (pkg/protocol, the one vocabulary of codes).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, code pb.ErrorCode, msg string) {
	e := &protocol.Error{Code: code, Message: msg}
	h.log.Info("media request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path),
		zap.Int("status", e.HTTPStatus()), zap.String("code", protocol.CodeName(code)), zap.String("message", msg))
	writeJSON(w, e.HTTPStatus(), map[string]*protocol.Error{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) authed(fn func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every answer, downloads included, is to be taken as labelled.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		user, err := h.auth.Authenticate(r)
		if err != nil || user == "" {
			h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "missing, invalid or expired token")
			return
		}
		fn(w, r, user)
	})
}

// Upload is the JSON form of an upload in answers.
type Upload struct {
	ID          string        `json:"id"`
	URL         string        `json:"url"`
	State       catalog.State `json:"state"`
	Name        string        `json:"name,omitempty"`
	Kind        inspect.Kind  `json:"kind,omitempty"`
	ContentType string        `json:"content_type,omitempty"`
	Size        int64         `json:"size"`
	Offset      int64         `json:"offset,omitempty"`
	Width       int           `json:"width,omitempty"`
	Height      int           `json:"height,omitempty"`
	DurationMS  int64         `json:"duration_ms,omitempty"`
	ThumbURL    string        `json:"thumb_url,omitempty"`
	// Links, in info answers only: URLs that need no Authorization header
	// (for <img src>, <video>, a download link), valid until LinksExpire.
	FileLink    string     `json:"file_link,omitempty"`
	ThumbLink   string     `json:"thumb_link,omitempty"`
	LinksExpire *time.Time `json:"links_expire,omitempty"`
}

func uploadJSON(r catalog.Record) Upload {
	u := Upload{ID: r.ID, URL: URLPrefix + r.ID, State: r.State, Name: r.Name, Kind: r.Kind, ContentType: r.ContentType,
		Size: r.Size, Width: r.Width, Height: r.Height, DurationMS: r.DurationMS}
	if r.State == catalog.Uploading {
		u.Offset = r.Offset
	}
	if r.Thumb {
		u.ThumbURL = URLPrefix + r.ID + "/thumb"
	}
	return u
}

// fileName is the client's name for the file (?name=), reduced to a safe
// base name of at most 255 bytes.
func fileName(r *http.Request) string {
	n := path.Base(strings.ReplaceAll(r.URL.Query().Get("name"), "\\", "/"))
	if n == "." || n == ".." || n == "/" {
		return ""
	}
	n = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f || c == '"' {
			return -1
		}
		return c
	}, strings.ToValidUTF8(n, ""))
	for len(n) > 255 {
		_, size := utf8.DecodeLastRuneInString(n)
		n = n[:len(n)-size]
	}
	return n
}

// oneShot: POST /api/v1/media?name=…, the body is the file.
func (h *Handler) oneShot(w http.ResponseWriter, r *http.Request, user string) {
	if r.ContentLength > h.cfg.MaxFileBytes {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_FILE_TOO_LARGE, fmt.Sprintf("files are limited to %d bytes", h.cfg.MaxFileBytes))
		return
	}
	// Unknown length: reserve the most a file may be, and give back the
	// rest once the size is known.
	reserve := h.cfg.MaxFileBytes
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	rec, ok := h.begin(w, r, user, reserve, true)
	if !ok {
		return
	}
	if rec, ok = h.complete(w, r, rec, r.Body); ok {
		writeJSON(w, http.StatusCreated, uploadJSON(rec))
	}
}

// begin reserves n bytes of user's quota and records a new upload that is
// receiving them, so that a gateway dying midway leaves a record for the
// collector, never a reservation without one.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, user string, n int64, oneShot bool) (catalog.Record, bool) {
	if !h.reserve(w, r, user, n) {
		return catalog.Record{}, false
	}
	now := time.Now().UTC()
	rec := catalog.Record{ID: catalog.NewID(), Owner: user, Name: fileName(r), State: catalog.Uploading, OneShot: oneShot,
		Size: n, Reserved: n, Created: now, Updated: now}
	if err := h.cat.Create(r.Context(), rec); err != nil {
		_ = h.cat.Release(context.WithoutCancel(r.Context()), user, n)
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return rec, false
	}
	return rec, true
}

// complete streams body into rec's file through the checks of ingest and
// records the finished upload, then drops rec's parts and enqueues its
// previews. A refused upload is dropped whole.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, rec catalog.Record, body io.Reader) (catalog.Record, bool) {
	// Once the bytes are in, finishing must not depend on the client.
	ctx := context.WithoutCancel(r.Context())
	final := rec
	if !h.ingest(w, r, &final, body, rec.Reserved) {
		rec.Reserved = 0 // ingest gave it back
		_ = h.refs.Discard(ctx, rec)
		return rec, false
	}
	final.Parts, final.Offset, final.OneShot = nil, 0, false
	_, err := h.cat.Update(ctx, rec.ID, func(x *catalog.Record) error {
		if x.State != catalog.Uploading {
			return errMoved
		}
		*x = final
		return nil
	})
	if err != nil {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return rec, false
	}
	for _, p := range rec.Parts {
		_ = h.blobs.Delete(ctx, p.Key)
	}
	h.enqueue(ctx, rec.ID)
	return final, true
}

func (h *Handler) reserve(w http.ResponseWriter, r *http.Request, user string, n int64) bool {
	err := h.cat.Reserve(r.Context(), user, n, h.cfg.UserQuotaBytes)
	switch {
	case errors.Is(err, catalog.ErrQuota):
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_QUOTA_EXCEEDED, fmt.Sprintf("unsent uploads are limited to %d bytes per user: send or delete some first", h.cfg.UserQuotaBytes))
	case err != nil:
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
	default:
		return true
	}
	return false
}

// ingest sniffs body and stores it as rec's blob, filling rec's facts,
// final size, state and reservation (of which reserved bytes are held).
// On failure it answers, gives the reservation back, and stores nothing.
func (h *Handler) ingest(w http.ResponseWriter, r *http.Request, rec *catalog.Record, body io.Reader, reserved int64) bool {
	ctx := r.Context()
	giveBack := func() { _ = h.cat.Release(context.WithoutCancel(ctx), rec.Owner, reserved) }
	facts, body, err := inspect.Sniff(body, h.cfg.MaxPixels)
	if errors.Is(err, inspect.ErrPixelBomb) {
		giveBack()
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_IMAGE_TOO_LARGE, fmt.Sprintf("%v (at most %d pixels)", err, h.cfg.MaxPixels))
		return false
	}
	if err != nil {
		giveBack()
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, "reading the body: "+err.Error())
		return false
	}
	info, err := h.blobs.Put(ctx, catalog.BlobKey(rec.ID), body, h.cfg.MaxFileBytes, facts.ContentType)
	if err != nil {
		giveBack()
		if errors.Is(err, blob.ErrTooLarge) {
			h.fail(w, r, pb.ErrorCode_ERROR_CODE_FILE_TOO_LARGE, fmt.Sprintf("files are limited to %d bytes", h.cfg.MaxFileBytes))
		} else {
			h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, "storing the file: "+err.Error())
		}
		return false
	}
	if d := reserved - info.Size; d > 0 {
		_ = h.cat.Release(ctx, rec.Owner, d)
	}
	rec.Size, rec.Reserved = info.Size, info.Size
	rec.ContentType, rec.Kind, rec.Risky, rec.Width, rec.Height = facts.ContentType, facts.Kind, facts.Risky, facts.Width, facts.Height
	rec.State = catalog.Ready
	if h.cfg.Scan {
		rec.State = catalog.Scanning
	}
	return true
}

func (h *Handler) enqueue(ctx context.Context, id string) {
	if err := derive.Enqueue(ctx, h.js, id); err != nil {
		// The upload is usable; it only lacks previews (or, with the scan
		// hook, waits for the collector).
		h.log.Warn("could not enqueue media job", zap.String("upload", id), zap.Error(err))
	}
}

// readable loads an upload the user may fetch; it answers 404 alike for
// ids that do not exist and ids the user may not see.
func (h *Handler) readable(w http.ResponseWriter, r *http.Request, user string) (catalog.Record, bool) {
	id := r.PathValue("id")
	notFound := func() { h.fail(w, r, pb.ErrorCode_ERROR_CODE_NOT_FOUND, "no such upload, or you may not see it") }
	if !catalog.ValidID(id) {
		notFound()
		return catalog.Record{}, false
	}
	rec, err := h.cat.Get(r.Context(), id)
	if errors.Is(err, catalog.ErrNotFound) {
		notFound()
		return rec, false
	}
	if err != nil {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return rec, false
	}
	ok, err := h.refs.MayRead(r.Context(), rec, user)
	if err != nil {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return rec, false
	}
	if !ok || rec.State == catalog.Rejected || rec.State == catalog.Uploading {
		notFound()
		return rec, false
	}
	return rec, true
}

func (h *Handler) info(w http.ResponseWriter, r *http.Request, user string) {
	rec, ok := h.readable(w, r, user)
	if !ok {
		return
	}
	u := uploadJSON(rec)
	if err := h.addLinks(r.Context(), rec, &u); err != nil {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeJSON(w, http.StatusOK, u)
}

// download: GET /api/v1/media/{id}.
func (h *Handler) download(w http.ResponseWriter, r *http.Request, user string) {
	if rec, ok := h.readable(w, r, user); ok {
		h.serveFile(w, r, rec)
	}
}

// disposition is the Content-Disposition of rec's bytes: inline for media
// a browser only displays, attachment for anything else.
func disposition(rec catalog.Record) string {
	d := "inline"
	if rec.Risky || rec.Kind == inspect.KindFile {
		d = "attachment"
	}
	if rec.Name != "" {
		d = mime.FormatMediaType(d, map[string]string{"filename": rec.Name})
	}
	return d
}

// presigned is the backend's presigned URL of rec's bytes where it has
// them and rec may be served from there (not risky), else nil.
func (h *Handler) presigned(ctx context.Context, rec catalog.Record) (*url.URL, error) {
	if rec.Risky {
		return nil, nil
	}
	u, err := h.blobs.PresignGet(ctx, catalog.BlobKey(rec.ID), blob.Presign{
		TTL: h.cfg.PresignTTL, ContentType: rec.ContentType, ContentDisposition: disposition(rec),
	})
	if errors.Is(err, blob.ErrNoPresign) {
		return nil, nil
	}
	return u, err
}

// serveFile answers with the bytes of rec, which the caller may read: a
// redirect to a presigned URL, or streamed.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, rec catalog.Record) {
	if rec.State != catalog.Ready {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_NOT_READY, "the file is being checked; try again shortly")
		return
	}
	u, err := h.presigned(r.Context(), rec)
	if err != nil {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return
	}
	if u != nil {
		// The URL is the authorization: neither it nor the redirect may
		// be cached beyond this user.
		w.Header().Set("Cache-Control", "private, no-store")
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}
	if rec.Risky {
		// Even opened directly, the page may run nothing.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	}
	w.Header().Set("Content-Disposition", disposition(rec))
	h.stream(w, r, catalog.BlobKey(rec.ID), rec.ContentType)
}

// stream serves a blob through the gateway, with Range requests (a video
// player seeks with them) answered by http.ServeContent.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, key, contentType string) {
	info, err := h.blobs.Stat(r.Context(), key)
	if errors.Is(err, blob.ErrNotFound) {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_NOT_FOUND, "no such file")
		return
	}
	if err != nil {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_UNAVAILABLE, err.Error())
		return
	}
	rs := &blobSeeker{ctx: r.Context(), blobs: h.blobs, key: key, size: info.Size}
	defer rs.close()
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "private, max-age=3600")
	http.ServeContent(w, r, "", time.Time{}, rs)
	if rs.err != nil {
		h.log.Info("download cut", zap.String("key", key), zap.Error(rs.err))
	}
}

// blobSeeker is an io.ReadSeeker over a blob for http.ServeContent. The
// store reads blobs from the start only, so a Read after a Seek opens the
// blob again where needed and skips to the position.
type blobSeeker struct {
	ctx   context.Context
	blobs blob.Store
	key   string
	size  int64
	pos   int64         // where the next Read reads
	rc    io.ReadCloser // open blob, at rcPos
	rcPos int64
	err   error // the last read error other than EOF
}

func (b *blobSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += b.pos
	case io.SeekEnd:
		off += b.size
	}
	if off < 0 {
		return 0, errors.New("seek before the start")
	}
	b.pos = off
	return off, nil
}

func (b *blobSeeker) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if b.rc == nil || b.rcPos > b.pos {
		b.close()
		rc, _, err := b.blobs.Get(b.ctx, b.key)
		if err != nil {
			b.err = err
			return 0, err
		}
		b.rc, b.rcPos = rc, 0
	}
	if b.rcPos < b.pos {
		n, err := io.CopyN(io.Discard, b.rc, b.pos-b.rcPos)
		b.rcPos += n
		if err != nil {
			b.err = err
			return 0, err
		}
	}
	n, err := b.rc.Read(p)
	b.pos += int64(n)
	b.rcPos += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *blobSeeker) close() {
	if b.rc != nil {
		b.rc.Close()
		b.rc = nil
	}
}

// thumb: GET /api/v1/media/{id}/thumb, the JPEG preview.
func (h *Handler) thumb(w http.ResponseWriter, r *http.Request, user string) {
	if rec, ok := h.readable(w, r, user); ok {
		h.serveThumb(w, r, rec)
	}
}

func (h *Handler) serveThumb(w http.ResponseWriter, r *http.Request, rec catalog.Record) {
	if !rec.Thumb || rec.State != catalog.Ready {
		h.fail(w, r, pb.ErrorCode_ERROR_CODE_NOT_FOUND, "no preview (yet)")
		return
	}
	h.stream(w, r, catalog.ThumbKey(rec.ID), "image/jpeg")
}
