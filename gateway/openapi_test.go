package gateway

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/gateway/media"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/parley-chat/parley/gateway/internal/httpapi"
)

const openAPIPath = "../schemas/openapi.yaml"

var openAPIMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("%s: openapi = %q, want 3.1.x", openAPIPath, v)
	}
	return doc
}

// The document lists exactly the routes the gateway serves, each as
// "METHOD /path" (ServeMux patterns and OpenAPI paths share {name}).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	g := New(nil, nil, nil, nil, zap.NewNop(), Config{DevTokens: true})
	// The node mounts the media routes the same way.
	g.Mount(media.New(media.Config{}, nil, nil, nil, nil, nil, zap.NewNop()).Routes)
	served := g.Handler().(*httpapi.Router).Patterns()

	var documented []string
	paths, _ := loadOpenAPI(t)["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method := range ops {
			if slices.Contains(openAPIMethods, method) {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	for _, p := range served {
		if !slices.Contains(documented, p) {
			t.Errorf("route %q is served but not in %s", p, openAPIPath)
		}
	}
	for _, p := range documented {
		if !slices.Contains(served, p) {
			t.Errorf("route %q is in %s but not served", p, openAPIPath)
		}
	}
}

// Every local $ref of the document resolves.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if ref, ok := x.(string); ok && k == "$ref" {
					if !resolves(doc, ref) {
						t.Errorf("$ref %q does not resolve", ref)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// resolves reports whether ref ("#/a/b/c") names a node of doc.
func resolves(doc map[string]any, ref string) bool {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var node any = doc
	for name := range strings.SplitSeq(path, "/") {
		m, ok := node.(map[string]any)
		if !ok {
			return false
		}
		if node, ok = m[name]; !ok {
			return false
		}
	}
	return true
}
