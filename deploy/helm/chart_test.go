package helm

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/parley-chat/parley/deploy/internal/deploytest"
)

func TestLintStrict(t *testing.T) {
	for _, p := range profiles {
		out, err := exec.Command(helm(t), "lint", "--strict", "--kube-version", kubeVersion, chartDir(), "-f", filepath.Join(chartDir(), p.file)).CombinedOutput()
		if err != nil {
			t.Errorf("helm lint --strict -f %s: %v\n%s", p.file, err, out)
		}
	}
}

// TestKubeconform validates every rendered object against the Kubernetes
// 1.35 JSON schemas, strictly (unknown fields are errors). The
// ServiceMonitor has no schema there: TestRolloutInvariants decodes it.
func TestKubeconform(t *testing.T) {
	kc := deploytest.Tool(t, "PARLEY_KUBECONFORM", "kubeconform")
	schemas := os.Getenv("PARLEY_K8S_SCHEMAS")
	if schemas == "" {
		deploytest.Missing(t, "PARLEY_K8S_SCHEMAS is not set (the directory deploy/kubeconform-schemas.sh writes)")
	}
	location := schemas + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
	for _, p := range profiles {
		cmd := exec.Command(kc, "-strict", "-summary", "-kubernetes-version", kubeVersion, "-schema-location", location, "-skip", "ServiceMonitor")
		cmd.Stdin = strings.NewReader(string(render(t, "parley", p.file, "gateway.ingress.enabled=true")))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("kubeconform (%s): %v\n%s", p.file, err, out)
		}
		t.Logf("%s: %s", p.file, strings.TrimSpace(string(out)))
	}
}

// kubeScoreIgnores are the kube-score checks the chart does not follow,
// with the reason.
var kubeScoreIgnores = []string{
	// The image is pinned by version tag or digest, so IfNotPresent pulls
	// the same bytes; Always would make every pod start depend on the
	// registry answering.
	"container-image-pull-policy",
	// Pods are spread over nodes and zones with topologySpreadConstraints,
	// which kube-score does not read, rather than anti-affinity (which
	// would leave a surge pod unschedulable on a small cluster).
	"deployment-has-host-podantiaffinity",
}

// TestKubeScore runs kube-score on each profile. CPU limits are not set on
// purpose (--ignore-container-cpu-limit): CFS throttling stalls a
// gateway's fan-out and heartbeats in bursts; requests schedule, and the
// HPA scales on CPU.
func TestKubeScore(t *testing.T) {
	ks := deploytest.Tool(t, "PARLEY_KUBE_SCORE", "kube-score")
	for _, p := range profiles {
		ignores := strings.Join(append(append([]string(nil), kubeScoreIgnores...), p.ignores...), ",")
		cmd := exec.Command(ks, "score", "--output-format", "ci", "--ignore-container-cpu-limit", "--ignore-test", ignores, "-")
		cmd.Stdin = strings.NewReader(string(render(t, "parley", p.file)))
		out, err := cmd.CombinedOutput()
		if err != nil {
			var bad []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, "[CRITICAL]") || strings.HasPrefix(l, "[WARNING]") {
					bad = append(bad, l)
				}
			}
			t.Errorf("kube-score (%s): %v\n%s", p.file, err, strings.Join(bad, "\n"))
		}
	}
}

// TestRolloutInvariants decodes each profile (as releases named "y" and
// "n", which YAML reads as booleans where unquoted) and checks what keeps
// a rollout from cutting clients or stalling: grace periods, preStop,
// probes, rollout pacing, disruption budgets, autoscaling, security.
func TestRolloutInvariants(t *testing.T) {
	for _, p := range profiles {
		for _, release := range []string{"y", "n"} {
			t.Run(p.file+"/"+release, func(t *testing.T) {
				m := decode(t, render(t, release, p.file))
				checkManifests(t, p.file, m)
				// Unquoted, y and n would be read as booleans (sigs.k8s.io/yaml
				// then writes "true").
				for _, d := range m.deployments {
					for _, l := range []map[string]string{d.Labels, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels} {
						if l["app.kubernetes.io/instance"] != release {
							t.Errorf("%s: instance label %q, want %q", d.Name, l["app.kubernetes.io/instance"], release)
						}
					}
				}
			})
		}
	}
}

func checkManifests(t *testing.T, profile string, m manifests) {
	if len(m.deployments) != 3 {
		t.Fatalf("%d Deployments, want gateway, processor and archiver", len(m.deployments))
	}
	for _, d := range m.deployments {
		role := d.Spec.Template.Labels["app.kubernetes.io/component"]
		spec := d.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", d.Name, len(spec.Containers))
		}
		c := spec.Containers[0]
		if c.Args[0] != role {
			t.Errorf("%s runs %q, not its role %q", d.Name, c.Args[0], role)
		}
		checkImage(t, d.Name, c.Image, profile == "values-ha.yaml")
		checkSecurity(t, d.Name, spec.SecurityContext, c.SecurityContext)
		checkProbes(t, d.Name, c)
		checkPacing(t, d)
		if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: selector %v does not select its pods", d.Name, d.Spec.Selector.MatchLabels)
		}
		if role == "gateway" {
			checkGatewayShutdown(t, d.Name, spec, c)
		}
		if role == "gateway" || role == "archiver" {
			checkTokenKey(t, d.Name, c, m)
		}
		if n := countPDBs(m, d); n != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", d.Name, n)
		}
	}
	for _, pdb := range m.pdbs {
		owners := 0
		for _, d := range m.deployments {
			if selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				owners++
			}
		}
		if owners != 1 {
			t.Errorf("PDB %s selects the pods of %d Deployments, want 1", pdb.Name, owners)
		}
		if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 {
			t.Errorf("PDB %s: want maxUnavailable ≥ 1 (minAvailable blocks node drains of single replicas)", pdb.Name)
		}
	}
	for _, h := range m.hpas {
		d := deployment(m, h.Spec.ScaleTargetRef.Name)
		switch {
		case d == nil:
			t.Errorf("HPA %s scales %s, which the chart does not render", h.Name, h.Spec.ScaleTargetRef.Name)
		case d.Spec.Replicas != nil:
			t.Errorf("%s sets replicas although HPA %s scales it: every upgrade would reset the count", d.Name, h.Name)
		}
		if h.Spec.Behavior == nil || h.Spec.Behavior.ScaleDown == nil || len(h.Spec.Behavior.ScaleDown.Policies) == 0 ||
			h.Spec.Behavior.ScaleDown.Policies[0].Value != 1 {
			t.Errorf("HPA %s must scale down one pod at a time", h.Name)
		}
	}
	for _, s := range m.services {
		if len(podsOf(m, s.Spec.Selector)) == 0 {
			t.Errorf("Service %s selects no pods", s.Name)
		}
	}
	for _, sm := range m.serviceMonitors {
		found := false
		for _, s := range m.services {
			if selects(sm.Spec.Selector.MatchLabels, s.Labels) && len(s.Spec.Ports) > 0 && s.Spec.Ports[0].Name == sm.Spec.Endpoints[0].Port {
				found = len(podsOf(m, s.Spec.Selector)) == 3
			}
		}
		if !found || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor %s does not scrape /metrics of every role through a Service", sm.Metadata.Name)
		}
	}
	checkMigrateHook(t, m)
}

func deployment(m manifests, name string) *appsv1.Deployment {
	for i := range m.deployments {
		if m.deployments[i].Name == name {
			return &m.deployments[i]
		}
	}
	return nil
}

func selects(selector, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

func podsOf(m manifests, selector map[string]string) []string {
	var names []string
	for _, d := range m.deployments {
		if selects(selector, d.Spec.Template.Labels) {
			names = append(names, d.Name)
		}
	}
	return names
}

func countPDBs(m manifests, d appsv1.Deployment) int {
	n := 0
	for _, pdb := range m.pdbs {
		if selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			n++
		}
	}
	return n
}

// checkImage refuses moving tags: every pod of a rollout must run the same
// build. The production profile pins a digest.
func checkImage(t *testing.T, name, image string, wantDigest bool) {
	t.Helper()
	repo, digest, hasDigest := strings.Cut(image, "@")
	switch {
	case hasDigest && !strings.HasPrefix(digest, "sha256:"):
		t.Errorf("%s: image %q: bad digest", name, image)
	case !hasDigest && wantDigest:
		t.Errorf("%s: image %q is not pinned by digest", name, image)
	case !hasDigest:
		i := strings.LastIndex(repo, ":")
		if i < 0 || strings.Contains(repo[i:], "/") || repo[i+1:] == "latest" {
			t.Errorf("%s: image %q has no version tag", name, image)
		}
	}
}

func checkSecurity(t *testing.T, name string, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	t.Helper()
	if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || pod.RunAsUser == nil || *pod.RunAsUser == 0 {
		t.Errorf("%s: pod must run as a non-root uid", name)
	}
	if c == nil || c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem ||
		c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation ||
		c.Capabilities == nil || len(c.Capabilities.Drop) != 1 || c.Capabilities.Drop[0] != "ALL" || len(c.Capabilities.Add) != 0 {
		t.Errorf("%s: container must have a read-only root, no privilege escalation and every capability dropped: %+v", name, c)
	}
}

// checkProbes: liveness and startup on /livez, readiness on /readyz,
// all on the port the process serves them on (--debug-addr).
func checkProbes(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	ops := ""
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--debug-addr="); ok {
			_, ops, _ = net.SplitHostPort(v)
		}
	}
	var opsPort int32
	for _, p := range c.Ports {
		if p.Name == "ops" {
			opsPort = p.ContainerPort
		}
	}
	if ops == "" || strconv.Itoa(int(opsPort)) != ops {
		t.Fatalf("%s: ops container port %d is not the --debug-addr port %q", name, opsPort, ops)
	}
	for what, want := range map[*corev1.Probe]string{c.StartupProbe: "/livez", c.LivenessProbe: "/livez", c.ReadinessProbe: "/readyz"} {
		if what == nil || what.HTTPGet == nil {
			t.Errorf("%s: a probe is missing or not an HTTP GET (want %s)", name, want)
			continue
		}
		port := what.HTTPGet.Port
		if what.HTTPGet.Path != want || (port.String() != "ops" && port.IntValue() != int(opsPort)) {
			t.Errorf("%s: probe GET %s on port %s, want %s on the ops port", name, what.HTTPGet.Path, port.String(), want)
		}
	}
	// A slow start (a processor loading its rooms) must not be killed
	// by liveness: the startup probe covers it.
	if c.StartupProbe != nil && c.StartupProbe.PeriodSeconds*c.StartupProbe.FailureThreshold < 60 {
		t.Errorf("%s: the startup probe gives up after less than a minute", name)
	}
}

// checkPacing: a rollout adds a pod before taking one away.
func checkPacing(t *testing.T, d appsv1.Deployment) {
	t.Helper()
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge == nil || ru.MaxSurge.IntValue() < 1 {
		t.Errorf("%s: want a rolling update with maxUnavailable 0 and maxSurge ≥ 1, got %+v", d.Name, d.Spec.Strategy)
	}
}

// checkGatewayShutdown: preStop sleeps while endpoints stop routing to the
// pod, then the gateway drains for --drain-time; the grace period covers
// both with a margin, or the kubelet kills the pod mid-drain and every
// remaining client is cut at once.
func checkGatewayShutdown(t *testing.T, name string, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	const margin = 5 * time.Second
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Fatalf("%s: no preStop sleep", name)
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	drain := time.Duration(-1)
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--drain-time="); ok {
			var err error
			if drain, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s: %s: %v", name, a, err)
			}
		}
	}
	if drain < 0 {
		t.Fatalf("%s: no --drain-time", name)
	}
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatalf("%s: no terminationGracePeriodSeconds", name)
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if grace < preStop+drain+margin {
		t.Errorf("%s: terminationGracePeriodSeconds %s < preStop %s + drain %s + margin %s", name, grace, preStop, drain, margin)
	}
}

func checkTokenKey(t *testing.T, name string, c corev1.Container, m manifests) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == "PARLEY_TOKEN_KEY" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			for _, s := range m.secrets {
				if s.Name == ref.Name && len(s.Data[ref.Key]) < 32 {
					t.Errorf("%s: token key in %s/%s is shorter than 32 bytes", name, ref.Name, ref.Key)
				}
			}
			return
		}
	}
	t.Errorf("%s: no PARLEY_TOKEN_KEY from a Secret", name)
}

func checkMigrateHook(t *testing.T, m manifests) {
	t.Helper()
	if len(m.jobs) != 1 {
		t.Fatalf("%d Jobs, want the migration hook", len(m.jobs))
	}
	j := m.jobs[0]
	if hook := j.Annotations["helm.sh/hook"]; hook != "pre-install,pre-upgrade" {
		t.Errorf("Job %s: hook %q, want pre-install,pre-upgrade (the roles refuse a keyspace with migrations pending)", j.Name, hook)
	}
	c := j.Spec.Template.Spec.Containers[0]
	if c.Args[0] != "migrate" {
		t.Errorf("Job %s runs %v", j.Name, c.Args)
	}
	checkSecurity(t, j.Name, j.Spec.Template.Spec.SecurityContext, c.SecurityContext)
	for _, d := range m.deployments {
		if d.Spec.Template.Spec.Containers[0].Image != c.Image {
			t.Errorf("Job %s runs %s, %s runs %s", j.Name, c.Image, d.Name, d.Spec.Template.Spec.Containers[0].Image)
		}
	}
}

// TestIngressTimeoutAboveHeartbeat: a proxy that allows less idle time
// than the server's heartbeat cuts every quiet WebSocket.
func TestIngressTimeoutAboveHeartbeat(t *testing.T) {
	for _, p := range profiles {
		m := decode(t, render(t, "parley", p.file, "gateway.ingress.enabled=true"))
		var heartbeat time.Duration
		for _, a := range deployment(m, "parley-gateway").Spec.Template.Spec.Containers[0].Args {
			if v, ok := strings.CutPrefix(a, "--ws-heartbeat="); ok {
				heartbeat, _ = time.ParseDuration(v)
			}
		}
		if len(m.ingresses) != 1 || heartbeat <= 0 {
			t.Fatalf("%s: %d ingresses, heartbeat %s", p.file, len(m.ingresses), heartbeat)
		}
		for _, a := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
			s, err := strconv.Atoi(m.ingresses[0].Annotations[a])
			if err != nil || time.Duration(s)*time.Second <= heartbeat {
				t.Errorf("%s: %s = %q, must exceed the heartbeat %s", p.file, a, m.ingresses[0].Annotations[a], heartbeat)
			}
		}
	}
}

// TestRefusesMovingTags: the chart fails rather than render a moving tag.
func TestRefusesMovingTags(t *testing.T) {
	for _, set := range []string{"image.tag=latest", "image.digest=latest"} {
		out, err := exec.Command(helm(t), "template", "parley", chartDir(), "--kube-version", kubeVersion, "--set", set).CombinedOutput()
		if err == nil {
			t.Errorf("--set %s rendered:\n%.300s", set, out)
		} else if !strings.Contains(string(out), "image.") {
			t.Errorf("--set %s failed without naming the value: %s", set, out)
		}
	}
}
