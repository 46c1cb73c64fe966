// Package config binds command-line flags to PARLEY_* environment
// variables: a flag's default comes from its variable (--nats-url from
// PARLEY_NATS_URL), and an explicit flag wins over both.
package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// EnvName is the environment variable of a flag name.
func EnvName(flagName string) string {
	return "PARLEY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Flags registers flags on a FlagSet, defaulting each from its variable.
// Invalid variable values are collected and reported by Parse.
type Flags struct {
	*flag.FlagSet
	errs []string
}

// NewFlags returns an empty flag set named for a subcommand.
func NewFlags(name string) *Flags {
	return &Flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
}

// envValue applies the environment to v, which already holds the default.
func (f *Flags) envValue(v flag.Value, name string) {
	if s, ok := os.LookupEnv(EnvName(name)); ok {
		if err := v.Set(s); err != nil {
			f.errs = append(f.errs, fmt.Sprintf("%s=%q: %v", EnvName(name), s, err))
		}
	}
}

func (f *Flags) usage(name, usage string) string {
	return usage + " (env " + EnvName(name) + ")"
}

// String registers a string flag.
func (f *Flags) String(p *string, name, def, usage string) {
	f.StringVar(p, name, def, f.usage(name, usage))
	f.envValue(f.Lookup(name).Value, name)
}

// Int registers an int flag.
func (f *Flags) Int(p *int, name string, def int, usage string) {
	f.IntVar(p, name, def, f.usage(name, usage))
	f.envValue(f.Lookup(name).Value, name)
}

// Int64 registers an int64 flag.
func (f *Flags) Int64(p *int64, name string, def int64, usage string) {
	f.Int64Var(p, name, def, f.usage(name, usage))
	f.envValue(f.Lookup(name).Value, name)
}

// Float registers a float64 flag.
func (f *Flags) Float(p *float64, name string, def float64, usage string) {
	f.Float64Var(p, name, def, f.usage(name, usage))
	f.envValue(f.Lookup(name).Value, name)
}

// Bool registers a bool flag.
func (f *Flags) Bool(p *bool, name string, def bool, usage string) {
	f.BoolVar(p, name, def, f.usage(name, usage))
	f.envValue(f.Lookup(name).Value, name)
}

// Duration registers a duration flag.
func (f *Flags) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.DurationVar(p, name, def, f.usage(name, usage))
	f.envValue(f.Lookup(name).Value, name)
}

// Parse parses args after applying the environment.
func (f *Flags) Parse(args []string) error {
	if len(f.errs) > 0 {
		return fmt.Errorf("invalid environment: %s", strings.Join(f.errs, "; "))
	}
	return f.FlagSet.Parse(args)
}
