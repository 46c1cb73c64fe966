// Package runbook tests what deploy/RUNBOOK.md, the dashboard and the
// alerts claim: the metrics table is what the roles export, every series a
// panel or an alert uses is documented, every alert and panel links a
// section that exists, and the backup and restore procedure brings every
// acknowledged message back.
package runbook

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/parley-chat/parley/deploy/internal/deploytest"
)

func deployFile(name string) string { return filepath.Join(deploytest.Root(), "deploy", name) }

// documented reads the RUNBOOK's metrics tables: the series Parley
// exports, and those other exporters provide.
func documented(t *testing.T) (parley, external map[string]bool) {
	t.Helper()
	data, err := os.ReadFile(deployFile("RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	parley, external = map[string]bool{}, map[string]bool{}
	var into map[string]bool
	row := regexp.MustCompile("^\\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \\|")
	for _, line := range strings.Split(string(data), "\n") {
		switch line {
		case "### Exported by Parley":
			into = parley
		case "### From other exporters":
			into = external
		}
		if strings.HasPrefix(line, "## ") {
			into = nil
		}
		if m := row.FindStringSubmatch(line); m != nil && into != nil {
			into[m[1]] = true
		}
	}
	if len(parley) == 0 || len(external) == 0 {
		t.Fatalf("RUNBOOK.md: no metrics tables found (%d, %d rows)", len(parley), len(external))
	}
	return parley, external
}

// startDev runs `parley dev` on dataDir and returns its ops and HTTP
// addresses; it is stopped (SIGTERM) when the test ends.
func startDev(t *testing.T, bin, dataDir string) (ops, http string) {
	t.Helper()
	args, ops := deploytest.DevFlags(t, dataDir)
	for i, a := range args {
		if a == "--http-addr" {
			http = args[i+1]
		}
	}
	deploytest.Start(t, exec.Command(bin, args...))
	deploytest.WaitOK(t, "http://"+ops+"/readyz", 90*time.Second, nil)
	return ops, http
}

// exported scrapes /metrics and returns the series names.
func exported(t *testing.T, ops string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		// A histogram's or summary's samples belong to its series.
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			name = strings.TrimSuffix(name, suffix)
		}
		names[name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// openWebSocket opens one WebSocket to the gateway (no authentication
// needed to count as a connection) and keeps it until the test ends.
func openWebSocket(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: parley.v1.json\r\n\r\n", addr)
	status, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("WebSocket handshake: %q, %v", status, err)
	}
}

// TestDocumentedSeriesAreExported scrapes a running `parley dev` (every
// role in one process) with a client connected, and compares with the
// RUNBOOK's table: every documented series is exported, and every
// parley_* series exported is documented.
func TestDocumentedSeriesAreExported(t *testing.T) {
	bin := deploytest.Parley(t, "PARLEY_BIN")
	ops, httpAddr := startDev(t, bin, t.TempDir())
	openWebSocket(t, httpAddr)
	var got map[string]bool
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got = exported(t, ops); got["parley_gateway_bytes_per_connection"] || time.Now().After(deadline) {
			break
		}
	}
	doc, _ := documented(t)
	for name := range doc {
		if !got[name] {
			t.Errorf("RUNBOOK.md documents %s, which no role exports", name)
		}
	}
	for name := range got {
		if strings.HasPrefix(name, "parley_") && !doc[name] {
			t.Errorf("%s is exported but not in RUNBOOK.md's metrics table", name)
		}
	}
}

// exprSeries returns the series names a PromQL expression reads: what is
// left once strings, label matchers, ranges, grouping clauses, function
// calls and operators are removed.
func exprSeries(expr string) []string {
	for _, re := range []string{`"(?:[^"\\]|\\.)*"`, `\{[^}]*\}`, `\[[^\]]*\]`, `\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`} {
		expr = regexp.MustCompile(re).ReplaceAllString(expr, " ")
	}
	var names []string
	for _, m := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`).FindAllStringSubmatch(expr, -1) {
		switch {
		case m[1] != "": // a function or aggregation
		case map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true}[m[0]]:
		default:
			names = append(names, m[0])
		}
	}
	return names
}

type panelJSON struct {
	Title   string                  `json:"title"`
	Links   []struct{ URL string }  `json:"links"`
	Targets []struct{ Expr string } `json:"targets"`
	Panels  []panelJSON             `json:"panels"` // inside rows
}

func dashboardPanels(t *testing.T) []panelJSON {
	t.Helper()
	data, err := os.ReadFile(deployFile("dashboards/parley.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ Panels []panelJSON }
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	var flat []panelJSON
	var walk func([]panelJSON)
	walk = func(ps []panelJSON) {
		for _, p := range ps {
			flat = append(flat, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return flat
}

type ruleYAML struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	Annotations map[string]string `json:"annotations"`
}

func alertRules(t *testing.T) []ruleYAML {
	t.Helper()
	data, err := os.ReadFile(deployFile("alerts/parley-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Kind string
		Spec struct {
			Groups []struct {
				Name  string
				Rules []ruleYAML
			}
		}
	}
	if err := yaml.Unmarshal(data, &pr); err != nil {
		t.Fatal(err)
	}
	var rules []ruleYAML
	for _, g := range pr.Spec.Groups {
		rules = append(rules, g.Rules...)
	}
	if pr.Kind != "PrometheusRule" || len(rules) == 0 {
		t.Fatalf("alerts/parley-rules.yaml: kind %q, %d rules", pr.Kind, len(rules))
	}
	return rules
}

// TestPanelsAndAlertsUseDocumentedSeries: a panel or an alert on a series
// nothing exports shows nothing and never fires.
func TestPanelsAndAlertsUseDocumentedSeries(t *testing.T) {
	parley, external := documented(t)
	check := func(where, expr string) {
		names := exprSeries(expr)
		if len(names) == 0 {
			t.Errorf("%s: no series found in %q", where, expr)
		}
		for _, n := range names {
			if !parley[n] && !external[n] {
				t.Errorf("%s uses %s, which RUNBOOK.md does not document", where, n)
			}
		}
	}
	for _, p := range dashboardPanels(t) {
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, r := range alertRules(t) {
		check("alert "+r.Alert, r.Expr)
	}
}

// TestPanelsAndAlertsLinkRunbook: every alert's runbook_url and every
// panel's link points at a heading of RUNBOOK.md.
func TestPanelsAndAlertsLinkRunbook(t *testing.T) {
	data, err := os.ReadFile(deployFile("RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			anchors[githubAnchor(strings.TrimLeft(line, "# "))] = true
		}
	}
	const base = "https://github.com/parley-chat/parley/blob/main/deploy/RUNBOOK.md#"
	check := func(where, url string) {
		anchor, ok := strings.CutPrefix(url, base)
		if !ok || !anchors[anchor] {
			t.Errorf("%s links %q, not a section of deploy/RUNBOOK.md (sections: %v)", where, url, keys(anchors))
		}
	}
	for _, p := range dashboardPanels(t) {
		if len(p.Links) == 0 {
			t.Errorf("panel %s links no runbook section", p.Title)
		}
		for _, l := range p.Links {
			check("panel "+p.Title, l.URL)
		}
	}
	for _, r := range alertRules(t) {
		check("alert "+r.Alert, r.Annotations["runbook_url"])
	}
}

// githubAnchor is the fragment GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
