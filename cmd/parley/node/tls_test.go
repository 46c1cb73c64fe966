package node_test

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-chat/parley/cmd/parley/node"
	"github.com/parley-chat/parley/gateway"
	"github.com/parley-chat/parley/internal/tlsreload/tlstest"
	"github.com/parley-chat/parley/pkg/client"
)

// A gateway serving TLS: clients chat over wss:// and call the API over
// https:// trusting the test CA, and nothing else gets in. A certificate
// written over the files is served to new connections without a restart,
// while connections made before go on.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := ca.WriteServerCert(t, certFile, keyFile)
	cfg := testConfig(t, dir)
	cfg.Gateway.Transport = "" // TLS picks the goroutine transport
	cfg.Gateway.TLS = gateway.TLSConfig{CertFile: certFile, KeyFile: keyFile, CheckInterval: 100 * time.Millisecond}
	tn := tlsNode{startNode(t, cfg), ca.Pool()}

	var room struct{ ID string }
	code, serial := tn.call(t, "POST", "/api/v1/rooms", tn.token(t, "alice"), map[string]any{"name": "tls", "members": []string{"bob"}}, &room)
	if code != http.StatusCreated || serial.Cmp(first) != 0 {
		t.Fatalf("create room over https: HTTP %d, certificate %x; want 201, %x", code, serial, first)
	}
	alice, serial := tn.dial(t, "alice")
	if serial.Cmp(first) != 0 {
		t.Fatalf("wss:// was shown certificate %x, want %x", serial, first)
	}
	subscribe(t, alice, room.ID)
	chat(t, alice, room.ID, "before-rotation", alice)

	ctx := ctxT(t, 10*time.Second)
	if c, err := client.Dial(ctx, wsURL(tn.n), client.Options{}); err == nil {
		c.Close()
		t.Fatal("a plain ws:// handshake succeeded on a TLS gateway")
	} else {
		t.Logf("ws:// to a TLS gateway: %v", err)
	}
	if c, err := client.Dial(ctx, tn.wssURL(), client.Options{}); err == nil {
		c.Close()
		t.Fatal("a client that does not trust the test CA connected")
	}

	second := ca.WriteServerCert(t, certFile, keyFile)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, serial = tn.call(t, "GET", "/healthz", "", nil, nil); serial.Cmp(second) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still served certificate %x 10s after rotating to %x", serial, second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bob, serial := tn.dial(t, "bob")
	if serial.Cmp(second) != 0 {
		t.Fatalf("wss:// after the rotation was shown certificate %x, want %x", serial, second)
	}
	subscribe(t, bob, room.ID)
	chat(t, alice, room.ID, "alice-after-rotation", alice, bob)
	chat(t, bob, room.ID, "bob-after-rotation", alice, bob)
}

// tlsNode is a node serving TLS with a certificate of a test CA, and the
// CA its clients trust.
type tlsNode struct {
	n     *node.Node
	roots *x509.CertPool
}

func (tn tlsNode) wssURL() string { return "wss://" + tn.n.HTTPAddr() + "/ws" }

// call calls the API over https, on a connection of its own, and returns
// the status and the serial of the certificate the gateway showed.
func (tn tlsNode) call(t *testing.T, method, path, token string, body, out any) (int, *big.Int) {
	t.Helper()
	hc := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tn.roots}, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
	resp := callAPI(t, hc, "https://"+tn.n.HTTPAddr(), method, path, token, body, out)
	return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber
}

func (tn tlsNode) token(t *testing.T, user string) string {
	t.Helper()
	var r struct{ Token string }
	if code, _ := tn.call(t, "POST", "/api/v1/dev/tokens", "", map[string]string{"user": user}, &r); code != http.StatusOK {
		t.Fatalf("dev token for %s over https: HTTP %d", user, code)
	}
	return r.Token
}

// dial connects user over wss:// and returns the client, authenticated,
// and the serial of the certificate the gateway showed it.
func (tn tlsNode) dial(t *testing.T, user string) (*client.Client, *big.Int) {
	t.Helper()
	var serial *big.Int
	conf := &tls.Config{RootCAs: tn.roots, VerifyConnection: func(cs tls.ConnectionState) error {
		serial = cs.PeerCertificates[0].SerialNumber
		return nil
	}}
	c, err := client.Dial(ctxT(t, 10*time.Second), tn.wssURL(), client.Options{Token: tn.token(t, user), TLSConfig: conf})
	if err != nil {
		t.Fatalf("dial wss:// as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, serial
}

func subscribe(t *testing.T, c *client.Client, room string) {
	t.Helper()
	if _, err := c.Subscribe(ctxT(t, 10*time.Second), room, nil); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
}

// chat sends a message from one client and checks it is acknowledged and
// reaches every client in to.
func chat(t *testing.T, from *client.Client, room, id string, to ...*client.Client) {
	t.Helper()
	ack, err := from.Send(ctxT(t, 10*time.Second), room, id, "hello over TLS")
	if err != nil {
		t.Fatalf("send %q: %v", id, err)
	}
	for i, c := range to {
		if m := collect(t, c, 1, 10*time.Second)[0]; m.Seq != ack.Seq || m.ClientMsgId != id {
			t.Fatalf("client %d got seq %d %q, want seq %d %q", i, m.Seq, m.ClientMsgId, ack.Seq, id)
		}
	}
}
