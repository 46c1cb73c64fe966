package derive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/jpeg"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/parley-chat/parley/internal/bus/bustest"
	"github.com/parley-chat/parley/internal/media/catalog"
	"github.com/parley-chat/parley/internal/media/derive"
	"github.com/parley-chat/parley/internal/media/inspect"
	"github.com/parley-chat/parley/internal/media/objstore"
	"github.com/parley-chat/parley/pkg/media"
	"github.com/parley-chat/parley/pkg/media/mediatest"
)

type env struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	cat   *catalog.Catalog
	store media.Store
}

func setup(t *testing.T) env {
	ctx := context.Background()
	nc := bustest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, js, catalog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := objstore.Open(ctx, js, objstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := derive.EnsureQueue(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	return env{nc, js, cat, st}
}

// upload stores b as a finished upload in state.
func (e env) upload(t *testing.T, b []byte, state catalog.State) string {
	ctx := context.Background()
	f, _, err := inspect.Sniff(bytes.NewReader(b), 50_000_000)
	if err != nil {
		t.Fatal(err)
	}
	id := catalog.NewID()
	if _, err := e.store.Put(ctx, catalog.BlobKey(id), bytes.NewReader(b), int64(len(b)), f.ContentType); err != nil {
		t.Fatal(err)
	}
	err = e.cat.Create(ctx, catalog.Record{ID: id, Owner: "ann", State: state, Size: int64(len(b)), ContentType: f.ContentType,
		Kind: f.Kind, Width: f.Width, Height: f.Height, Created: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func readFile(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// thumb returns the stored preview's size.
func (e env) thumb(t *testing.T, id string) (int, int) {
	rc, _, err := e.store.Get(context.Background(), catalog.ThumbKey(id))
	if err != nil {
		t.Fatalf("preview of %s: %v", id, err)
	}
	defer rc.Close()
	cfg, err := jpeg.DecodeConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Width, cfg.Height
}

// TestQueue runs jobs through the work queue and a running worker, and
// waits for each ready event.
func TestQueue(t *testing.T) {
	e := setup(t)
	ff, err := inspect.FindFFmpeg()
	if err != nil {
		mediatest.RequireFFmpeg(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := derive.NewWorker(e.nc, e.js, e.cat, e.store, ff, derive.Config{}, zaptest.NewLogger(t))
	go w.Run(ctx)

	events, err := e.nc.SubscribeSync(derive.ReadySubjectPrefix + "*")
	if err != nil {
		t.Fatal(err)
	}
	img := e.upload(t, mediatest.PNG(t, 1600, 1200), catalog.Ready)
	clip := e.upload(t, readFile(t, mediatest.Clip(t)), catalog.Ready)
	voice := e.upload(t, readFile(t, mediatest.VoiceNote(t)), catalog.Ready)
	for _, id := range []string{img, clip, voice, img} { // img twice: one job
		if err := derive.Enqueue(ctx, e.js, id); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]derive.Summary{}
	for len(got) < 3 {
		m, err := events.NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d ready events: %v", len(got), err)
		}
		var s derive.Summary
		json.Unmarshal(m.Data, &s)
		got[s.ID] = s
	}
	if s := got[img]; !s.Thumb || s.Width != 1600 || s.State != catalog.Ready {
		t.Fatalf("image: %+v", s)
	}
	if w, h := e.thumb(t, img); w != 320 || h != 240 {
		t.Fatalf("image thumbnail %d×%d, want 320×240", w, h)
	}
	if s := got[clip]; !s.Thumb || s.DurationMS < 1900 || s.DurationMS > 2100 {
		t.Fatalf("clip: %+v", s)
	}
	if w, h := e.thumb(t, clip); w != 320 || h != 180 {
		t.Fatalf("poster frame %d×%d, want 320×180", w, h)
	}
	if s := got[voice]; s.Thumb || s.DurationMS < 2900 || s.DurationMS > 3100 || s.Kind != inspect.KindAudio {
		t.Fatalf("voice note: %+v", s)
	}
	if m, err := events.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("a fourth ready event: %s", m.Data)
	}
}

// TestWithoutFFmpeg: images still get thumbnails; media get no duration.
func TestWithoutFFmpeg(t *testing.T) {
	e := setup(t)
	w := derive.NewWorker(e.nc, e.js, e.cat, e.store, nil, derive.Config{}, zaptest.NewLogger(t))
	mediatest.RequireFFmpeg(t)
	clip := e.upload(t, readFile(t, mediatest.Clip(t)), catalog.Ready)
	if err := w.Process(context.Background(), clip); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.cat.Get(context.Background(), clip); r.Thumb || r.DurationMS != 0 || r.State != catalog.Ready {
		t.Fatalf("clip without ffmpeg: %+v", r)
	}
}

func TestScanHook(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	w := derive.NewWorker(e.nc, e.js, e.cat, e.store, nil, derive.Config{Scan: true, ScanTimeout: 2 * time.Second}, zaptest.NewLogger(t))
	clean := e.upload(t, mediatest.PNG(t, 64, 64), catalog.Scanning)
	bad := e.upload(t, []byte("X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"), catalog.Scanning)

	// No scanner: the job fails (to be retried) and the file stays scanning.
	if err := w.Process(ctx, clean); err == nil {
		t.Fatal("Process without a scanner succeeded")
	}
	if r, _ := e.cat.Get(ctx, clean); r.State != catalog.Scanning {
		t.Fatalf("state without scanner: %s", r.State)
	}

	// A scanner that reads the bytes from the object store, as documented.
	obj, err := e.js.ObjectStore(ctx, objstore.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := e.nc.Subscribe(derive.ScanSubject, func(m *nats.Msg) {
		var req derive.ScanRequest
		json.Unmarshal(m.Data, &req)
		b, err := obj.GetBytes(ctx, req.Key)
		rep := derive.ScanReply{Clean: err == nil && !bytes.Contains(b, []byte("EICAR")), Reason: "EICAR test file"}
		out, _ := json.Marshal(rep)
		m.Respond(out)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for _, id := range []string{clean, bad} {
		if err := w.Process(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := e.cat.Get(ctx, clean); r.State != catalog.Ready || !r.Thumb {
		t.Fatalf("clean file: %+v", r)
	}
	if r, _ := e.cat.Get(ctx, bad); r.State != catalog.Rejected {
		t.Fatalf("infected file: %+v", r)
	}
	if _, _, err := e.store.Get(ctx, catalog.BlobKey(bad)); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("infected file's bytes: %v", err)
	}
}
