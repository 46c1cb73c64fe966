// Package media is the contract of Parley's file storage: a flat key space
// of immutable blobs, written by streaming and read back whole, behind one
// interface with an embedded backend (the JetStream object store, package
// objstore) and a cluster backend (any S3-compatible store, package
// s3store). Both pass the same conformance suite (package mediatest).
//
// Invariants every backend keeps:
//   - Put never holds a whole blob in memory and enforces its size limit
//     while streaming: a body past the limit fails with ErrTooLarge and
//     leaves nothing stored under the key.
//   - A blob is visible to Get and Stat only once Put has returned
//     successfully, and then byte for byte as written.
//   - Delete is idempotent; Get, Stat of a missing key give ErrNotFound.
//   - PresignGet, where a backend has it, returns a URL that serves the
//     blob without credentials until it expires; elsewhere ErrNoPresign.
package media

import (
	"context"
	"errors"
	"io"
	"net/url"
	"time"
)

// Errors of the contract, matched with errors.Is.
var (
	ErrNotFound  = errors.New("media: no such blob")
	ErrTooLarge  = errors.New("media: blob larger than its limit")
	ErrNoPresign = errors.New("media: backend has no presigned URLs")
)

// Info describes a stored blob.
type Info struct {
	Key         string
	Size        int64
	ContentType string
}

// Presign asks for response headers the presigned URL makes the server
// send, so a browser treats the bytes as the gateway would.
type Presign struct {
	TTL                time.Duration
	ContentType        string
	ContentDisposition string
}

// Store is a blob store. Keys are slash-separated paths, and no key may
// be the parent "directory" of another (k and k/x): S3 servers on a POSIX
// file system (versitygw's posix backend) store keys as files.
type Store interface {
	// Put stores r's bytes under key, replacing any blob there. At most
	// limit bytes are accepted: one more fails the Put with ErrTooLarge.
	Put(ctx context.Context, key string, r io.Reader, limit int64, contentType string) (Info, error)
	// Get opens a blob for reading; the caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	Stat(ctx context.Context, key string) (Info, error)
	Delete(ctx context.Context, key string) error
	// PresignGet returns a short-lived URL that serves the blob.
	PresignGet(ctx context.Context, key string, p Presign) (*url.URL, error)
}

// LimitReader returns r's bytes, failing with ErrTooLarge once more than
// limit have been read. Backends wrap Put bodies in it so that the limit
// holds while streaming, before anything is committed.
func LimitReader(r io.Reader, limit int64) io.Reader { return &limitReader{r: r, left: limit} }

type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, ErrTooLarge
	}
	// Read one byte past the limit so that a body of exactly limit bytes
	// ends cleanly and a longer one is seen.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n - 1, ErrTooLarge
	}
	return n, err
}
