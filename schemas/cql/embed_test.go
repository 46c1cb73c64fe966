package cqlschema

import (
	"strings"
	"testing"
)

func TestMigrations(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 || ms[0].Name != "0001_init.cql" {
		t.Fatalf("first migration = %+v, want 0001_init.cql", ms[0])
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Errorf("%s not after %s", m.Name, ms[i-1].Name)
		}
		for _, s := range m.Statements {
			if strings.HasSuffix(s, ";") {
				t.Errorf("%s: statement not cleaned: %q", m.Name, s)
			}
		}
	}
	// 0001 creates the bookkeeping table the migrator records versions in.
	if !strings.Contains(ms[0].Statements[0], "schema_migrations") {
		t.Errorf("0001 must create schema_migrations first, got %q", ms[0].Statements[0])
	}
}

func TestSplit(t *testing.T) {
	got, err := split("-- c\nCREATE TABLE a (\n  x int PRIMARY KEY\n);\n\n  -- d\nDROP TABLE b;  \n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CREATE TABLE a (\n  x int PRIMARY KEY\n)", "DROP TABLE b"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("split = %q, want %q", got, want)
	}
	for _, bad := range []string{"CREATE TABLE a (x int)", "-- only a comment\n"} {
		if _, err := split(bad); err == nil {
			t.Errorf("split(%q): want error", bad)
		}
	}
}
