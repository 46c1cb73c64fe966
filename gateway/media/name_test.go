package media

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestFileName(t *testing.T) {
	long := strings.Repeat("é", 200) + ".png" // 404 bytes
	for in, want := range map[string]string{
		"photo.png":        "photo.png",
		"../../etc/passwd": "passwd",
		`C:\x\evil.html`:   "evil.html",
		"a\"b\x00\n.png":   "ab.png",
		"bad\xff.txt":      "bad.txt",
		"":                 "",
		"..":               "",
		long:               strings.Repeat("é", 127),
	} {
		r := httptest.NewRequest("POST", "/api/v1/media?name="+url.QueryEscape(in), nil)
		if got := fileName(r); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}
