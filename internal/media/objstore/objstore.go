// Package objstore is the embedded media.Store: blobs in a JetStream object
// store bucket, so `parley dev` needs nothing besides its NATS server.
//
// The object store chunks a blob into 128 KiB messages while reading it,
// so memory stays flat; a Put whose body fails (or passes its limit) is
// purged by nats.go and leaves nothing under the key. It has no presigned
// URLs: gateways stream downloads.
package objstore

import (
	"context"
	"errors"
	"io"
	"net/url"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-chat/parley/pkg/media"
)

// DefaultBucket is the bucket Open uses when given none.
const DefaultBucket = "PARLEY_MEDIA"

// Config configures the bucket. Replicas is 1 in single-node mode and 3 in
// a cluster; MaxBytes of 0 is unlimited. Bind only binds to the bucket,
// for roles whose NATS user may not create streams: another role creates
// it.
type Config struct {
	Bucket   string
	Replicas int
	MaxBytes int64
	Bind     bool
}

// Store is a media.Store on a JetStream object store.
type Store struct {
	os jetstream.ObjectStore
}

var _ media.Store = (*Store)(nil)

// Open creates the bucket if needed (unless cfg.Bind) and returns a store
// on it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Bind {
		os, err := js.ObjectStore(ctx, cfg.Bucket)
		if err != nil {
			return nil, err
		}
		return &Store{os: os}, nil
	}
	os, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      cfg.Bucket,
		Description: "Parley media uploads",
		Replicas:    max(cfg.Replicas, 1),
		MaxBytes:    cfg.MaxBytes,
		Storage:     jetstream.FileStorage,
		Compression: false, // media is compressed already
	})
	if err != nil {
		return nil, err
	}
	return &Store{os: os}, nil
}

const contentTypeKey = "content-type"

func (s *Store) Put(ctx context.Context, key string, r io.Reader, limit int64, contentType string) (media.Info, error) {
	info, err := s.os.Put(ctx, jetstream.ObjectMeta{
		Name:     key,
		Metadata: map[string]string{contentTypeKey: contentType},
	}, media.LimitReader(r, limit))
	if err != nil {
		return media.Info{}, err
	}
	return infoOf(info), nil
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, media.Info, error) {
	res, err := s.os.Get(ctx, key)
	if err != nil {
		return nil, media.Info{}, mapErr(err)
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		return nil, media.Info{}, mapErr(err)
	}
	return res, infoOf(info), nil
}

func (s *Store) Stat(ctx context.Context, key string) (media.Info, error) {
	info, err := s.os.GetInfo(ctx, key)
	if err != nil {
		return media.Info{}, mapErr(err)
	}
	return infoOf(info), nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.os.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return err
	}
	return nil
}

func (s *Store) PresignGet(context.Context, string, media.Presign) (*url.URL, error) {
	return nil, media.ErrNoPresign
}

func infoOf(i *jetstream.ObjectInfo) media.Info {
	return media.Info{Key: i.Name, Size: int64(i.Size), ContentType: i.Metadata[contentTypeKey]}
}

func mapErr(err error) error {
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return media.ErrNotFound
	}
	return err
}
