package report

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// ServerProcess is a sampled server process and how it was started.
type ServerProcess struct {
	PID     int      `json:"pid"`
	Command []string `json:"command,omitempty"` // empty if it could not be read
}

// Flag returns the value of a flag on the command line, as the Go flag
// package reads it (-name v, --name v, -name=v, --name=v), and whether it
// is there. The last occurrence wins.
func (p ServerProcess) Flag(name string) (string, bool) {
	val, found := "", false
	for i := 1; i < len(p.Command) && p.Command[i] != "--"; i++ {
		if v, next, ok := flagAt(p.Command, i, name); ok {
			val, found = v, true
			if next {
				i++
			}
		}
	}
	return val, found
}

// flagAt reports whether args[i] is flag name with a value: inline after
// "=", or the next argument (next).
func flagAt(args []string, i int, name string) (val string, next, ok bool) {
	bare := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
	switch {
	case bare == args[i]:
		return "", false, false
	case bare == name && i+1 < len(args):
		return args[i+1], true, true
	case strings.HasPrefix(bare, name+"="):
		return bare[len(name)+1:], false, true
	}
	return "", false, false
}

// Role is the program and subcommand, as "parley gateway": the command's
// base name and its first argument when that is not a flag.
func (p ServerProcess) Role() string {
	if len(p.Command) == 0 {
		return "?"
	}
	role := filepath.Base(p.Command[0])
	if len(p.Command) > 1 && !strings.HasPrefix(p.Command[1], "-") {
		role += " " + p.Command[1]
	}
	return role
}

// Transport is the gateways' --ws-transport: one value, several joined
// by "+" when the processes differ, or "server default" where it is not
// set.
func Transport(ps []ServerProcess) string {
	var seen []string
	for _, p := range ps {
		t, ok := p.Flag("ws-transport")
		if !ok {
			t = "server default"
		}
		if !slices.Contains(seen, t) {
			seen = append(seen, t)
		}
	}
	return strings.Join(seen, "+")
}

// DescribeServers says in one line how many server processes were sampled,
// what they run and with which WebSocket transport.
func DescribeServers(ps []ServerProcess) string {
	if len(ps) == 0 {
		return "none sampled"
	}
	var roles []string
	count := map[string]int{}
	pids := make([]string, len(ps))
	for i, p := range ps {
		r := p.Role()
		if count[r] == 0 {
			roles = append(roles, r)
		}
		count[r]++
		pids[i] = fmt.Sprint(p.PID)
	}
	kinds := make([]string, len(roles))
	for i, r := range roles {
		kinds[i] = fmt.Sprintf("%d × `%s`", count[r], r)
	}
	return fmt.Sprintf("%s, WebSocket transport %s (PIDs %s)", strings.Join(kinds, ", "), Transport(ps), strings.Join(pids, ", "))
}

// secretFlags are flags whose values a report leaves out.
var secretFlags = []string{"token-key", "scylla-password"}

// Redact returns cmd with the values of secret flags (the token signing
// key, passwords) replaced by "<redacted>".
func Redact(cmd []string) []string {
	out := slices.Clone(cmd)
	for i := 1; i < len(out); i++ {
		for _, name := range secretFlags {
			if _, next, ok := flagAt(out, i, name); ok && next {
				out[i+1] = "<redacted>"
			} else if ok {
				out[i] = out[i][:strings.Index(out[i], "=")+1] + "<redacted>"
			}
		}
	}
	return out
}
