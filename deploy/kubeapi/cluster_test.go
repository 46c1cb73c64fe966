// Package kubeapi applies the Parley chart to a real Kubernetes API server:
// Debian's etcd and kube-apiserver (built by build.sh, as `make
// kube-tools` does, into PARLEY_CACHE) on loopback ports, with an admin
// token and a self-signed serving certificate made by the test. There is
// no controller manager and no kubelet: objects are stored, defaulted and
// validated as on a real cluster, but no pod ever runs.
//
// Invariants checked: every profile passes server-side dry-run apply and
// installs with helm; what the chart renders survives the server's
// defaulting unchanged; the server refuses invalid objects.
package kubeapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/deploy/internal/deploytest"
)

// cluster is a running etcd and kube-apiserver, and the clients that talk
// to it with an admin kubeconfig.
type cluster struct {
	kubeconfig, kubectl, helm string
	// home keeps helm's and kubectl's caches and config out of $HOME.
	home string
}

// startCluster starts etcd and kube-apiserver on free loopback ports and
// waits for /readyz. Both stop when the test ends (the API server first).
func startCluster(t *testing.T) *cluster {
	t.Helper()
	apiserver := deploytest.Tool(t, "PARLEY_KUBE_APISERVER", "kube-apiserver")
	etcd := deploytest.Tool(t, "PARLEY_ETCD", "etcd")
	c := &cluster{
		kubectl: deploytest.Tool(t, "PARLEY_KUBECTL", "kubectl"),
		helm:    deploytest.Tool(t, "PARLEY_HELM", "helm"),
	}
	dir := t.TempDir()
	c.home = filepath.Join(dir, "home")

	clientURL := "http://127.0.0.1:" + deploytest.FreePort(t)
	peerURL := "http://127.0.0.1:" + deploytest.FreePort(t)
	etcdExited, _ := deploytest.Start(t, exec.Command(etcd, "--name", "parley-test", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "parley-test="+peerURL, "--log-level", "warn"))
	deploytest.WaitOK(t, clientURL+"/health", time.Minute, etcdExited)

	certPEM, keyPEM := selfSigned(t)
	saKey := pemKey(t, newKey(t))
	token := randomHex(t)
	files := map[string][]byte{
		"serving.crt": certPEM, "serving.key": keyPEM, "sa.key": saKey,
		// token,user,uid,"groups": system:masters passes every RBAC check.
		"tokens.csv": []byte(token + ",parley-admin,parley-admin,\"system:masters\"\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	port := deploytest.FreePort(t)
	server := "https://127.0.0.1:" + port
	apiExited, _ := deploytest.Start(t, exec.Command(apiserver,
		"--etcd-servers", clientURL,
		"--bind-address", "127.0.0.1", "--secure-port", port,
		// What the `kubernetes` Service's endpoints would point pods at:
		// a documentation address, since there are no pods and an
		// Endpoints address may not be loopback.
		"--advertise-address", "192.0.2.1",
		"--cert-dir", filepath.Join(dir, "certs"),
		"--tls-cert-file", filepath.Join(dir, "serving.crt"), "--tls-private-key-file", filepath.Join(dir, "serving.key"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range", "10.96.0.0/16",
	))
	waitReady(t, server+"/readyz", certPEM, token, apiExited)

	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "` + server + `", certificate-authority: "` + filepath.Join(dir, "serving.crt") + `"}
users:
- name: admin
  user: {token: "` + token + `"}
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`
	if err := os.WriteFile(c.kubeconfig, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// run runs kubectl or helm against the cluster, with stdin when given.
func (c *cluster) run(tool, stdin string, args ...string) ([]byte, error) {
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "HOME="+c.home,
		"HELM_CACHE_HOME="+filepath.Join(c.home, "helm-cache"),
		"HELM_CONFIG_HOME="+filepath.Join(c.home, "helm-config"),
		"HELM_DATA_HOME="+filepath.Join(c.home, "helm-data"))
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd.CombinedOutput()
}

// must is run that fails the test on an error.
func (c *cluster) must(t *testing.T, tool, stdin string, args ...string) []byte {
	t.Helper()
	out, err := c.run(tool, stdin, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), err, out)
	}
	return out
}

// waitReady polls the API server's /readyz (which needs etcd and every
// post-start hook, RBAC bootstrap included) until it answers 200.
func waitReady(t *testing.T, url string, caPEM []byte, token string, exited <-chan struct{}) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	deploytest.WaitOKWith(t, client, url, token, 3*time.Minute, exited)
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// selfSigned is a serving certificate for 127.0.0.1 that is its own CA
// (the kubeconfig trusts exactly it).
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pemKey(t, k)
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
