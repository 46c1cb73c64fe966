// Package cqlschema embeds Parley's CQL schema (ScyllaDB / Cassandra) as
// ordered migrations.
//
// Each migration is a file NNNN_name.cql, applied in version order inside
// the target keyspace (names are unqualified), and recorded in the
// schema_migrations table that 0001 creates. Files hold CQL statements, each
// ending with ';' at the end of a line, and whole-line "--" comments.
// Statements must be re-runnable (IF NOT EXISTS, ...): a migration that fails
// half-way is applied again from its first statement. Never edit a released
// migration; add a new file.
package cqlschema

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed *.cql
var files embed.FS

// Migration is one schema step.
type Migration struct {
	Version    int      // NNNN from the file name; unique, ascending
	Name       string   // the file name
	Statements []string // CQL statements in file order, without the trailing ';'
}

var fileName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.cql$`)

// Migrations returns the embedded migrations in ascending version order.
func Migrations() ([]Migration, error) { return load() }

var load = sync.OnceValues(func() ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("cqlschema: %s: name is not NNNN_name.cql", e.Name())
		}
		version, _ := strconv.Atoi(m[1]) // four digits: cannot fail
		src, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		stmts, err := split(string(src))
		if err != nil {
			return nil, fmt.Errorf("cqlschema: %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: version, Name: e.Name(), Statements: stmts})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("cqlschema: %s and %s share version %d", ms[i-1].Name, ms[i].Name, ms[i].Version)
		}
	}
	return ms, nil
})

// split cuts a file into statements: whole-line "--" comments are dropped
// and a statement ends at a line ending with ';'.
func split(src string) ([]string, error) {
	var stmts []string
	var cur []string
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur = append(cur, strings.TrimRight(line, " \t\r"))
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(cur, "\n")), ";")
			stmts = append(stmts, stmt)
			cur = nil
		}
	}
	if len(cur) > 0 {
		return nil, fmt.Errorf("statement not terminated by ';': %q", strings.Join(cur, " "))
	}
	if len(stmts) == 0 {
		return nil, fmt.Errorf("no statements")
	}
	return stmts, nil
}
