// Package s3store is the cluster media.Store: blobs in a bucket of any
// S3-compatible server (AWS S3, MinIO, Ceph, versitygw), reached with
// minio-go. Downloads are presigned GET URLs, so bytes do not pass through
// gateways.
//
// A Put streams the body in parts of PartSize bytes (one part buffered at
// a time); a body that fails or passes its limit aborts the multipart
// upload, so nothing is stored under the key.
package s3store

import (
	"context"
	"errors"
	"io"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/parley-chat/parley/pkg/media"
)

// Config locates the bucket. Endpoint is host:port; Secure selects https.
type Config struct {
	Endpoint  string
	Secure    bool
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string
	// PartSize is the multipart part size (minimum and default 5 MiB): the
	// memory one streaming Put holds.
	PartSize uint64
}

const minPartSize = 5 << 20

// Store is a media.Store on an S3 bucket.
type Store struct {
	c        *minio.Client
	bucket   string
	partSize uint64
}

var _ media.Store = (*Store)(nil)

// Open connects and creates the bucket when it does not exist.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.Secure,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, err
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, err
		}
	}
	return &Store{c: c, bucket: cfg.Bucket, partSize: max(cfg.PartSize, minPartSize)}, nil
}

func (s *Store) Put(ctx context.Context, key string, r io.Reader, limit int64, contentType string) (media.Info, error) {
	info, err := s.c.PutObject(ctx, s.bucket, key, media.LimitReader(r, limit), -1, minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    s.partSize,
	})
	if err != nil {
		if errors.Is(err, media.ErrTooLarge) {
			return media.Info{}, media.ErrTooLarge
		}
		return media.Info{}, err
	}
	return media.Info{Key: key, Size: info.Size, ContentType: contentType}, nil
}

func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, media.Info, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, media.Info{}, mapErr(err)
	}
	// GetObject is lazy: Stat makes the request and reports a missing key.
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, media.Info{}, mapErr(err)
	}
	return obj, infoOf(st), nil
}

func (s *Store) Stat(ctx context.Context, key string) (media.Info, error) {
	st, err := s.c.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return media.Info{}, mapErr(err)
	}
	return infoOf(st), nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	return s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
}

func (s *Store) PresignGet(ctx context.Context, key string, p media.Presign) (*url.URL, error) {
	q := url.Values{}
	if p.ContentType != "" {
		q.Set("response-content-type", p.ContentType)
	}
	if p.ContentDisposition != "" {
		q.Set("response-content-disposition", p.ContentDisposition)
	}
	return s.c.PresignedGetObject(ctx, s.bucket, key, p.TTL, q)
}

func infoOf(st minio.ObjectInfo) media.Info {
	return media.Info{Key: st.Key, Size: st.Size, ContentType: st.ContentType}
}

func mapErr(err error) error {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, "NotFound":
		return media.ErrNotFound
	}
	return err
}
