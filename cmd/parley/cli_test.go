package main

import (
	"bytes"
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
