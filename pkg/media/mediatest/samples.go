package mediatest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Gradient returns a w×h picture.
func Gradient(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

// PNG returns a w×h PNG.
func PNG(t testing.TB, w, h int) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, Gradient(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// PixelBomb returns a small, valid PNG whose header claims w×h pixels.
func PixelBomb(t testing.TB, w, h uint32) []byte {
	b := PNG(t, 8, 8)
	// IHDR's data follows the 8-byte signature and its length and type;
	// its CRC covers type and data.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// RequireFFmpeg skips t without ffmpeg on PATH, or fails it under CI
// (make test-deps installs it).
func RequireFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal(err)
			}
			t.Skip(err)
		}
	}
}

// Clip makes a 2-second 640×360 MP4 with a tone, from ffmpeg's built-in
// sources, and returns its path.
func Clip(t testing.TB) string {
	return ffmpegSample(t, "clip.mp4", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-pix_fmt", "yuv420p", "-shortest")
}

// VoiceNote makes a 3-second Opus voice note in Ogg and returns its path.
func VoiceNote(t testing.TB) string {
	return ffmpegSample(t, "voice.ogg", "-f", "lavfi", "-i", "sine=frequency=300:duration=3", "-c:a", "libopus")
}

func ffmpegSample(t testing.TB, name string, args ...string) string {
	t.Helper()
	RequireFFmpeg(t)
	path := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("ffmpeg", append(append([]string{"-v", "error", "-y"}, args...), path)...).CombinedOutput()
	if err != nil {
		t.Fatalf("making %s: %v: %s", name, err, out)
	}
	return path
}
