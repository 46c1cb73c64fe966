package media_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/parley-chat/parley/gateway/media"
	"github.com/parley-chat/parley/pkg/media/mediaclient"
	"github.com/parley-chat/parley/pkg/media/mediatest"
)

// BenchmarkUpload compares, per backend, the raw write speed of the store
// with uploads of the same file through the handler (one-shot, and
// resumable in 8 MiB PATCHes, which writes the bytes twice: parts, then
// the joined file). MB/s is the file's bytes per second.
//
//	go test -run '^$' -bench Upload -benchtime 5x ./gateway/media
func BenchmarkUpload(b *testing.B) {
	const size = 64 << 20
	file := mediatest.Random(size)
	for _, be := range backendConfigs {
		b.Run(be.name, func(b *testing.B) {
			e := setup(b, be.cfg(b), media.Config{})
			ctx := context.Background()
			c := &mediaclient.Client{HTTP: http.DefaultClient, Base: e.srv.URL, Token: e.token("ann")}
			upload := func(b *testing.B, oneShotMax int64) {
				u, err := c.Upload(ctx, "f.bin", bytes.NewReader(file), size, mediaclient.Options{OneShotMax: oneShotMax})
				if err != nil {
					b.Fatal(err)
				}
				// Free the quota for the next round.
				resp := e.do("ann", "DELETE", "/api/v1/uploads/"+u.ID, nil, nil)
				resp.Body.Close()
			}
			for _, tc := range []struct {
				name string
				fn   func(b *testing.B)
			}{
				{"store", func(b *testing.B) {
					if _, err := e.blobs.Put(ctx, "bench/file", bytes.NewReader(file), size, "application/octet-stream"); err != nil {
						b.Fatal(err)
					}
				}},
				{"oneshot", func(b *testing.B) { upload(b, size) }},
				{"resumable", func(b *testing.B) { upload(b, 0) }},
			} {
				b.Run(tc.name, func(b *testing.B) {
					b.SetBytes(size)
					b.ReportAllocs()
					for b.Loop() {
						tc.fn(b)
					}
				})
			}
		})
	}
}
