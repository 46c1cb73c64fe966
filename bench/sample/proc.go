// Package sample watches server processes during a bench run: CPU time,
// resident memory and threads of chosen PIDs from /proc, and chosen metrics
// scraped from Prometheus text endpoints, at a fixed interval.
package sample

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Proc is one reading of a process.
type Proc struct {
	CPUSeconds float64 // user + system time since the process started
	RSSBytes   int64
	Threads    int
}

// ReadProc reads process pid: CPU time from /proc/<pid>/stat, RSS and
// threads from /proc/<pid>/status.
func ReadProc(pid int) (Proc, error) {
	dir := fmt.Sprintf("/proc/%d/", pid)
	stat, err := os.ReadFile(dir + "stat")
	if err != nil {
		return Proc{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return Proc{}, fmt.Errorf("%sstat: %w", dir, err)
	}
	status, err := os.ReadFile(dir + "status")
	if err != nil {
		return Proc{}, err
	}
	p, err := parseStatus(status)
	if err != nil {
		return Proc{}, fmt.Errorf("%sstatus: %w", dir, err)
	}
	p.CPUSeconds = cpu
	return p, nil
}

// parseStatCPU returns utime+stime in seconds from a /proc/<pid>/stat line.
func parseStatCPU(stat []byte) (float64, error) {
	// The command name (field 2) is in parentheses and may itself hold
	// spaces and parentheses: fields are counted from the last ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("no command name")
	}
	fields := strings.Fields(string(stat[end+1:])) // fields[0] is field 3, state
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("%d fields, want more than %d", len(fields)+2, stime+3)
	}
	var ticks uint64
	for _, i := range []int{utime, stime} {
		n, err := strconv.ParseUint(fields[i], 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return float64(ticks) / float64(clockTicks()), nil
}

// parseStatus reads VmRSS and Threads. A kernel thread or zombie has no
// VmRSS line; its RSS is 0.
func parseStatus(status []byte) (Proc, error) {
	var p Proc
	threads := false
	for line := range strings.Lines(string(status)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "VmRSS":
			kb, err := strconv.ParseInt(strings.TrimSuffix(val, " kB"), 10, 64)
			if err != nil {
				return Proc{}, fmt.Errorf("VmRSS: %w", err)
			}
			p.RSSBytes = kb << 10
		case "Threads":
			n, err := strconv.Atoi(val)
			if err != nil {
				return Proc{}, fmt.Errorf("Threads: %w", err)
			}
			p.Threads, threads = n, true
		}
	}
	if !threads {
		return Proc{}, errors.New("no Threads line")
	}
	return p, nil
}

// clockTicks is the kernel's USER_HZ, the unit of utime and stime: the
// AT_CLKTCK entry of our auxiliary vector, or 100, its value on every
// mainstream Linux architecture, if that cannot be read.
var clockTicks = sync.OnceValue(func() uint64 {
	const atClkTck = 17
	auxv, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	word := strconv.IntSize / 8
	for i := 0; i+2*word <= len(auxv); i += 2 * word {
		key, val := readWord(auxv[i:], word), readWord(auxv[i+word:], word)
		if key == atClkTck && val > 0 {
			return val
		}
	}
	return 100
})

func readWord(b []byte, size int) uint64 {
	if size == 4 {
		return uint64(binary.NativeEndian.Uint32(b))
	}
	return binary.NativeEndian.Uint64(b)
}

// ReadCmdline returns process pid's command line from /proc/<pid>/cmdline.
func ReadCmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil, fmt.Errorf("process %d has no command line", pid)
	}
	return strings.Split(string(b), "\x00"), nil
}
