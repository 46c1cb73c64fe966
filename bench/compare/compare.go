// Package compare puts bench runs of the same scenarios against two
// deployments side by side. `parley-bench compare DIR [BASE OTHER]` reads
// the result folders DIR/<label>/<scenario>-<date>/ of two labels (by
// default DIR's two subfolders, in name order) and writes
// DIR/comparison.md: for each scenario both runs' findings and their
// ratios OTHER ÷ BASE, led by the key figures (memory per connection,
// fan-out throughput).
package compare

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/parley-chat/parley/bench/report"
	"github.com/parley-chat/parley/bench/scenario"
)

// Command is the argument that makes `parley-bench` compare results.
const Command = "compare"

// keyFigures lead the comparison: scenario, then figure name.
var keyFigures = [][2]string{
	{"connect", "Server RSS per connection"},
	{"connect", "Server Go heap+stacks per connection"},
	{"connect", "Connect rate"},
	{"connect", "Server CPU while holding"},
	{"fanout", "Fan-out deliveries/s"},
	{"fanout", "Achieved ÷ offered"},
	{"fanout", "Send→deliver p50"},
	{"fanout", "Send→deliver p99"},
	{"fanout", "Fan-out time p50"},
	{"fanout", "Server CPU-seconds per million deliveries"},
}

// run is one result folder.
type run struct {
	dir      string // relative to the compared folder
	result   *report.Result
	findings scenario.Findings
}

// side is one label's runs, by scenario.
type side struct {
	root  string // the compared folder
	label string
	runs  map[string]*run
	order []string // scenarios in the order they ran
}

// Main runs `parley-bench compare` with args (those after "compare").
func Main(args []string) error {
	fs := flag.NewFlagSet("parley-bench compare", flag.ContinueOnError)
	out := fs.String("out", "", "file to write (default: DIR/comparison.md)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: parley-bench compare [--out FILE] DIR [BASE OTHER]\n\n"+
			"Compares the result folders DIR/BASE/<scenario>-<date>/ with DIR/OTHER/<scenario>-<date>/ (default: DIR's two\n"+
			"subfolders in name order) and writes the figures of both with ratios OTHER ÷ BASE.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 && fs.NArg() != 3 {
		fs.Usage()
		return errors.New("bench compare: want DIR, or DIR BASE OTHER")
	}
	dir := fs.Arg(0)
	labels := fs.Args()[1:]
	if len(labels) == 0 {
		var err error
		if labels, err = subdirs(dir); err != nil {
			return err
		}
		if len(labels) != 2 {
			return fmt.Errorf("bench compare: %s has %d subfolders %q; name the two to compare", dir, len(labels), labels)
		}
	}
	var sides [2]*side
	for i, l := range labels {
		s, err := load(dir, l)
		if err != nil {
			return err
		}
		sides[i] = s
	}
	path := *out
	if path == "" {
		path = filepath.Join(dir, "comparison.md")
	}
	if err := os.WriteFile(path, []byte(markdown(sides[0], sides[1])), 0o644); err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}

func subdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// load reads every result folder under dir/label; of several runs of one
// scenario the latest counts.
func load(dir, label string) (*side, error) {
	results, err := filepath.Glob(filepath.Join(dir, label, "*", "result.json"))
	if err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("bench compare: no result folders in %s", filepath.Join(dir, label))
	}
	slices.Sort(results) // <scenario>-<date>: the latest last
	s := &side{root: dir, label: label, runs: map[string]*run{}}
	for _, path := range results {
		r, err := report.Load(path)
		if err != nil {
			return nil, err
		}
		rdir := filepath.Dir(path)
		var f scenario.Findings
		if b, err := os.ReadFile(filepath.Join(rdir, "findings.json")); err == nil {
			if err := json.Unmarshal(b, &f); err != nil {
				return nil, fmt.Errorf("bench compare: %s: %w", rdir, err)
			}
		}
		rel, _ := filepath.Rel(dir, rdir)
		if _, seen := s.runs[r.Scenario]; !seen {
			s.order = append(s.order, r.Scenario)
		}
		s.runs[r.Scenario] = &run{dir: rel, result: r, findings: f}
	}
	slices.SortStableFunc(s.order, func(a, b string) int { return s.runs[a].result.Start.Compare(s.runs[b].result.Start) })
	return s, nil
}

func (r *run) figure(name string) (scenario.Figure, bool) {
	if r == nil {
		return scenario.Figure{}, false
	}
	i := slices.IndexFunc(r.findings.Figures, func(f scenario.Figure) bool { return f.Name == name })
	if i < 0 {
		return scenario.Figure{}, false
	}
	return r.findings.Figures[i], true
}

// markdown renders the comparison of other against base.
func markdown(base, other *side) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Bench comparison: %s and %s\n\n", base.label, other.label)
	p("Ratios are %[2]s ÷ %[1]s: above 1, %[2]s used more memory or CPU, took longer, or delivered more.\n\n", base.label, other.label)

	p("## Deployments\n\n| | %s | %s |\n| --- | --- | --- |\n", base.label, other.label)
	row := func(name string, f func(s *side) string) {
		p("| %s | %s | %s |\n", name, cell(f(base)), cell(f(other)))
	}
	row("Server processes", func(s *side) string {
		return describe(s, func(r *report.Result) string { return report.DescribeServers(r.Servers) })
	})
	row("Machine", func(s *side) string {
		return describe(s, func(r *report.Result) string {
			m := r.Machine
			return fmt.Sprintf("%s, %d cores, %s", m.Hostname, m.Cores, m.Kernel)
		})
	})
	row("Runs", func(s *side) string {
		var links []string
		for _, sc := range s.order {
			r := s.runs[sc]
			links = append(links, fmt.Sprintf("[%s](%s/summary.md) (%s)", sc, r.dir, r.result.Start.UTC().Format("15:04:05 UTC")))
		}
		if _, err := os.Stat(filepath.Join(s.root, s.label, "deployment.md")); err == nil {
			links = append(links, fmt.Sprintf("[deployment](%s/deployment.md)", s.label))
		}
		return strings.Join(links, ", ")
	})

	p("\n## Key figures\n\n| scenario | figure | %s | %s | ratio |\n| --- | --- | --: | --: | --: |\n", base.label, other.label)
	for _, k := range keyFigures {
		a, aok := base.runs[k[0]].figure(k[1])
		c, cok := other.runs[k[0]].figure(k[1])
		if aok || cok {
			p("| %s | %s | %s | %s | %s |\n", k[0], k[1], text(a, aok), text(c, cok), ratio(a, c, aok && cok))
		}
	}

	for _, sc := range union(base.order, other.order) {
		x, y := base.runs[sc], other.runs[sc]
		p("\n## %s\n\n| figure | %s | %s | ratio |\n| --- | --: | --: | --: |\n", sc, base.label, other.label)
		p("| delivery verification | %s | %s | |\n", verified(x), verified(y))
		var names []string
		for _, r := range []*run{x, y} {
			if r == nil {
				continue
			}
			for _, f := range r.findings.Figures {
				if !slices.Contains(names, f.Name) {
					names = append(names, f.Name)
				}
			}
		}
		for _, n := range names {
			a, aok := x.figure(n)
			c, cok := y.figure(n)
			p("| %s | %s | %s | %s |\n", cell(n), text(a, aok), text(c, cok), ratio(a, c, aok && cok))
		}
	}
	return b.String()
}

// describe applies f to the side's runs, joining distinct answers.
func describe(s *side, f func(*report.Result) string) string {
	var out []string
	for _, sc := range s.order {
		if v := f(s.runs[sc].result); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return strings.Join(out, "; ")
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func text(f scenario.Figure, ok bool) string {
	if !ok {
		return "–"
	}
	return f.Text()
}

func ratio(a, b scenario.Figure, ok bool) string {
	if !ok || a.Value == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", b.Value/a.Value)
}

func verified(r *run) string {
	if r == nil {
		return "not run"
	}
	v := r.result.Run.Verify
	switch {
	case v == nil:
		return "no messages"
	case v.Clean():
		return "clean"
	}
	return fmt.Sprintf("lost %d, duplicated %d, reordered %d, stored twice %d, gaps %d", v.Lost, v.Duplicated, v.Reordered, v.StoredTwice, v.Gaps)
}

func cell(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }
