// Package derive does the slow work on a finished upload off the send
// path: the virus-scan hook, image thumbnails, video poster frames and
// audio/video durations. Gateways enqueue an upload id on a JetStream work
// queue; any number of workers (in any role's process) take jobs from one
// durable consumer, so each job runs once, and a job whose worker dies is
// redelivered.
//
// The virus-scan hook: when Config.Scan is set, a finished upload stays in
// state scanning — not downloadable — until a scanner answers a NATS
// request on ScanSubject (see ScanRequest and ScanReply). No answer leaves
// the job to be retried; a verdict other than clean deletes the bytes.
//
// When a job is done the worker publishes the upload's Summary on
// ReadySubjectPrefix+id (core NATS), so whoever shows the message can
// update its preview.
package derive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/parley-chat/parley/internal/media/catalog"
	"github.com/parley-chat/parley/internal/media/inspect"
	"github.com/parley-chat/parley/pkg/media"
)

// Subjects and names on the bus.
const (
	Stream             = "PARLEY_MEDIA_WORK"
	WorkSubject        = "parley.media.work"
	Consumer           = "media-derive"
	ScanSubject        = "parley.media.scan"
	ReadySubjectPrefix = "parley.media.ready."
)

// maxThumbBytes bounds a stored preview JPEG.
const maxThumbBytes = 4 << 20

// ScanRequest is the body of a request on ScanSubject. The scanner reads
// the bytes from URL (a presigned GET, on S3) or, on the embedded object
// store, from the object Key in the object store bucket the deployment
// uses (PARLEY_MEDIA by default).
type ScanRequest struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	URL         string `json:"url,omitempty"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

// ScanReply is the scanner's answer: Clean, or a Reason it is not.
type ScanReply struct {
	Clean  bool   `json:"clean"`
	Reason string `json:"reason,omitempty"`
}

// Summary is what the ready event carries: the upload's final state and
// what the worker learnt.
type Summary struct {
	ID          string        `json:"id"`
	State       catalog.State `json:"state"`
	Kind        inspect.Kind  `json:"kind"`
	ContentType string        `json:"content_type"`
	Size        int64         `json:"size"`
	Width       int           `json:"width,omitempty"`
	Height      int           `json:"height,omitempty"`
	DurationMS  int64         `json:"duration_ms,omitempty"`
	Thumb       bool          `json:"thumb,omitempty"`
	Refs        []catalog.Ref `json:"refs,omitempty"`
}

// EnsureQueue creates the work queue stream (Replicas 1 single-node, 3 in
// a cluster).
func EnsureQueue(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       Stream,
		Subjects:   []string{WorkSubject},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   max(replicas, 1),
		Duplicates: 2 * time.Minute,
	})
	return err
}

// Enqueue asks for id's derivative work; enqueuing an id twice within the
// dedup window is one job.
func Enqueue(ctx context.Context, js jetstream.JetStream, id string) error {
	_, err := js.Publish(ctx, WorkSubject, []byte(id), jetstream.WithMsgID("derive-"+id))
	return err
}

// Config of a worker.
type Config struct {
	// Scan: wait for the scan hook's verdict before an upload is
	// downloadable.
	Scan        bool
	ScanTimeout time.Duration // per request, default 1 minute
	// JobTimeout bounds one job (ffmpeg on a large video), default 5 minutes.
	JobTimeout time.Duration
	// MaxPixels: larger images get no thumbnail, default 50 megapixels.
	MaxPixels int
}

// Worker takes jobs from the queue.
type Worker struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	cat   *catalog.Catalog
	store media.Store
	ff    *inspect.FFmpeg // nil: no durations, no poster frames
	cfg   Config
	log   *zap.Logger
}

// NewWorker returns a worker; ff may be nil where ffmpeg is missing.
func NewWorker(nc *nats.Conn, js jetstream.JetStream, cat *catalog.Catalog, store media.Store, ff *inspect.FFmpeg, cfg Config, log *zap.Logger) *Worker {
	if cfg.ScanTimeout <= 0 {
		cfg.ScanTimeout = time.Minute
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 5 * time.Minute
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = 50_000_000
	}
	if ff == nil {
		log.Warn("ffmpeg/ffprobe not found: audio and video get no durations or poster frames")
	}
	return &Worker{nc: nc, js: js, cat: cat, store: store, ff: ff, cfg: cfg, log: log}
}

// Run takes jobs until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.js.CreateOrUpdateConsumer(ctx, Stream, jetstream.ConsumerConfig{
		Durable:       Consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.JobTimeout + time.Minute,
		MaxDeliver:    20,
		MaxAckPending: 4,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		id := string(m.Data())
		jctx, cancel := context.WithTimeout(ctx, w.cfg.JobTimeout)
		err := w.Process(jctx, id)
		cancel()
		if err != nil {
			w.log.Warn("media job failed, retrying later", zap.String("upload", id), zap.Error(err))
			_ = m.NakWithDelay(10 * time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

// errNoScanner: the hook is on but nobody answers; the job waits.
var errNoScanner = errors.New("derive: no virus scanner answers on " + ScanSubject)

// Process does one upload's work; it is idempotent, so a redelivered job
// does no harm.
func (w *Worker) Process(ctx context.Context, id string) error {
	r, err := w.cat.Get(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	if r.State == catalog.Scanning {
		if r, err = w.scan(ctx, r); err != nil {
			return err
		}
	}
	if r.State == catalog.Ready {
		if r, err = w.derive(ctx, r); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(Summary{ID: r.ID, State: r.State, Kind: r.Kind, ContentType: r.ContentType, Size: r.Size,
		Width: r.Width, Height: r.Height, DurationMS: r.DurationMS, Thumb: r.Thumb, Refs: r.Refs})
	return w.nc.Publish(ReadySubjectPrefix+id, b)
}

func (w *Worker) scan(ctx context.Context, r catalog.Record) (catalog.Record, error) {
	req := ScanRequest{ID: r.ID, Key: catalog.BlobKey(r.ID), Size: r.Size, ContentType: r.ContentType}
	if u, err := w.store.PresignGet(ctx, req.Key, media.Presign{TTL: 10 * time.Minute}); err == nil {
		req.URL = u.String()
	}
	b, _ := json.Marshal(req)
	sctx, cancel := context.WithTimeout(ctx, w.cfg.ScanTimeout)
	defer cancel()
	msg, err := w.nc.RequestWithContext(sctx, ScanSubject, b)
	if errors.Is(err, nats.ErrNoResponders) {
		return r, errNoScanner
	}
	if err != nil {
		return r, fmt.Errorf("scan request: %w", err)
	}
	var rep ScanReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return r, fmt.Errorf("scan reply %q: %w", msg.Data, err)
	}
	if rep.Clean {
		return w.cat.Update(ctx, r.ID, func(r *catalog.Record) error { r.State = catalog.Ready; return nil })
	}
	w.log.Warn("upload refused by the virus scanner", zap.String("upload", r.ID), zap.String("reason", rep.Reason))
	if err := w.store.Delete(ctx, req.Key); err != nil {
		return r, err
	}
	var released int64
	r, err = w.cat.Update(ctx, r.ID, func(r *catalog.Record) error {
		released, r.Reserved, r.State = r.Reserved, 0, catalog.Rejected
		return nil
	})
	if err != nil {
		return r, err
	}
	return r, w.cat.Release(ctx, r.Owner, released)
}

// derive makes what the upload's kind calls for and is missing.
func (w *Worker) derive(ctx context.Context, r catalog.Record) (catalog.Record, error) {
	var thumb bytes.Buffer
	var durationMS int64
	switch {
	case r.Kind == inspect.KindImage && !r.Thumb:
		open := func() (io.ReadCloser, error) {
			rc, _, err := w.store.Get(ctx, catalog.BlobKey(r.ID))
			return rc, err
		}
		if _, _, err := inspect.Thumbnail(open, w.cfg.MaxPixels, &thumb); err != nil {
			// Not an image Go decodes (e.g. HEIC), or too many pixels: no
			// preview, not an error.
			w.log.Info("no thumbnail", zap.String("upload", r.ID), zap.Error(err))
			thumb.Reset()
		}
	case (r.Kind == inspect.KindVideo || r.Kind == inspect.KindAudio) && w.ff != nil && r.DurationMS == 0:
		path, err := w.download(ctx, r)
		if err != nil {
			return r, err
		}
		defer os.Remove(path)
		if durationMS, err = w.ff.Duration(ctx, path); err != nil {
			w.log.Info("no duration", zap.String("upload", r.ID), zap.Error(err))
		}
		if r.Kind == inspect.KindVideo {
			if err := w.ff.Poster(ctx, path, &thumb); err != nil {
				w.log.Info("no poster frame", zap.String("upload", r.ID), zap.Error(err))
				thumb.Reset()
			}
		}
	default:
		return r, nil
	}
	hasThumb := thumb.Len() > 0 // Put drains the buffer
	if hasThumb {
		if _, err := w.store.Put(ctx, catalog.ThumbKey(r.ID), &thumb, maxThumbBytes, "image/jpeg"); err != nil {
			return r, err
		}
	}
	return w.cat.Update(ctx, r.ID, func(x *catalog.Record) error {
		x.Thumb = x.Thumb || hasThumb
		if durationMS > 0 {
			x.DurationMS = durationMS
		}
		return nil
	})
}

// download copies the blob into a temporary file for ffmpeg, which needs
// to seek.
func (w *Worker) download(ctx context.Context, r catalog.Record) (string, error) {
	rc, _, err := w.store.Get(ctx, catalog.BlobKey(r.ID))
	if err != nil {
		return "", err
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "parley-media-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
