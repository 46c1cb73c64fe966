// Package inspect learns what an uploaded file is from its bytes, never
// from what the client claims, and makes its previews: the sniffed type,
// whether a browser could execute it, image dimensions from the header
// (refusing decompression bombs before any decoding), thumbnails, and,
// with ffmpeg installed, audio/video durations and video poster frames.
package inspect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"

	// Decoders for image.DecodeConfig and image.Decode.
	_ "image/gif"
	_ "image/png"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// PeekSize is how many leading bytes Sniff looks at: enough for the JPEG
// frame header behind a typical EXIF block.
const PeekSize = 64 << 10

// Kind is the coarse class of a file, as in the protocol's Attachment.Kind.
type Kind string

const (
	KindImage Kind = "image"
	KindAudio Kind = "audio"
	KindVideo Kind = "video"
	KindFile  Kind = "file"
)

// Facts is what the leading bytes tell.
type Facts struct {
	ContentType string
	Kind        Kind
	// Risky: a browser could execute or render it as a page (HTML, SVG,
	// XML, PDF with scripts, …): serve as an attachment with nosniff.
	Risky bool
	// Width and Height of an image whose header decoded; 0 otherwise.
	Width, Height int
}

// ErrPixelBomb refuses an image whose header declares more pixels than
// allowed: decoding it would take memory out of proportion to its size.
var ErrPixelBomb = errors.New("inspect: image has too many pixels")

// Sniff reads up to PeekSize bytes of r and returns what they tell, and a
// reader that yields all of r's bytes again. maxPixels bounds
// width×height of images.
func Sniff(r io.Reader, maxPixels int) (Facts, io.Reader, error) {
	br := bufio.NewReaderSize(r, PeekSize)
	head, err := br.Peek(PeekSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return Facts{}, nil, err
	}
	f := Facts{ContentType: contentType(head)}
	f.Kind = kindOf(f.ContentType)
	f.Risky = risky(f.ContentType)
	if f.Kind == KindImage {
		// A header past the peeked bytes leaves the size unknown here;
		// Thumbnail checks again before it decodes.
		if w, h, err := CheckPixels(bytes.NewReader(head), maxPixels); errors.Is(err, ErrPixelBomb) {
			return f, nil, err
		} else if err == nil {
			f.Width, f.Height = w, h
		}
	}
	return f, br, nil
}

// CheckPixels reads an image's header from r and refuses more than
// maxPixels pixels.
func CheckPixels(r io.Reader, maxPixels int) (width, height int, err error) {
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return 0, 0, err
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return 0, 0, fmt.Errorf("%w: %d×%d", ErrPixelBomb, cfg.Width, cfg.Height)
	}
	return cfg.Width, cfg.Height, nil
}

// contentType is the sniffed type without parameters, from the WHATWG
// algorithm (http.DetectContentType) plus the media it does not know.
func contentType(head []byte) string {
	ct, _, _ := strings.Cut(http.DetectContentType(head), ";")
	switch {
	case ct == "application/octet-stream" && len(head) >= 12 && string(head[4:8]) == "ftyp":
		// ISO base media (MP4, MOV, M4A) with a brand DetectContentType lacks.
		if b := string(head[8:11]); b == "M4A" {
			return "audio/mp4"
		}
		return "video/mp4"
	case ct == "text/xml" && bytes.Contains(head, []byte("<svg")):
		return "image/svg+xml"
	}
	return ct
}

func kindOf(ct string) Kind {
	switch {
	case ct == "image/svg+xml": // a page, not a picture: never inline
		return KindFile
	case strings.HasPrefix(ct, "image/"):
		return KindImage
	case strings.HasPrefix(ct, "audio/") || ct == "application/ogg":
		return KindAudio
	case strings.HasPrefix(ct, "video/"):
		return KindVideo
	}
	return KindFile
}

// risky: anything but the passive types a browser only displays.
func risky(ct string) bool {
	switch {
	case ct == "image/svg+xml":
		return true
	case strings.HasPrefix(ct, "image/"), strings.HasPrefix(ct, "audio/"), strings.HasPrefix(ct, "video/"):
		return false
	case ct == "application/ogg", ct == "application/zip", ct == "application/x-gzip",
		ct == "application/octet-stream", ct == "text/plain", ct == "application/vnd.ms-fontobject",
		strings.HasPrefix(ct, "font/"):
		return false
	}
	// text/html, text/xml, application/pdf, application/javascript, …
	return true
}

// ThumbSize is the longest side of a thumbnail, in pixels.
const ThumbSize = 320

// Thumbnail decodes an image and writes a JPEG at most ThumbSize pixels on
// its longest side; it returns the thumbnail's size. open is called twice:
// the header is checked with CheckPixels before anything is decoded.
func Thumbnail(open func() (io.ReadCloser, error), maxPixels int, w io.Writer) (width, height int, err error) {
	rc, err := open()
	if err != nil {
		return 0, 0, err
	}
	_, _, err = CheckPixels(rc, maxPixels)
	rc.Close()
	if err != nil {
		return 0, 0, err
	}
	if rc, err = open(); err != nil {
		return 0, 0, err
	}
	defer rc.Close()
	src, _, err := image.Decode(rc)
	if err != nil {
		return 0, 0, err
	}
	b := src.Bounds()
	width, height = scaleDown(b.Dx(), b.Dy())
	dst := image.NewRGBA(image.Rect(0, 0, width, height))
	// ApproxBiLinear: ~25 ms for 4000×3000 → 320, CatmullRom takes seconds.
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	return width, height, jpeg.Encode(w, dst, &jpeg.Options{Quality: 80})
}

func scaleDown(w, h int) (int, int) {
	if w <= ThumbSize && h <= ThumbSize {
		return max(w, 1), max(h, 1)
	}
	if w >= h {
		return ThumbSize, max(h*ThumbSize/w, 1)
	}
	return max(w*ThumbSize/h, 1), ThumbSize
}

// FFmpeg runs ffprobe and ffmpeg from PATH on uploaded files, which are
// untrusted: they may read local files only (no playlist or reference
// fetching over the network).
type FFmpeg struct {
	probe, mpeg string
}

// FindFFmpeg returns the tools, or an error saying what is missing: the
// server then runs without durations and poster frames.
func FindFFmpeg() (*FFmpeg, error) {
	probe, err := exec.LookPath("ffprobe")
	if err != nil {
		return nil, err
	}
	mpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, err
	}
	return &FFmpeg{probe: probe, mpeg: mpeg}, nil
}

// Duration of the audio or video file at path, in milliseconds.
func (f *FFmpeg) Duration(ctx context.Context, path string) (int64, error) {
	out, err := exec.CommandContext(ctx, f.probe, "-v", "error", "-protocol_whitelist", "file", "-show_entries", "format=duration",
		"-of", "default=noprint_wrappers=1:nokey=1", path).Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe: %w", err)
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("ffprobe duration %q: %w", out, err)
	}
	return int64(s * 1000), nil
}

// Poster writes a JPEG frame of the video at path, scaled to at most
// ThumbSize pixels on its longest side, to w.
func (f *FFmpeg) Poster(ctx context.Context, path string, w io.Writer) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, f.mpeg, "-v", "error", "-protocol_whitelist", "file,pipe", "-i", path, "-frames:v", "1",
		"-vf", fmt.Sprintf("scale='min(%d,iw)':'min(%d,ih)':force_original_aspect_ratio=decrease", ThumbSize, ThumbSize),
		"-f", "image2", "-c:v", "mjpeg", "pipe:1")
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg poster: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
