// Package deploytest finds what the deploy tests run: the repository root,
// parley binaries and the tools make installs (helm, kubeconform,
// kube-score, the Kubernetes JSON schemas). Something missing skips a test,
// except under CI=true or PARLEY_REQUIRE_DEPLOY_TOOLS=1 (what
// `make test-deploy` sets), where it fails it.
package deploytest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Root is the repository root (the parent of deploy/).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Missing skips t, or fails it where tools are required.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" || os.Getenv("PARLEY_REQUIRE_DEPLOY_TOOLS") == "1" {
		t.Fatal(msg + " (run the tests with `make test-deploy`, which installs it)")
	}
	t.Skip(msg + " (`make test-deploy` installs it)")
}

// Tool is the path of a tool named by the environment variable env (set by
// make), else found on PATH.
func Tool(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "%s=%s: %v", env, p, err)
		}
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found (set %s or put it on PATH)", name, env)
	}
	return p
}

// Parley is a parley binary: $env when set (make passes the one it
// built), else one built into a temporary directory with extra
// environment (e.g. CGO_ENABLED=0).
func Parley(t testing.TB, env string, buildEnv ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "parley")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/parley")
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), buildEnv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/parley: %v\n%s", err, b)
	}
	return out
}

// FreePort is a loopback TCP port nothing listens on right now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// DevFlags are the flags of a `parley dev` on free loopback ports and
// dataDir, with its ops listener at the returned address.
func DevFlags(t testing.TB, dataDir string) (flags []string, opsAddr string) {
	opsAddr = "127.0.0.1:" + FreePort(t)
	return []string{"dev", "--data-dir", dataDir, "--log-level", "warn",
		"--http-addr", "127.0.0.1:" + FreePort(t), "--nats-port", FreePort(t), "--nats-http-port", "0",
		"--debug-addr", opsAddr}, opsAddr
}

// WaitOK polls url until it answers 200, failing t after timeout or once
// exited is closed (the process died).
func WaitOK(t testing.TB, url string, timeout time.Duration, exited <-chan struct{}) {
	t.Helper()
	WaitOKWith(t, http.DefaultClient, url, "", timeout, exited)
}

// WaitOKWith is WaitOK through client, sending the bearer token when one
// is given.
func WaitOKWith(t testing.TB, client *http.Client, url, token string, timeout time.Duration, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s: the process exited before answering", url)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no 200 within %s (last: %v)", url, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Start starts cmd with its output captured and returns a channel closed
// when it exits, and stop: SIGTERM, then SIGKILL (and a test error) if it
// has not exited within a minute. stop runs when the test ends too; the
// output is logged if the test failed.
func Start(t testing.TB, cmd *exec.Cmd) (exited <-chan struct{}, stop func()) {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop within a minute of SIGTERM", cmd.Path)
		}
		if t.Failed() {
			t.Logf("%s:\n%s", strings.Join(cmd.Args, " "), out.String())
		}
	}
	t.Cleanup(stop)
	return done, stop
}

// Stderr is what a command that failed with err wrote to its standard
// error, when exec captured it.
func Stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
