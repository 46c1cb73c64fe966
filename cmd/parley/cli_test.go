package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// parley runs the built binary with args and returns its exit status,
// stdout and stderr.
func parley(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(buildParley(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, exited := err.(*exec.ExitError); !exited {
			t.Fatal(err)
		}
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func TestCommandLine(t *testing.T) {
	const usageLine = "usage: parley <command> [flags]"
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // what each must contain
	}{
		{nil, 2, "", usageLine},
		{[]string{"frobnicate"}, 2, "", "parley: unknown command \"frobnicate\"\n\n" + usageLine},
		{[]string{"-h"}, 0, usageLine, ""},
		{[]string{"--help"}, 0, usageLine, ""},
		{[]string{"help"}, 0, usageLine, ""},
		{[]string{"version"}, 0, "parley ", ""},
		{[]string{"--version"}, 0, "parley ", ""},
		{[]string{"dev", "-h"}, 0, "", "-data-dir"},
		{[]string{"gateway", "--tls-cert", "tls.crt"}, 1, "", "--tls-cert and --tls-key go together"},
		{[]string{"processor", "--tls-cert", "tls.crt", "--tls-key", "tls.key"}, 1, "", "flag provided but not defined: -tls-cert"},
		{[]string{"archiver", "--nats-cert", "client.crt"}, 1, "", "--nats-cert and --nats-key go together"},
		{[]string{"dev", "--nats-ca", "ca.crt"}, 1, "", "flag provided but not defined: -nats-ca"},
		// Each role takes only its own settings.
		{[]string{"processor", "--rate-send", "5"}, 1, "", "flag provided but not defined: -rate-send"},
		{[]string{"gateway", "--processor-lease-ttl", "3s"}, 1, "", "flag provided but not defined: -processor-lease-ttl"},
		{[]string{"archiver", "--max-body", "100"}, 1, "", "flag provided but not defined: -max-body"},
		{[]string{"processor", "--password-memory", "4"}, 1, "", "flag provided but not defined: -password-memory"},
		{[]string{"archiver", "--password-memory", "4"}, 1, "", "--password-memory must be at least 8 KiB"},
		{[]string{"processor", "-h"}, 0, "", "-processor-lease-ttl"},
	} {
		code, stdout, stderr := parley(t, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("parley %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(tc.args, " "), code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
	_, version, _ := parley(t, "version")
	if _, flagVersion, _ := parley(t, "--version"); flagVersion != version {
		t.Errorf("parley --version printed %q, parley version %q", flagVersion, version)
	}
}

// Every flag in a command's -h reads as "-name" or "-name <type>": the flag
// package takes a back-quoted word in a flag's help as the name of its
// argument, so a help text quoting a command would show up as one.
func TestFlagHelp(t *testing.T) {
	line := regexp.MustCompile(`(?m)^  -(\S+)(?: (.+))?$`)
	types := []string{"", "string", "int", "float", "duration"}
	for _, command := range []string{"dev", "gateway", "processor", "archiver", "migrate"} {
		_, _, help := parley(t, command, "-h")
		flags := map[string]bool{}
		for _, m := range line.FindAllStringSubmatch(help, -1) {
			flags[m[1]] = true
			if !slices.Contains(types, m[2]) {
				t.Errorf("parley %s -h shows -%s taking a %q", command, m[1], m[2])
			}
		}
		if !flags["scylla-migrate"] && command != "migrate" {
			t.Errorf("parley %s -h has no -scylla-migrate:\n%s", command, help)
		}
		// Only the commands running a gateway serve TLS.
		if want := command == "dev" || command == "gateway"; flags["tls-cert"] != want || flags["tls-key"] != want {
			t.Errorf("parley %s -h lists -tls-cert: %t, -tls-key: %t, want %t", command, flags["tls-cert"], flags["tls-key"], want)
		}
		// dev embeds its own NATS server; migrate needs none.
		if want := command != "dev" && command != "migrate"; flags["nats-url"] != want {
			t.Errorf("parley %s -h lists -nats-url: %t, want %t", command, flags["nats-url"], want)
		}
	}
}

// The README's Configuration table says which commands take each flag,
// and it is so: `parley <command> -h` lists exactly the flags documented
// for it.
func TestFlagsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(readme)[strings.Index(string(readme), "## Configuration"):]
	conf = conf[:strings.Index(conf, "\n### ")]
	takenBy := map[string][]string{
		"all":   {"dev", "gateway", "processor", "archiver"},
		"roles": {"gateway", "processor", "archiver"},
		"dev":   {"dev"}, "gateway role": {"gateway"},
		"gateway": {"dev", "gateway"}, "processor": {"dev", "processor"}, "archiver": {"dev", "archiver"},
	}
	row := regexp.MustCompile("(?m)^\\| (`--.+?) \\| ([a-z, ]+) \\|")
	flagName := regexp.MustCompile("`--([a-z0-9-]+)`")
	documented := map[string]map[string]bool{} // command -> flags
	rows := row.FindAllStringSubmatch(conf, -1)
	if len(rows) < 30 {
		t.Fatalf("found %d rows in the README's Configuration table", len(rows))
	}
	for _, m := range rows {
		for _, who := range strings.Split(m[2], ", ") {
			commands, ok := takenBy[who]
			if !ok {
				t.Fatalf("README: %q taken by %q", m[1], who)
			}
			for _, c := range commands {
				if documented[c] == nil {
					documented[c] = map[string]bool{}
				}
				for _, f := range flagName.FindAllStringSubmatch(m[1], -1) {
					documented[c][f[1]] = true
				}
			}
		}
	}
	line := regexp.MustCompile(`(?m)^  -(\S+)`)
	for command, want := range documented {
		_, _, help := parley(t, command, "-h")
		for _, m := range line.FindAllStringSubmatch(help, -1) {
			if name := m[1]; !want[name] && !strings.HasPrefix(name, "scylla-") {
				t.Errorf("parley %s takes -%s, which the README's Configuration table does not give it", command, name)
			}
			delete(want, m[1])
		}
		for name := range want {
			t.Errorf("the README's Configuration table gives parley %s -%s, which it does not take", command, name)
		}
	}
}

func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		info debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{}, "parley (devel)"},
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "parley v1.2.0"},
		{debug.BuildInfo{
			Main:     debug.Module{Version: "v0.0.0-20261202120000-7d28e29a0b1c+dirty"},
			Settings: vcs("-buildmode", "exe", "vcs", "git", "vcs.revision", "7d28e29a0b1c2d3e4f5061728394a5b6c7d8e9f0", "vcs.time", "2026-12-02T12:00:00Z", "vcs.modified", "true"),
		}, "parley v0.0.0-20261202120000-7d28e29a0b1c+dirty 7d28e29a0b1c 2026-12-02T12:00:00Z (modified)"},
		{debug.BuildInfo{
			Main:     debug.Module{Version: "v1.2.0"},
			Settings: vcs("vcs.revision", "7d28e29a0b1c2d3e4f5061728394a5b6c7d8e9f0", "vcs.time", "2026-12-02T12:00:00Z", "vcs.modified", "false"),
		}, "parley v1.2.0 7d28e29a0b1c 2026-12-02T12:00:00Z"},
	} {
		if got := versionLine(&tc.info); got != tc.want {
			t.Errorf("versionLine(%v) = %q, want %q", tc.info.Settings, got, tc.want)
		}
	}
}
