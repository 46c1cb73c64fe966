package kubeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/parley-chat/parley/deploy/internal/deploytest"
)

// profile is a values file of the chart and the --set pairs it installs
// with here.
type profile struct {
	file string
	set  []string
}

var profiles = []profile{
	// The token key is generated at install: it must survive an upgrade.
	{file: "values.yaml"},
	{file: "values-dev.yaml"},
	// The ServiceMonitor CRD (Prometheus operator) is not installed.
	{file: "values-ha.yaml", set: []string{"serviceMonitor.enabled=false"}},
}

const release = "parley"

func chartDir() string { return filepath.Join(deploytest.Root(), "deploy", "helm", "parley") }

// TestChartOnAPIServer: for each profile the rendered chart passes a
// server-side dry-run apply, installs with helm (its migrate hook Job
// included), and every object reads back with what the chart set intact
// and the server's defaults added; an upgrade keeps the token key.
func TestChartOnAPIServer(t *testing.T) {
	c := startCluster(t)
	t.Run("rejects invalid objects", func(t *testing.T) { checkRejects(t, c) })
	for i, p := range profiles {
		t.Run(p.file, func(t *testing.T) { checkProfile(t, c, p, fmt.Sprintf("parley-%d", i)) })
	}
}

func checkProfile(t *testing.T, c *cluster, p profile, ns string) {
	args := []string{"--namespace", ns, "-f", filepath.Join(chartDir(), p.file)}
	for _, s := range p.set {
		args = append(args, "--set", s)
	}
	c.must(t, c.kubectl, "", "create", "namespace", ns)
	// --validate: rendered for the server's version and API groups.
	rendered := c.must(t, c.helm, "", append([]string{"template", release, chartDir(), "--validate"}, args...)...)

	// Server-side dry run: every object admitted, nothing stored.
	out := c.must(t, c.kubectl, string(rendered), "apply", "--server-side", "--dry-run=server", "-n", ns, "-f", "-")
	if n, want := strings.Count(string(out), "(server dry run)"), len(docs(t, rendered)); n != want {
		t.Errorf("server dry run applied %d objects, the chart renders %d:\n%s", n, want, out)
	}
	if out := c.must(t, c.kubectl, "", "get", "deployments", "-n", ns, "-o", "name"); len(out) != 0 {
		t.Errorf("a dry run stored objects: %s", out)
	}

	jobs := completeJobs(t, c, ns)
	c.must(t, c.helm, "", append([]string{"install", release, chartDir(), "--timeout", "3m"}, args...)...)
	hooks := jobs.captured(t, 1)
	manifest := c.must(t, c.helm, "", "get", "manifest", release, "-n", ns)
	stored := get(t, c, ns, manifest)
	checkStored(t, manifest, stored)
	checkStored(t, c.must(t, c.helm, "", "get", "hooks", release, "-n", ns), hooks)
	checkDefaults(t, stored, hooks)

	// The generated token key (values.yaml) is read back by the chart's
	// lookup on upgrade; a fixed or existing one is left alone.
	before := secrets(t, stored)
	c.must(t, c.helm, "", append([]string{"upgrade", release, chartDir(), "--timeout", "3m"}, args...)...)
	jobs.captured(t, 2)
	if after := secrets(t, get(t, c, ns, c.must(t, c.helm, "", "get", "manifest", release, "-n", ns))); !reflect.DeepEqual(before, after) {
		t.Errorf("helm upgrade changed the token key Secret (%d Secrets before, %d after)", len(before), len(after))
	}
}

// object is an API object as generic JSON.
type object = map[string]any

func docs(t *testing.T, manifest []byte) []object {
	t.Helper()
	var objs []object
	for _, doc := range bytes.Split(manifest, []byte("\n---")) {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

// get reads back from the server the objects a manifest names.
func get(t *testing.T, c *cluster, ns string, manifest []byte) []object {
	t.Helper()
	var list struct{ Items []object }
	if err := json.Unmarshal(c.must(t, c.kubectl, string(manifest), "get", "-n", ns, "-o", "json", "-f", "-"), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func key(o object) string {
	m, _ := o["metadata"].(object)
	return fmt.Sprintf("%v/%v", o["kind"], m["name"])
}

// checkStored: every object of manifest is stored, and every field it
// sets comes back with the same value (a field the server dropped or
// rewrote means the cluster runs something other than the chart).
func checkStored(t *testing.T, manifest []byte, stored []object) {
	t.Helper()
	byKey := map[string]object{}
	for _, o := range stored {
		byKey[key(o)] = o
	}
	want := docs(t, manifest)
	if len(want) == 0 {
		t.Fatal("empty manifest")
	}
	for _, o := range want {
		got, ok := byKey[key(o)]
		if !ok {
			t.Errorf("%s is not on the server", key(o))
			continue
		}
		for _, d := range diff(key(o), o, got) {
			t.Error(d)
		}
	}
}

// diff lists where want is not contained in got. Empty and zero values
// may be omitted by the server (omitempty); quantities compare by value
// ("1024Mi" is "1Gi").
func diff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: stored %v, chart %v", path, got, want)}
		}
		var out []string
		names := make([]string, 0, len(w))
		for k := range w {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if _, ok := g[k]; !ok && empty(w[k]) {
				continue
			}
			out = append(out, diff(path+"."+k, w[k], g[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: stored %v, chart %v", path, got, want)}
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if reflect.DeepEqual(want, got) || sameQuantity(want, got) {
		return nil
	}
	return []string{fmt.Sprintf("%s: stored %v, chart %v", path, got, want)}
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	case float64:
		return v == 0
	case bool:
		return !v
	case string:
		return v == ""
	}
	return false
}

func sameQuantity(a, b any) bool {
	as, ok1 := a.(string)
	bs, ok2 := b.(string)
	if !ok1 || !ok2 {
		return false
	}
	qa, err1 := resource.ParseQuantity(as)
	qb, err2 := resource.ParseQuantity(bs)
	return err1 == nil && err2 == nil && qa.Cmp(qb) == 0
}

// checkDefaults: the objects went through the server's defaulting and
// allocation, so what was read back is what a cluster would run.
func checkDefaults(t *testing.T, stored, hooks []object) {
	t.Helper()
	_, serviceNet, _ := net.ParseCIDR("10.96.0.0/16")
	var deployments, services int
	for _, o := range stored {
		switch o["kind"] {
		case "Deployment":
			deployments++
			var d appsv1.Deployment
			decodeInto(t, o, &d)
			spec := d.Spec.Template.Spec
			c := spec.Containers[0]
			if d.Spec.RevisionHistoryLimit == nil || d.Spec.ProgressDeadlineSeconds == nil || spec.DNSPolicy != corev1.DNSClusterFirst ||
				c.TerminationMessagePath == "" {
				t.Errorf("%s: not defaulted by the server: %+v", d.Name, d.Spec)
			}
			for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTP || p.TimeoutSeconds < 1 || p.SuccessThreshold != 1 {
					t.Errorf("%s: probe not defaulted: %+v", d.Name, p)
				}
			}
			// Dropped, the gateway's grace period would come back as the
			// server's 30 s default (diff above checks the exact value).
			if g := spec.TerminationGracePeriodSeconds; d.Spec.Template.Labels["app.kubernetes.io/component"] == "gateway" && (g == nil || *g == 30) {
				t.Errorf("%s: terminationGracePeriodSeconds is the 30 s default, not the chart's", d.Name)
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: read-only root lost: %+v", d.Name, sc)
			}
		case "Service":
			services++
			var s corev1.Service
			decodeInto(t, o, &s)
			ip := net.ParseIP(s.Spec.ClusterIP)
			if s.Spec.ClusterIP != corev1.ClusterIPNone && (ip == nil || !serviceNet.Contains(ip)) {
				t.Errorf("Service %s: cluster IP %q not allocated from the service range", s.Name, s.Spec.ClusterIP)
			}
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer && (s.Spec.Ports[0].NodePort == 0 ||
				(s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && s.Spec.HealthCheckNodePort == 0)) {
				t.Errorf("Service %s: no node port or health check node port allocated: %+v", s.Name, s.Spec)
			}
		}
	}
	if deployments != 3 || services == 0 {
		t.Errorf("%d Deployments and %d Services stored, want 3 and some", deployments, services)
	}
	for _, o := range hooks {
		var j batchv1.Job
		decodeInto(t, o, &j)
		if j.Spec.Selector == nil || j.Spec.Selector.MatchLabels["batch.kubernetes.io/controller-uid"] != string(j.UID) ||
			j.Spec.Completions == nil || *j.Spec.Completions != 1 {
			t.Errorf("Job %s: selector and completions not defaulted: %+v", j.Name, j.Spec)
		}
	}
}

func decodeInto(t *testing.T, o object, v any) {
	t.Helper()
	b, _ := json.Marshal(o)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", key(o), err)
	}
}

// secrets is the data of the stored Secrets, by name.
func secrets(t *testing.T, stored []object) map[string]map[string][]byte {
	t.Helper()
	m := map[string]map[string][]byte{}
	for _, o := range stored {
		if o["kind"] == "Secret" {
			var s corev1.Secret
			decodeInto(t, o, &s)
			m[s.Name] = s.Data
		}
	}
	return m
}

// jobStandIn does the job controller's part for helm's hook Jobs, which
// no controller runs here: it reads each new Job of its namespace as
// stored and then marks it complete, so that helm, which waits for a hook
// Job to complete, goes on. helm deletes a succeeded hook Job.
type jobStandIn struct {
	mu   sync.Mutex
	seen []object
	errs []string
}

func completeJobs(t *testing.T, c *cluster, ns string) *jobStandIn {
	s := &jobStandIn{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		completed := map[string]bool{}
		for ctx.Err() == nil {
			time.Sleep(300 * time.Millisecond)
			out, err := c.run(c.kubectl, "", "get", "jobs", "-n", ns, "-o", "json")
			var list struct{ Items []object }
			if err != nil || json.Unmarshal(out, &list) != nil {
				continue
			}
			for _, j := range list.Items {
				m := j["metadata"].(object)
				uid := fmt.Sprint(m["uid"])
				if completed[uid] {
					continue
				}
				completed[uid] = true
				now := time.Now().UTC().Format(time.RFC3339)
				cond := func(typ string) string {
					return fmt.Sprintf(`{"type":%q,"status":"True","reason":"CompletionsReached","message":"Reached expected number of succeeded pods","lastProbeTime":%q,"lastTransitionTime":%q}`, typ, now, now)
				}
				patch := fmt.Sprintf(`{"status":{"startTime":%q,"completionTime":%q,"succeeded":1,"conditions":[%s,%s]}}`,
					now, now, cond("SuccessCriteriaMet"), cond("Complete"))
				// Recorded first: helm may return as soon as the patch lands.
				s.mu.Lock()
				s.seen = append(s.seen, j)
				s.mu.Unlock()
				if out, err := c.run(c.kubectl, "", "patch", "job", fmt.Sprint(m["name"]), "-n", ns, "--subresource=status", "--type=merge", "-p", patch); err != nil {
					s.mu.Lock()
					s.errs = append(s.errs, fmt.Sprintf("completing Job %s: %v\n%s", m["name"], err, out))
					s.mu.Unlock()
				}
			}
		}
	}()
	return s
}

// captured is the Jobs seen so far, failing t unless there are n of them
// and all were completed.
func (s *jobStandIn) captured(t *testing.T, n int) []object {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.errs {
		t.Error(e)
	}
	if len(s.seen) != n {
		t.Fatalf("%d hook Jobs created, want %d", len(s.seen), n)
	}
	return s.seen[n-1:]
}

// checkRejects: the server refuses invalid objects (kubectl sends a
// server-side apply as it is, unchecked); the valid variant is admitted, so
// each refusal is for the one fault put in.
func checkRejects(t *testing.T, c *cluster) {
	const valid = `apiVersion: apps/v1
kind: Deployment
metadata: {name: probe}
spec:
  replicas: 1
  selector: {matchLabels: {app: probe}}
  template:
    metadata: {labels: {app: probe}}
    spec:
      containers: [{name: c, image: "registry.example.com/probe:1"}]
`
	for _, tc := range []struct{ name, replace, with, want string }{
		{"valid", "", "", ""},
		{"string replicas", "replicas: 1", `replicas: "three"`, ".spec.replicas: expected numeric (int or float), got string"},
		{"selector not matching the pods", "selector: {matchLabels: {app: probe}}", "selector: {matchLabels: {app: other}}", "`selector` does not match template `labels`"},
		{"unknown field", "replicas: 1", "replicas: 1\n  replica: 1", ".spec.replica: field not declared in schema"},
		{"invalid port", `image: "registry.example.com/probe:1"`, `image: "registry.example.com/probe:1", ports: [{containerPort: 70000}]`, "containerPort: Invalid value: 70000"},
	} {
		doc := strings.Replace(valid, tc.replace, tc.with, 1)
		out, err := c.run(c.kubectl, doc, "apply", "--server-side", "--dry-run=server", "-n", "default", "-f", "-")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v\n%s", tc.name, err, out)
		case tc.want != "" && err == nil:
			t.Errorf("%s: admitted:\n%s", tc.name, doc)
		case tc.want != "" && !strings.Contains(string(out), tc.want):
			t.Errorf("%s: refused, but not for %q: %s", tc.name, tc.want, out)
		}
	}
}
