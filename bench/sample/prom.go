package sample

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// PromSample is one sample of a Prometheus text exposition.
type PromSample struct {
	Name   string
	Labels map[string]string // nil when there are none
	Value  float64
}

// ParsePromText parses the Prometheus text exposition format (version
// 0.0.4): one sample per line as name{label="value",…} value [timestamp],
// with # comments, HELP and TYPE lines skipped. Timestamps are ignored.
func ParsePromText(r io.Reader) ([]PromSample, error) {
	var out []PromSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parsePromLine(line string) (PromSample, error) {
	var s PromSample
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	s.Name, line = line[:end], line[end:]
	if line[0] == '{' {
		var err error
		if s.Labels, line, err = parseLabels(line[1:]); err != nil {
			return s, err
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("want a value and optional timestamp after %s, got %q", s.Name, line)
	}
	v, err := strconv.ParseFloat(fields[0], 64) // also takes NaN, +Inf, -Inf
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

// parseLabels parses `a="x",b="y"}` (a trailing comma is allowed) and
// returns the rest of the line after the '}'.
func parseLabels(line string) (map[string]string, string, error) {
	labels := make(map[string]string)
	for {
		line = strings.TrimLeft(line, " \t")
		if strings.HasPrefix(line, "}") {
			if len(labels) == 0 {
				labels = nil
			}
			return labels, line[1:], nil
		}
		name, rest, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(strings.TrimLeft(rest, " \t"), `"`) {
			return nil, "", fmt.Errorf("bad label at %q", line)
		}
		rest = strings.TrimLeft(rest, " \t")[1:]
		var val strings.Builder
		for {
			i := strings.IndexAny(rest, `\"`)
			if i < 0 {
				return nil, "", fmt.Errorf("unterminated value of label %s", name)
			}
			val.WriteString(rest[:i])
			if rest[i] == '"' {
				rest = rest[i+1:]
				break
			}
			if i+1 == len(rest) {
				return nil, "", fmt.Errorf("dangling escape in label %s", name)
			}
			switch c := rest[i+1]; c {
			case 'n':
				val.WriteByte('\n')
			default: // \\ and \"
				val.WriteByte(c)
			}
			rest = rest[i+2:]
		}
		labels[strings.TrimSpace(name)] = val.String()
		line = strings.TrimLeft(rest, " \t")
		line = strings.TrimPrefix(line, ",")
	}
}

// ScrapeProm fetches and parses a Prometheus text endpoint.
func ScrapeProm(ctx context.Context, client *http.Client, url string) ([]PromSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return ParsePromText(resp.Body)
}
