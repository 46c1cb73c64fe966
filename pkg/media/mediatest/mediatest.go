// Package mediatest is the conformance suite of media.Store: every backend
// runs it unchanged from its own tests,
//
//	func TestConformance(t *testing.T) {
//		mediatest.Run(t, func(t *testing.T) media.Store { ... })
//	}
//
// and S3 gives tests a fresh bucket on a real S3 server (PARLEY_S3_ENDPOINT,
// default 127.0.0.1:9310, as deploy/s3/s3-node starts it). Without a server
// those tests skip, except with CI=true or PARLEY_REQUIRE_S3=1: then they
// fail.
package mediatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/parley-chat/parley/internal/media/s3store"
	"github.com/parley-chat/parley/pkg/media"
)

// Run runs every conformance test as a subtest. open returns a store for
// its t with no blobs; each subtest calls it once.
func Run(t *testing.T, open func(t *testing.T) media.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, st media.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Replace", testReplace},
		{"Missing", testMissing},
		{"LimitExact", testLimitExact},
		{"LimitPassed", testLimitPassed},
		{"BodyFails", testBodyFails},
		{"Presign", testPresign},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// Random returns n random bytes.
func Random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func put(t *testing.T, st media.Store, key string, b []byte, ct string) media.Info {
	t.Helper()
	info, err := st.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), ct)
	if err != nil {
		t.Fatalf("Put(%s, %d bytes): %v", key, len(b), err)
	}
	if info.Size != int64(len(b)) {
		t.Fatalf("Put(%s) size %d, want %d", key, info.Size, len(b))
	}
	return info
}

// checkBlob reads key back and compares bytes, size and type.
func checkBlob(t *testing.T, st media.Store, key string, want []byte, ct string) {
	t.Helper()
	rc, info, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Get(%s): %d bytes (err %v), want %d exact bytes", key, len(got), err, len(want))
	}
	st2, err := st.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat(%s): %v", key, err)
	}
	for _, i := range []media.Info{info, st2} {
		if i.Size != int64(len(want)) || i.ContentType != ct {
			t.Fatalf("info of %s = %+v, want size %d type %q", key, i, len(want), ct)
		}
	}
}

func checkMissing(t *testing.T, st media.Store, key string) {
	t.Helper()
	if _, err := st.Stat(context.Background(), key); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("Stat(%s) = %v, want ErrNotFound", key, err)
	}
	if _, _, err := st.Get(context.Background(), key); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("Get(%s) = %v, want ErrNotFound", key, err)
	}
}

func testRoundTrip(t *testing.T, st media.Store) {
	// Sizes around the object store's 128 KiB chunk and past one S3 part.
	for _, n := range []int{0, 1, 128 << 10, 128<<10 + 1, 11<<20 + 3} {
		key := "blobs/" + hex.EncodeToString(Random(8))
		b := Random(n)
		put(t, st, key, b, "image/png")
		checkBlob(t, st, key, b, "image/png")
	}
}

func testReplace(t *testing.T, st media.Store) {
	put(t, st, "k", []byte("first"), "text/plain")
	b := Random(1000)
	put(t, st, "k", b, "application/octet-stream")
	checkBlob(t, st, "k", b, "application/octet-stream")
}

func testMissing(t *testing.T, st media.Store) {
	checkMissing(t, st, "never/written")
	put(t, st, "gone", []byte("x"), "text/plain")
	for range 2 { // Delete is idempotent
		if err := st.Delete(context.Background(), "gone"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	checkMissing(t, st, "gone")
}

func testLimitExact(t *testing.T, st media.Store) {
	b := Random(300 << 10)
	info, err := st.Put(context.Background(), "exact", bytes.NewReader(b), int64(len(b)), "video/mp4")
	if err != nil || info.Size != int64(len(b)) {
		t.Fatalf("Put at exactly the limit = %+v, %v", info, err)
	}
	checkBlob(t, st, "exact", b, "video/mp4")
}

func testLimitPassed(t *testing.T, st media.Store) {
	// The body is one byte past the limit, and far past it: neither stores.
	for _, extra := range []int{1, 6 << 20} {
		b := Random(200<<10 + extra)
		_, err := st.Put(context.Background(), "big", bytes.NewReader(b), 200<<10, "video/mp4")
		if !errors.Is(err, media.ErrTooLarge) {
			t.Fatalf("Put %d bytes past the limit = %v, want ErrTooLarge", extra, err)
		}
		checkMissing(t, st, "big")
	}
}

// failingReader returns n random bytes, then an error: a cut upload.
type failingReader struct{ n int }

var errCut = errors.New("connection cut")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errCut
	}
	n := min(len(p), f.n)
	rand.Read(p[:n])
	f.n -= n
	return n, nil
}

func testBodyFails(t *testing.T, st media.Store) {
	_, err := st.Put(context.Background(), "cut", &failingReader{n: 300 << 10}, 1<<30, "video/mp4")
	if err == nil {
		t.Fatal("Put of a failing body succeeded")
	}
	checkMissing(t, st, "cut")
}

func testPresign(t *testing.T, st media.Store) {
	b := Random(70 << 10)
	put(t, st, "p/x", b, "image/png")
	u, err := st.PresignGet(context.Background(), "p/x", media.Presign{
		TTL: time.Minute, ContentType: "application/octet-stream", ContentDisposition: `attachment; filename="x.bin"`,
	})
	if errors.Is(err, media.ErrNoPresign) {
		t.Skip("backend has no presigned URLs")
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, b) {
		t.Fatalf("presigned GET: %s, %d bytes; want 200 and the exact bytes", resp.Status, len(got))
	}
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "application/octet-stream" || !strings.HasPrefix(cd, "attachment") {
		t.Fatalf("presigned GET headers: type %q disposition %q", ct, cd)
	}
	// A tampered signature is refused.
	q := u.Query()
	sig := []byte(q.Get("X-Amz-Signature"))
	sig[0] ^= 1
	if sig[0] > 'f' || (sig[0] < 'a' && sig[0] > '9') || sig[0] < '0' {
		sig[0] = '0'
	}
	q.Set("X-Amz-Signature", string(sig))
	u.RawQuery = q.Encode()
	resp, err = http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tampered presigned GET: %s, want 403", resp.Status)
	}
}

// S3 configuration of the test server.
const (
	defaultEndpoint = "127.0.0.1:9310"
	TestAccessKey   = "parleytest"
	TestSecretKey   = "parleytestsecret"
)

// S3Endpoint is the test server's host:port.
func S3Endpoint() string {
	if e := os.Getenv("PARLEY_S3_ENDPOINT"); e != "" {
		return e
	}
	return defaultEndpoint
}

// RequireS3 skips t when no S3 server answers, or fails it where a missing
// server is an error.
func RequireS3(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", S3Endpoint(), 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := "no S3 server (start one with deploy/s3/s3-node start): " + err.Error()
	if os.Getenv("CI") == "true" || os.Getenv("PARLEY_REQUIRE_S3") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// S3Config requires the test server and returns the configuration of a
// new bucket with a random name, emptied and removed when t ends.
func S3Config(t testing.TB) s3store.Config {
	t.Helper()
	RequireS3(t)
	cfg := s3store.Config{
		Endpoint:  S3Endpoint(),
		AccessKey: TestAccessKey,
		SecretKey: TestSecretKey,
		Region:    "us-east-1",
		Bucket:    "parley-test-" + hex.EncodeToString(Random(6)),
	}
	t.Cleanup(func() { removeBucket(t, cfg) })
	return cfg
}

func removeBucket(t testing.TB, cfg s3store.Config) {
	c, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Region: cfg.Region})
	if err != nil {
		t.Error(err)
		return
	}
	ctx := context.Background()
	if ok, err := c.BucketExists(ctx, cfg.Bucket); err != nil || !ok {
		return
	}
	for obj := range c.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err == nil {
			obj.Err = c.RemoveObject(ctx, cfg.Bucket, obj.Key, minio.RemoveObjectOptions{})
		}
		if obj.Err != nil {
			t.Errorf("emptying test bucket %s: %v", cfg.Bucket, obj.Err)
			return
		}
	}
	if err := c.RemoveBucket(ctx, cfg.Bucket); err != nil {
		t.Errorf("removing test bucket %s: %v", cfg.Bucket, err)
	}
}

// S3 returns a store on a new bucket of the test server.
func S3(t testing.TB) *s3store.Store {
	t.Helper()
	st, err := s3store.Open(context.Background(), S3Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
