package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"go.uber.org/zap"

	gwmedia "github.com/parley-chat/parley/gateway/media"
	"github.com/parley-chat/parley/internal/bus"
	"github.com/parley-chat/parley/internal/media/backend"
	"github.com/parley-chat/parley/internal/media/catalog"
	"github.com/parley-chat/parley/internal/media/derive"
	"github.com/parley-chat/parley/internal/media/inspect"
	"github.com/parley-chat/parley/internal/media/refs"
	"github.com/parley-chat/parley/pkg/media"
)

// MediaConfig is how a node stores and serves uploads.
type MediaConfig struct {
	// Store is the embedded JetStream object store (Kind "nats", the
	// default) or an S3 bucket.
	Store backend.Config
	// MaxFileBytes, UserQuotaBytes: the gateway's upload limits (0: 100
	// MiB per file, 1 GiB of unsent uploads per user).
	MaxFileBytes, UserQuotaBytes int64
	// Scan holds uploads until the virus-scan hook (parley.media.scan)
	// answers.
	Scan bool
}

// collectEvery is how often unsent uploads past their TTL are collected.
const collectEvery = 10 * time.Minute

// mediaParts are what every role serving media shares.
type mediaParts struct {
	blobs media.Store
	cat   *catalog.Catalog
	refs  *refs.Refs
}

// openMedia opens the upload store and catalog on a role's connection:
// creating them (processor) or binding to them once created (a gateway,
// which may not create streams).
func (n *Node) openMedia(ctx context.Context, c conn, create bool) (mediaParts, error) {
	cfg := n.cfg.Media.Store
	cfg.ObjStore.Replicas = n.cfg.Streams.Replicas
	cfg.ObjStore.Bind = !create
	var p mediaParts
	err := bus.Await(ctx, n.log, "the media store", func() (bool, error) {
		var err error
		if p.blobs, err = backend.Open(ctx, c.js, cfg); err != nil {
			return false, ignoreIf(!create, err)
		}
		if p.cat, err = catalog.Open(ctx, c.js, catalog.Config{Replicas: n.cfg.Streams.Replicas, Bind: !create}); err != nil {
			return false, ignoreIf(!create, err)
		}
		return true, nil
	})
	if err != nil {
		return p, fmt.Errorf("media: %w", err)
	}
	p.refs = refs.New(p.cat, p.blobs, n.st, 0, n.log.Named("media"))
	return p, nil
}

// ignoreIf drops err when waiting is what to do about it.
func ignoreIf(wait bool, err error) error {
	if wait {
		return nil
	}
	return err
}

// ensureMedia creates the media store (where it lives in NATS), the
// catalog and the previews queue, as the processor and the archiver do
// with the streams: gateways may not create them and wait for them. An
// archiver, which takes no media flags, makes the JetStream object store
// even in a deployment keeping uploads on S3; it then stays empty.
func (n *Node) ensureMedia(ctx context.Context, c conn) error {
	if _, err := n.openMedia(ctx, c, true); err != nil {
		return err
	}
	if err := derive.EnsureQueue(ctx, c.js, n.cfg.Streams.Replicas); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	return nil
}

// startMediaWork runs the processor role's media part: the previews
// worker (thumbnails, durations, poster frames, the scan hook) and the
// collector of uploads never sent; it returns what the processor records
// messages' uploads with.
func (n *Node) startMediaWork(ctx, runCtx context.Context, c conn) (*refs.Refs, error) {
	p, err := n.openMedia(ctx, c, true)
	if err != nil {
		return nil, err
	}
	ff, err := inspect.FindFFmpeg()
	if err != nil {
		n.log.Warn("ffmpeg not found: uploads get no durations or video poster frames", zap.Error(err))
	}
	w := derive.NewWorker(c.nc, c.js, p.cat, p.blobs, ff, derive.Config{Scan: n.cfg.Media.Scan}, n.log.Named("media"))
	n.run("media worker", func() error { return w.Run(runCtx) })
	n.run("media collector", func() error { p.refs.RunCollector(runCtx, collectEvery); return nil })
	return p.refs, nil
}

// mountMedia adds the upload and download routes to the gateway. Links
// are signed with a key derived from the token key, the same on every
// gateway of a deployment.
func (n *Node) mountMedia(ctx context.Context, c conn, tokenKey []byte) error {
	p, err := n.openMedia(ctx, c, false)
	if err != nil {
		return err
	}
	link := sha256.Sum256(append([]byte("parley media links\x00"), tokenKey...))
	cfg := gwmedia.Config{MaxFileBytes: n.cfg.Media.MaxFileBytes, UserQuotaBytes: n.cfg.Media.UserQuotaBytes, Scan: n.cfg.Media.Scan, LinkKey: link[:]}
	h := gwmedia.New(cfg, gwmedia.AuthFunc(n.gw.Authenticate), p.refs, p.cat, p.blobs, c.js, n.log.Named("media"))
	n.gw.Mount(h.Routes)
	return nil
}
