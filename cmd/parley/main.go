// Command parley runs Parley: `parley dev` starts everything in one process
// on embedded defaults; `parley gateway|processor|archiver` run one role
// against existing NATS servers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "everything in one process: embedded NATS, gateway, processor, archiver, Pebble", runDev},
		{"gateway", "the WebSocket/HTTP edge, against --nats-url", roleCommand("gateway")},
		{"processor", "the per-room sequencer, against --nats-url", roleCommand("processor")},
		{"archiver", "the history writer and history service, against --nats-url", roleCommand("archiver")},
		{"migrate", "apply the ScyllaDB schema migrations (--scylla-* flags)", runMigrate},
		{"decode", "print a NATS message payload (stdin) as JSON, for nats sub --translate", runDecode},
		{"nats-users", "write the nats-server users of the roles, with least-privilege permissions", runNATSUsers},
		{"version", "print the version (also --version)", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: parley <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n`parley <command> -h` lists a command's flags; every flag can also be set as PARLEY_<FLAG> (e.g. PARLEY_NATS_URL).\n")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the command named by args[0] and returns the exit status: 0, 1
// when the command fails, 2 for a command line that names no command.
func run(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, args[1:])
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "parley:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "parley: unknown command %q\n\n", name)
	usage(os.Stderr)
	return 2
}

func runVersion(context.Context, []string) error {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = &debug.BuildInfo{}
	}
	fmt.Println(versionLine(info))
	return nil
}

// versionLine is what `parley version` prints: the module version ((devel)
// for a build from source) and, when the build recorded them (a build in a
// git clone, not in a linked worktree), the commit, its time, and whether
// the tree had uncommitted changes.
func versionLine(info *debug.BuildInfo) string {
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	line := "parley " + version
	vcs := make(map[string]string)
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	if rev := vcs["vcs.revision"]; rev != "" {
		line += " " + rev[:min(len(rev), 12)]
	}
	if t := vcs["vcs.time"]; t != "" {
		line += " " + t
	}
	if vcs["vcs.modified"] == "true" {
		line += " (modified)"
	}
	return line
}
