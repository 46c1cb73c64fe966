// Package backend opens the media.Store a deployment is configured for:
// the embedded JetStream object store (the default, what `parley dev`
// uses) or an S3-compatible bucket.
package backend

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/internal/media/objstore"
	"github.com/parley-chat/parley/internal/media/s3store"
	"github.com/parley-chat/parley/pkg/media"
)

// Config chooses and configures the backend.
type Config struct {
	// Kind is "nats" (default) or "s3".
	Kind     string
	ObjStore objstore.Config
	S3       s3store.Config
}

// Open opens the configured store.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (media.Store, error) {
	switch cfg.Kind {
	case "", "nats":
		return objstore.Open(ctx, js, cfg.ObjStore)
	case "s3":
		if cfg.S3.Endpoint == "" || cfg.S3.Bucket == "" {
			return nil, fmt.Errorf("media backend s3: endpoint and bucket are required")
		}
		return s3store.Open(ctx, cfg.S3)
	}
	return nil, fmt.Errorf("media backend %q: want nats or s3", cfg.Kind)
}
