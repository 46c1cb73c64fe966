package media_test

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/parley-chat/parley/gateway/media"
)

// The media routes are exactly those schemas/openapi.yaml lists under
// /api/v1/media and /api/v1/uploads.
func TestOpenAPI(t *testing.T) {
	data, err := os.ReadFile("../../schemas/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/v1/media") && !strings.HasPrefix(path, "/api/v1/uploads") {
			continue
		}
		for m := range ops {
			if m != "parameters" {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	var h *media.Handler
	h.Routes(func(pattern string, _ http.Handler) { served = append(served, pattern) })
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("documented %q\nserved %q", documented, served)
	}
}
