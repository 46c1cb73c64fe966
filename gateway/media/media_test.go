package media_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/gateway/media"
	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/media/backend"
	"github.com/parley-chat/parley/internal/media/catalog"
	"github.com/parley-chat/parley/internal/media/derive"
	"github.com/parley-chat/parley/internal/media/inspect"
	"github.com/parley-chat/parley/internal/media/refs"
	"github.com/parley-chat/parley/internal/store/pebblestore"
	blob "github.com/parley-chat/parley/pkg/media"
	"github.com/parley-chat/parley/pkg/media/mediaclient"
	"github.com/parley-chat/parley/pkg/media/mediatest"
	"github.com/parley-chat/parley/pkg/store"
)

// Test limits: small, so that passing them is cheap.
const (
	maxFile = 2 << 20
	quota   = 3 << 20
	room    = "room-1"
)

type env struct {
	t         testing.TB
	srv       *httptest.Server
	refs      *refs.Refs
	cat       *catalog.Catalog
	blobs     blob.Store
	rooms     *pebblestore.Store
	signer    *auth.Signer
	nc        *nats.Conn
	redirects bool // the backend presigns downloads
}

// backendConfigs are the media backends the tests run on: the embedded
// object store and S3 (a real versitygw, see deploy/s3).
var backendConfigs = []struct {
	name string
	cfg  func(t testing.TB) backend.Config
}{
	{"objstore", func(testing.TB) backend.Config { return backend.Config{} }},
	{"s3", func(t testing.TB) backend.Config { return backend.Config{Kind: "s3", S3: mediatest.S3Config(t)} }},
}

// backends runs fn once per media backend.
func backends(t *testing.T, fn func(t *testing.T, e *env)) { backendsScan(t, false, fn) }

// backendsScan is backends with the virus-scan hook on or off.
func backendsScan(t *testing.T, scan bool, fn func(t *testing.T, e *env)) {
	for _, b := range backendConfigs {
		t.Run(b.name, func(t *testing.T) {
			fn(t, setup(t, b.cfg(t), media.Config{MaxFileBytes: maxFile, UserQuotaBytes: quota, MaxPixels: 20_000_000, Scan: scan}))
		})
	}
}

// setup starts NATS, a derive worker, a room store with room (ann and
// bob), and the handler with hc on cfg's backend.
func setup(t testing.TB, cfg backend.Config, hc media.Config) *env {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nc := bustest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := backend.Open(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, js, catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := derive.EnsureQueue(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	ff, _ := inspect.FindFFmpeg()
	go derive.NewWorker(nc, js, cat, blobs, ff, derive.Config{Scan: hc.Scan, ScanTimeout: 5 * time.Second}, zaptest.NewLogger(t)).Run(ctx)

	rooms, err := pebblestore.Open(t.TempDir(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rooms.Close() })
	now := time.Now().UTC().Truncate(time.Millisecond)
	err = rooms.CreateRoom(ctx, store.Room{ID: room, Kind: store.RoomGroup, Name: "r", CreatedBy: "ann", CreatedAt: now},
		[]store.Member{{User: "ann", Role: store.RoleOwner, JoinedAt: now}, {User: "bob", Role: store.RoleMember, JoinedAt: now}})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := auth.NewSigner([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	authn := media.AuthFunc(func(r *http.Request) (string, error) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", errors.New("no token")
		}
		c, err := signer.Verify(tok)
		return c.User, err
	})
	keeper := refs.New(cat, blobs, rooms, 0, zaptest.NewLogger(t))
	h := media.New(hc,
		authn, keeper, cat, blobs, js, zaptest.NewLogger(t))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, err = blobs.PresignGet(ctx, "x", blob.Presign{TTL: time.Minute})
	return &env{t: t, nc: nc, srv: srv, refs: keeper, cat: cat, blobs: blobs, rooms: rooms, signer: signer, redirects: err == nil}
}

func (e *env) token(user string) string {
	tok, _, err := e.signer.Issue(user, "s-"+user)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request as user ("" for none) without following redirects.
func (e *env) do(user, method, path string, body io.Reader, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(user))
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// wantError checks a failed answer's status and documented code.
func wantError(t testing.TB, resp *http.Response, status int, code string) {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != status || (code != "" && body.Error.Code != code) {
		t.Fatalf("got %d %q (%s), want %d %s", resp.StatusCode, body.Error.Code, body.Error.Message, status, code)
	}
}

func decode[T any](t testing.TB, resp *http.Response, status int) T {
	t.Helper()
	defer resp.Body.Close()
	var v T
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("got %d %s, want %d", resp.StatusCode, b, status)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

func (e *env) upload(user, name string, b []byte) media.Upload {
	e.t.Helper()
	return decode[media.Upload](e.t, e.do(user, "POST", "/api/v1/media?name="+url.QueryEscape(name), bytes.NewReader(b), nil), http.StatusCreated)
}

// fetch downloads url as user the way a browser does: a redirect is
// followed without the token. It returns the final answer.
func (e *env) fetch(user, path string) *http.Response {
	e.t.Helper()
	resp := e.do(user, "GET", path, nil, nil)
	if resp.StatusCode != http.StatusFound {
		return resp
	}
	resp.Body.Close()
	if !e.redirects {
		e.t.Fatalf("%s redirected on a backend without presigned URLs", path)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		e.t.Fatalf("redirect Cache-Control %q", cc)
	}
	resp, err := http.Get(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// wantBytes downloads url as user and compares the bytes.
func (e *env) wantBytes(user, path string, want []byte) *http.Response {
	e.t.Helper()
	resp := e.fetch(user, path)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, want) {
		e.t.Fatalf("%s as %s: %s, %d bytes; want 200 and the %d bytes uploaded", path, user, resp.Status, len(got), len(want))
	}
	return resp
}

func (e *env) wantNotFound(user, path string) {
	e.t.Helper()
	wantError(e.t, e.do(user, "GET", path, nil, nil), http.StatusNotFound, "NOT_FOUND")
}

func (e *env) attach(sender, msg string, urls ...string) error {
	return e.refs.Attach(context.Background(), sender, room, msg, urls)
}

func (e *env) reserved(user string) int64 {
	n, err := e.cat.Reserved(context.Background(), user)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestAccess(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		img := mediatest.PNG(t, 1600, 1200)
		u := e.upload("ann", "photo.png", img)
		if u.Kind != inspect.KindImage || u.ContentType != "image/png" || u.Width != 1600 || u.Size != int64(len(img)) {
			t.Fatalf("upload: %+v", u)
		}
		// Before it is sent, only its uploader sees it.
		e.wantBytes("ann", u.URL, img)
		e.wantNotFound("bob", u.URL)
		if err := e.attach("bob", "1", u.URL); !errors.Is(err, refs.ErrNotAttachable) {
			t.Fatalf("bob sends ann's unsent upload: %v", err)
		}
		if err := e.attach("ann", "1", u.URL, "https://elsewhere.example/x.png"); err != nil {
			t.Fatal(err)
		}
		if e.reserved("ann") != 0 {
			t.Fatal("a sent upload still counts against the quota")
		}
		// Sent: members fetch it, others do not.
		resp := e.wantBytes("bob", u.URL, img)
		if ct := resp.Header.Get("Content-Type"); ct != "image/png" {
			t.Fatalf("Content-Type %q", ct)
		}
		e.wantNotFound("carol", u.URL)
		e.wantNotFound("carol", u.URL+"/info")
		e.wantNotFound("bob", media.URLPrefix+catalog.NewID())
		e.wantNotFound("bob", media.URLPrefix+"..%2f..%2fetc")
		wantError(t, e.do("", "GET", u.URL, nil, nil), http.StatusUnauthorized, "UNAUTHENTICATED")

		// The thumbnail arrives a moment later.
		info := e.waitFor("bob", u, func(u media.Upload) bool { return u.ThumbURL != "" })
		resp = e.fetch("bob", info.ThumbURL)
		cfg, err := jpeg.DecodeConfig(resp.Body)
		resp.Body.Close()
		if err != nil || cfg.Width != 320 || cfg.Height != 240 {
			t.Fatalf("thumbnail: %+v, %v", cfg, err)
		}

		// Links work without the Authorization header, for <img src>.
		e.checkLinks("bob", u, img)

		// A removed member loses access at once, thumbnail included.
		if err := e.rooms.RemoveMember(context.Background(), room, "bob"); err != nil {
			t.Fatal(err)
		}
		e.wantNotFound("bob", u.URL)
		e.wantNotFound("bob", info.ThumbURL)
		e.wantBytes("ann", u.URL, img)

		// Deleting the message makes the file unreachable.
		if err := e.refs.Detach(context.Background(), room, "1"); err != nil {
			t.Fatal(err)
		}
		e.wantNotFound("ann", u.URL)
		if _, err := e.blobs.Stat(context.Background(), catalog.BlobKey(u.ID)); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("the deleted message's file is still stored: %v", err)
		}
	})
}

// waitFor polls the upload's info until ok.
func (e *env) waitFor(user string, u media.Upload, ok func(media.Upload) bool) media.Upload {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info := decode[media.Upload](e.t, e.do(user, "GET", u.URL+"/info", nil, nil), http.StatusOK)
		if ok(info) {
			return info
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("upload never got there: %+v", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRiskyAsAttachment(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		page := []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>")
		u := e.upload("ann", "cat.png", page)
		if u.ContentType != "text/html" || u.Kind != inspect.KindFile {
			t.Fatalf("upload: %+v", u)
		}
		if err := e.attach("ann", "2", u.URL); err != nil {
			t.Fatal(err)
		}
		// Served by the gateway even on S3, never a redirect.
		resp := e.do("bob", "GET", u.URL, nil, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(body, page) {
			t.Fatalf("risky download: %s", resp.Status)
		}
		// Range requests are answered (video players seek with them).
		resp = e.do("bob", "GET", u.URL, nil, map[string]string{"Range": "bytes=20-39"})
		part, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, page[20:40]) {
			t.Fatalf("range 20-39: %s %q", resp.Status, part)
		}
		// Two ranges, the second before the first: the blob is read again.
		multi := e.do("bob", "GET", u.URL, nil, map[string]string{"Range": "bytes=40-49,0-9"})
		both, _ := io.ReadAll(multi.Body)
		multi.Body.Close()
		if multi.StatusCode != http.StatusPartialContent || !bytes.Contains(both, page[40:50]) || !bytes.Contains(both, page[0:10]) {
			t.Fatalf("ranges 40-49,0-9: %s %q", multi.Status, both)
		}
		h := resp.Header
		if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || !strings.Contains(h.Get("Content-Disposition"), "filename=cat.png") {
			t.Fatalf("risky download headers: %v", h)
		}
	})
}

func TestLimits(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		before, _ := e.cat.IDs(ctx)
		big := mediatest.Random(maxFile + 1)
		// Declared too large: refused before reading.
		wantError(t, e.do("ann", "POST", "/api/v1/media", bytes.NewReader(big), nil), http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
		// Undeclared (chunked): refused while streaming.
		wantError(t, e.do("ann", "POST", "/api/v1/media", io.MultiReader(bytes.NewReader(big)), nil), http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
		wantError(t, e.do("ann", "POST", "/api/v1/uploads", nil, map[string]string{"Upload-Length": strconv.Itoa(maxFile + 1)}),
			http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
		// A PATCH past the declared length.
		up := decode[media.Upload](t, e.do("ann", "POST", "/api/v1/uploads", nil, map[string]string{"Upload-Length": "1000"}), http.StatusCreated)
		wantError(t, e.do("ann", "PATCH", "/api/v1/uploads/"+up.ID, bytes.NewReader(mediatest.Random(1001)), map[string]string{"Upload-Offset": "0"}),
			http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
		if resp := e.do("ann", "DELETE", "/api/v1/uploads/"+up.ID, nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: %s", resp.Status)
		}

		// A pixel bomb: a small PNG declaring 100000×100000.
		wantError(t, e.do("ann", "POST", "/api/v1/media", bytes.NewReader(mediatest.PixelBomb(t, 100_000, 100_000)), nil),
			http.StatusUnprocessableEntity, "IMAGE_TOO_LARGE")

		// A one-shot upload cut halfway.
		e.cut("ann", "POST", "/api/v1/media", "", big[:maxFile], 100<<10)
		// Wait for the server to take it (or to be done with it already)…
		for deadline := time.Now().Add(2 * time.Second); e.reserved("ann") == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		// … and to give everything back: quota first, then the record.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			ids, _ := e.cat.IDs(ctx)
			if e.reserved("ann") == 0 && len(ids) == len(before) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a cut one-shot upload left %d records (had %d) and %d reserved bytes", len(ids), len(before), e.reserved("ann"))
			}
		}

		// Nothing of the refused uploads is left, and nothing is disturbed.
		after, _ := e.cat.IDs(ctx)
		if len(after) != len(before) || e.reserved("ann") != 0 {
			t.Fatalf("refused uploads left %d records (had %d) and %d reserved bytes", len(after), len(before), e.reserved("ann"))
		}
		small := mediatest.PNG(t, 64, 64)
		e.wantBytes("ann", e.upload("ann", "ok.png", small).URL, small)

		// Quota: unsent uploads of one user (3 MiB here) count; sent ones do not.
		f1, f2 := mediatest.Random(maxFile), mediatest.Random(maxFile)
		u1 := e.upload("ann", "a.bin", f1)
		wantError(t, e.do("ann", "POST", "/api/v1/media", bytes.NewReader(f2), nil), http.StatusRequestEntityTooLarge, "QUOTA_EXCEEDED")
		e.upload("bob", "b.bin", f2) // another user's quota is their own
		if err := e.attach("ann", "3", u1.URL); err != nil {
			t.Fatal(err)
		}
		u2 := e.upload("ann", "c.bin", f2)
		if err := e.attach("ann", "4", u2.URL); err != nil {
			t.Fatal(err)
		}
		e.wantBytes("bob", u2.URL, f2)
	})
}

// cut sends a request declaring all of body but sends only n bytes of it
// before the connection is cut.
func (e *env) cut(user, method, path, extraHeader string, body []byte, n int) {
	e.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%sContent-Length: %d\r\n\r\n",
		method, path, e.token(user), extraHeader, len(body))
	if _, err := c.Write(body[:n]); err != nil {
		e.t.Fatal(err)
	}
	c.Close()
}

// offset asks for the upload's offset.
func (e *env) offset(user, id string) int64 {
	e.t.Helper()
	resp := e.do(user, "HEAD", "/api/v1/uploads/"+id, nil, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("HEAD: %s", resp.Status)
	}
	n, _ := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	return n
}

func TestResumable(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		file := mediatest.Random(maxFile)
		up := decode[media.Upload](t, e.do("ann", "POST", "/api/v1/uploads?name=big.bin", nil,
			map[string]string{"Upload-Length": strconv.Itoa(len(file))}), http.StatusCreated)
		if up.State != catalog.Uploading || e.reserved("ann") != int64(len(file)) {
			t.Fatalf("created: %+v, %d reserved", up, e.reserved("ann"))
		}
		// Only the uploader sees the unfinished upload, and it is not
		// downloadable yet.
		wantError(t, e.do("bob", "HEAD", "/api/v1/uploads/"+up.ID, nil, nil), http.StatusNotFound, "")
		e.wantNotFound("ann", up.URL)

		// The connection is cut after 700 KiB of a PATCH.
		e.cut("ann", "PATCH", "/api/v1/uploads/"+up.ID, "Upload-Offset: 0\r\n", file, 700<<10)
		var off int64
		for deadline := time.Now().Add(10 * time.Second); off == 0; time.Sleep(20 * time.Millisecond) {
			if off = e.offset("ann", up.ID); time.Now().After(deadline) {
				t.Fatal("the cut PATCH left no offset")
			}
		}
		if off > 700<<10 {
			t.Fatalf("offset %d after sending %d", off, 700<<10)
		}
		// A PATCH at a wrong offset is refused and says the right one.
		resp := e.do("ann", "PATCH", "/api/v1/uploads/"+up.ID, bytes.NewReader(file[:10]), map[string]string{"Upload-Offset": "0"})
		if resp.Header.Get("Upload-Offset") != strconv.FormatInt(off, 10) {
			t.Fatalf("409 names offset %q, want %d", resp.Header.Get("Upload-Offset"), off)
		}
		wantError(t, resp, http.StatusConflict, "OFFSET_MISMATCH")

		// Resume in two more PATCHes.
		mid := off + (int64(len(file))-off)/2
		resp = e.do("ann", "PATCH", "/api/v1/uploads/"+up.ID, bytes.NewReader(file[off:mid]), map[string]string{"Upload-Offset": strconv.FormatInt(off, 10)})
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != strconv.FormatInt(mid, 10) {
			t.Fatalf("PATCH: %s, offset %s", resp.Status, resp.Header.Get("Upload-Offset"))
		}
		done := decode[media.Upload](t, e.do("ann", "PATCH", "/api/v1/uploads/"+up.ID, bytes.NewReader(file[mid:]),
			map[string]string{"Upload-Offset": strconv.FormatInt(mid, 10)}), http.StatusOK)
		if done.State != catalog.Ready || done.Size != int64(len(file)) || done.Name != "big.bin" {
			t.Fatalf("finished: %+v", done)
		}
		if err := e.attach("ann", "5", done.URL); err != nil {
			t.Fatal(err)
		}
		e.wantBytes("bob", done.URL, file)
		// The parts are gone once joined.
		if r, _ := e.cat.Get(context.Background(), up.ID); len(r.Parts) != 0 {
			t.Fatalf("parts left: %+v", r.Parts)
		}
		wantError(t, e.do("ann", "HEAD", "/api/v1/uploads/"+up.ID, nil, nil), http.StatusNotFound, "")
	})
}

func TestCollect(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sent := e.upload("ann", "kept.txt", []byte("kept"))
		if err := e.attach("ann", "6", sent.URL); err != nil {
			t.Fatal(err)
		}
		unsent := e.upload("ann", "dropped.txt", []byte("dropped"))
		half := decode[media.Upload](t, e.do("ann", "POST", "/api/v1/uploads", nil, map[string]string{"Upload-Length": "100"}), http.StatusCreated)
		resp := e.do("ann", "PATCH", "/api/v1/uploads/"+half.ID, bytes.NewReader(make([]byte, 40)), map[string]string{"Upload-Offset": "0"})
		resp.Body.Close()

		if n, err := e.refs.Collect(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("Collect within the TTL deleted %d, %v", n, err)
		}
		if n, err := e.refs.Collect(ctx, time.Now().Add(25*time.Hour)); err != nil || n != 2 {
			t.Fatalf("Collect after the TTL deleted %d, %v; want 2", n, err)
		}
		e.wantNotFound("ann", unsent.URL)
		wantError(t, e.do("ann", "HEAD", "/api/v1/uploads/"+half.ID, nil, nil), http.StatusNotFound, "")
		e.wantBytes("bob", sent.URL, []byte("kept"))
		if e.reserved("ann") != 0 {
			t.Fatalf("%d bytes still reserved", e.reserved("ann"))
		}
	})
}

// TestDerivatives: a voice note and a clip get durations and a poster
// frame through the handler's queue.
func TestDerivatives(t *testing.T) {
	mediatest.RequireFFmpeg(t)
	backends(t, func(t *testing.T, e *env) {
		voice, _ := os.ReadFile(mediatest.VoiceNote(t))
		clip, _ := os.ReadFile(mediatest.Clip(t))
		v := e.upload("ann", "note.ogg", voice)
		c := e.upload("ann", "clip.mp4", clip)
		if v.Kind != inspect.KindAudio || c.Kind != inspect.KindVideo {
			t.Fatalf("kinds: %s %s", v.Kind, c.Kind)
		}
		e.waitFor("ann", v, func(u media.Upload) bool { return u.DurationMS > 2900 && u.DurationMS < 3100 })
		info := e.waitFor("ann", c, func(u media.Upload) bool { return u.DurationMS > 1900 && u.ThumbURL != "" })
		resp := e.fetch("ann", info.ThumbURL)
		cfg, err := jpeg.DecodeConfig(resp.Body)
		resp.Body.Close()
		if err != nil || cfg.Width != 320 || cfg.Height != 180 {
			t.Fatalf("poster frame %+v, %v", cfg, err)
		}
		e.wantBytes("ann", c.URL, clip)
	})
}

// cutOnce is a transport that drops the connection of the first PATCH
// after n bytes of its body.
type cutOnce struct {
	n    int
	done atomic.Bool
}

func (c *cutOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == "PATCH" && c.done.CompareAndSwap(false, true) {
		r.Body = io.NopCloser(io.MultiReader(io.LimitReader(r.Body, int64(c.n)), failing{}))
	}
	return http.DefaultTransport.RoundTrip(r)
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("cable pulled") }

// TestGoClient: the Go upload client resumes after a dropped connection.
func TestGoClient(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		file := mediatest.Random(maxFile)
		var progress []int64
		c := &mediaclient.Client{HTTP: &http.Client{Transport: &cutOnce{n: 300 << 10}}, Base: e.srv.URL, Token: e.token("ann")}
		u, err := c.Upload(context.Background(), "big.bin", bytes.NewReader(file), int64(len(file)), mediaclient.Options{
			OneShotMax: 64 << 10, ChunkSize: 700 << 10, RetryWait: 10 * time.Millisecond,
			OnProgress: func(sent, _ int64) { progress = append(progress, sent) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if u.Size != int64(len(file)) || u.State != "ready" || len(progress) < 3 || progress[len(progress)-1] != int64(len(file)) {
			t.Fatalf("upload %+v, progress %v", u, progress)
		}
		// After the cut the client went on from what the server kept.
		if !slices.ContainsFunc(progress, func(n int64) bool { return n > 0 && n <= 300<<10 }) {
			t.Fatalf("progress %v shows no resume after the cut at 300 KiB", progress)
		}
		e.wantBytes("ann", u.URL, file)

		// Small files go in one request; refusals carry their code.
		small, err := c.Upload(context.Background(), "s.txt", strings.NewReader("hello"), 5, mediaclient.Options{})
		if err != nil || small.ContentType != "text/plain" {
			t.Fatalf("small upload %+v, %v", small, err)
		}
		bomb := mediatest.PixelBomb(t, 100_000, 100_000)
		_, err = c.Upload(context.Background(), "b.png", bytes.NewReader(bomb), int64(len(bomb)), mediaclient.Options{})
		var apiErr *mediaclient.Error
		if !errors.As(err, &apiErr) || apiErr.Code != "IMAGE_TOO_LARGE" {
			t.Fatalf("bomb upload: %v", err)
		}
	})
}

// TestScanHook: with a virus scanner plugged in, a file is downloadable
// only after its verdict, and one it refuses never is.
func TestScanHook(t *testing.T) {
	backendsScan(t, true, func(t *testing.T, e *env) {
		release := make(chan struct{})
		sub, err := e.nc.Subscribe(derive.ScanSubject, func(m *nats.Msg) {
			<-release
			var req derive.ScanRequest
			json.Unmarshal(m.Data, &req)
			rc, _, err := e.blobs.Get(context.Background(), req.Key)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			out, _ := json.Marshal(derive.ScanReply{Clean: !bytes.Contains(b, []byte("EICAR")), Reason: "EICAR test file"})
			m.Respond(out)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		img := mediatest.PNG(t, 64, 64)
		good := e.upload("ann", "ok.png", img)
		if good.State != catalog.Scanning {
			t.Fatalf("state before the verdict: %s", good.State)
		}
		wantError(t, e.do("ann", "GET", good.URL, nil, nil), http.StatusConflict, "NOT_READY")
		close(release)
		e.waitFor("ann", good, func(u media.Upload) bool { return u.State == catalog.Ready })
		e.wantBytes("ann", good.URL, img)

		bad := e.upload("ann", "eicar.txt", []byte(`X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`))
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, err := e.cat.Get(context.Background(), bad.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.State == catalog.Rejected {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("infected upload still %s", r.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
		e.wantNotFound("ann", bad.URL)
		if e.attach("ann", "9", bad.URL) == nil {
			t.Fatal("a rejected upload was attached")
		}
	})
}

// checkLinks fetches the info's links without credentials and checks that
// a tampered one is refused.
func (e *env) checkLinks(user string, u media.Upload, want []byte) {
	e.t.Helper()
	info := decode[media.Upload](e.t, e.do(user, "GET", u.URL+"/info", nil, nil), http.StatusOK)
	if info.FileLink == "" || info.ThumbLink == "" || info.LinksExpire == nil {
		e.t.Fatalf("info without links: %+v", info)
	}
	abs := func(link string) string {
		if strings.HasPrefix(link, "/") {
			return e.srv.URL + link
		}
		return link
	}
	get := func(link string) (*http.Response, []byte) {
		resp, err := http.Get(abs(link))
		if err != nil {
			e.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	if resp, b := get(info.FileLink); resp.StatusCode != 200 || !bytes.Equal(b, want) {
		e.t.Fatalf("file link: %s, %d bytes", resp.Status, len(b))
	}
	if resp, b := get(info.ThumbLink); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(b) == 0 {
		e.t.Fatalf("thumb link: %s", resp.Status)
	}
	// A later expiry under the same signature is refused.
	l, _ := url.Parse(info.ThumbLink)
	q := l.Query()
	exp, _ := strconv.ParseInt(q.Get("exp"), 10, 64)
	q.Set("exp", strconv.FormatInt(exp+3600, 10))
	l.RawQuery = q.Encode()
	resp, err := http.Get(abs(l.String()))
	if err != nil {
		e.t.Fatal(err)
	}
	wantError(e.t, resp, http.StatusForbidden, "LINK_EXPIRED")
}
