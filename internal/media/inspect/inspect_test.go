package inspect_test

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"io"
	"os"
	"testing"

	"github.com/parley-chat/parley/internal/media/inspect"
	"github.com/parley-chat/parley/pkg/media/mediatest"
)

const maxPixels = 50_000_000

func sniff(t *testing.T, b []byte) (inspect.Facts, error) {
	t.Helper()
	f, r, err := inspect.Sniff(bytes.NewReader(b), maxPixels)
	if err != nil {
		return f, err
	}
	// The returned reader gives every byte again.
	if all, _ := io.ReadAll(r); !bytes.Equal(all, b) {
		t.Fatalf("Sniff's reader gave %d bytes, want the %d read", len(all), len(b))
	}
	return f, nil
}

func TestSniff(t *testing.T) {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, mediatest.Gradient(1600, 1200), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		ct    string
		kind  inspect.Kind
		risky bool
		w, h  int
	}{
		{"png", mediatest.PNG(t, 640, 480), "image/png", inspect.KindImage, false, 640, 480},
		{"jpeg", jpg.Bytes(), "image/jpeg", inspect.KindImage, false, 1600, 1200},
		{"html named png", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), "text/html", inspect.KindFile, true, 0, 0},
		{"svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "image/svg+xml", inspect.KindFile, true, 0, 0},
		{"pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), "application/pdf", inspect.KindFile, true, 0, 0},
		{"text", []byte("just some notes\n"), "text/plain", inspect.KindFile, false, 0, 0},
		{"binary", []byte{0, 1, 2, 3, 0xff, 0xfe}, "application/octet-stream", inspect.KindFile, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := sniff(t, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			want := inspect.Facts{ContentType: tc.ct, Kind: tc.kind, Risky: tc.risky, Width: tc.w, Height: tc.h}
			if f != want {
				t.Fatalf("Sniff = %+v, want %+v", f, want)
			}
		})
	}
}

func TestPixelBomb(t *testing.T) {
	if _, err := sniff(t, mediatest.PixelBomb(t, 100_000, 100_000)); !errors.Is(err, inspect.ErrPixelBomb) {
		t.Fatalf("Sniff(100000×100000 PNG) = %v, want ErrPixelBomb", err)
	}
	// Just under the bound passes on to the (lazy) decoder.
	if f, err := sniff(t, mediatest.PixelBomb(t, 10_000, 5_000)); err != nil || f.Width != 10_000 {
		t.Fatalf("Sniff(10000×5000) = %+v, %v", f, err)
	}
}

func opener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func TestThumbnail(t *testing.T) {
	// A bomb that got past Sniff is refused before decoding.
	if _, _, err := inspect.Thumbnail(opener(mediatest.PixelBomb(t, 100_000, 100_000)), maxPixels, io.Discard); !errors.Is(err, inspect.ErrPixelBomb) {
		t.Fatalf("Thumbnail(bomb) = %v", err)
	}

	for _, tc := range []struct{ w, h, tw, th int }{
		{1600, 1200, 320, 240},
		{300, 900, 106, 320},
		{100, 50, 100, 50}, // small images keep their size
	} {
		var out bytes.Buffer
		w, h, err := inspect.Thumbnail(opener(mediatest.PNG(t, tc.w, tc.h)), maxPixels, &out)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(&out)
		if err != nil || w != tc.tw || h != tc.th || cfg.Width != tc.tw || cfg.Height != tc.th {
			t.Fatalf("thumbnail of %d×%d: %d×%d (JPEG %d×%d, %v), want %d×%d", tc.w, tc.h, w, h, cfg.Width, cfg.Height, err, tc.tw, tc.th)
		}
	}
}

func TestFFmpeg(t *testing.T) {
	clip, voice := mediatest.Clip(t), mediatest.VoiceNote(t)
	ff, err := inspect.FindFFmpeg()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for _, tc := range []struct {
		path string
		ms   int64
		ct   string
		kind inspect.Kind
	}{{clip, 2000, "video/mp4", inspect.KindVideo}, {voice, 3000, "application/ogg", inspect.KindAudio}} {
		ms, err := ff.Duration(ctx, tc.path)
		if err != nil || ms < tc.ms-100 || ms > tc.ms+100 {
			t.Fatalf("Duration(%s) = %d ms, %v; want about %d", tc.path, ms, err, tc.ms)
		}
		b, _ := os.ReadFile(tc.path)
		if f, err := sniff(t, b); err != nil || f.ContentType != tc.ct || f.Kind != tc.kind || f.Risky {
			t.Fatalf("Sniff(%s) = %+v, %v", tc.path, f, err)
		}
	}

	var poster bytes.Buffer
	if err := ff.Poster(ctx, clip, &poster); err != nil {
		t.Fatal(err)
	}
	cfg, err := jpeg.DecodeConfig(&poster)
	if err != nil || cfg.Width != 320 || cfg.Height != 180 {
		t.Fatalf("poster frame: %+v, %v; want a 320×180 JPEG", cfg, err)
	}
	if err := ff.Poster(ctx, voice, io.Discard); err == nil {
		t.Fatal("a poster frame of a voice note")
	}
}
