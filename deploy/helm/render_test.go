// Package helm holds the tests of the Parley chart (deploy/helm/parley):
// it lints and renders in every profile, the output is valid against the
// Kubernetes 1.35 schemas and passes kube-score, and, decoded into typed
// k8s.io/api objects, keeps the rollout invariants the chart promises.
package helm

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/parley-chat/parley/deploy/internal/deploytest"
)

// kubeVersion is the Kubernetes version the chart is rendered and
// validated for.
const kubeVersion = "1.35.0"

// profile is a values file of the chart and what kube-score checks it
// ignores on top of the chart-wide ones (kubeScoreIgnores), and why.
type profile struct {
	file    string
	ignores []string
}

var profiles = []profile{
	{file: "values.yaml"},
	// One of each role by design.
	{file: "values-dev.yaml", ignores: []string{"deployment-replicas"}},
	// The NATS policy selects the pods of the NATS release, not of this chart.
	{file: "values-ha.yaml", ignores: []string{"networkpolicy-targets-pod"}},
}

func chartDir() string { return filepath.Join(deploytest.Root(), "deploy", "helm", "parley") }

func helm(t *testing.T) string { return deploytest.Tool(t, "PARLEY_HELM", "helm") }

// render runs helm template for a values file (and --set pairs) as
// release name.
func render(t *testing.T, release, values string, set ...string) []byte {
	t.Helper()
	args := []string{"template", release, chartDir(), "--kube-version", kubeVersion, "-f", filepath.Join(chartDir(), values)}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helm(t), args...).Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, deploytest.Stderr(err))
	}
	return out
}

// manifests is a rendered chart decoded into typed objects. Decoding is
// strict: an unknown field, or a label value that YAML reads as a boolean
// or number, is an error.
type manifests struct {
	deployments     []appsv1.Deployment
	pdbs            []policyv1.PodDisruptionBudget
	hpas            []autoscalingv2.HorizontalPodAutoscaler
	jobs            []batchv1.Job
	services        []corev1.Service
	secrets         []corev1.Secret
	netpols         []networkingv1.NetworkPolicy
	ingresses       []networkingv1.Ingress
	serviceMonitors []serviceMonitor
}

// serviceMonitor is the part of the Prometheus operator's CRD the chart
// uses (no schema for it is among Kubernetes' own).
type serviceMonitor struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"endpoints"`
	} `json:"spec"`
}

func decode(t *testing.T, out []byte) manifests {
	t.Helper()
	var m manifests
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		var head struct{ Kind string }
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		var err error
		switch head.Kind {
		case "":
			continue
		case "Deployment":
			err = add(&m.deployments, doc)
		case "PodDisruptionBudget":
			err = add(&m.pdbs, doc)
		case "HorizontalPodAutoscaler":
			err = add(&m.hpas, doc)
		case "Job":
			err = add(&m.jobs, doc)
		case "Service":
			err = add(&m.services, doc)
		case "Secret":
			err = add(&m.secrets, doc)
		case "NetworkPolicy":
			err = add(&m.netpols, doc)
		case "Ingress":
			err = add(&m.ingresses, doc)
		case "ServiceMonitor":
			// Not strict: only the fields the tests read are declared.
			var sm serviceMonitor
			err = yaml.Unmarshal(doc, &sm)
			m.serviceMonitors = append(m.serviceMonitors, sm)
		default:
			t.Fatalf("the chart renders a %s the tests do not know:\n%s", head.Kind, doc)
		}
		if err != nil {
			t.Fatalf("%s: %v in\n%s", head.Kind, err, doc)
		}
	}
	return m
}

// add decodes doc strictly into a new element of list.
func add[T any](list *[]T, doc []byte) error {
	var v T
	err := yaml.UnmarshalStrict(doc, &v)
	*list = append(*list, v)
	return err
}
