package processor

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Previews stop at previewLen bytes without splitting a character.
func TestPreview(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", previewLen), strings.Repeat("a", previewLen)},
		{strings.Repeat("a", previewLen+1), strings.Repeat("a", previewLen)},
		// 3-byte characters: 46 fit in 140 bytes (138), the 47th would not.
		{strings.Repeat("€", 60), strings.Repeat("€", 46)},
	} {
		got := preview(c.text)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("preview(%d bytes) = %d bytes %q, want %d bytes", len(c.text), len(got), got, len(c.want))
		}
	}
}
