package scenario

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/bench/sample"
)

// The bench, the server and anything else on the machine share its CPUs.
// To tell a slow server from a starved one, each step records how busy
// the machine was, how much of it the bench took, and how long the
// server's threads waited for a CPU.

// cpuReading is a reading of the machine's and the server's CPU counters.
type cpuReading struct {
	at          time.Time
	busy, total uint64  // machine jiffies, from /proc/stat
	serverWait  float64 // seconds the server's threads spent runnable but not running
	bench       float64 // CPU seconds of the bench's processes
}

// Contention is how crowded the CPUs were during a step.
type Contention struct {
	// MachineBusy is the share of all CPUs' time spent busy, 0 to 1.
	MachineBusy float64 `json:"machine_busy"`
	// ServerWait is the server's threads' time waiting for a CPU per
	// second: 0.5 means that on average half a thread was ready to run but
	// had no CPU.
	ServerWait float64 `json:"server_wait"`
	// BenchCPU is the cores the bench's own processes kept busy.
	BenchCPU float64 `json:"bench_cpu"`
}

func readCPU(server, bench []int) cpuReading {
	r := cpuReading{at: time.Now()}
	r.busy, r.total = machineJiffies()
	for _, pid := range server {
		r.serverWait += runQueueWait(pid)
	}
	for _, pid := range bench {
		if p, err := sample.ReadProc(pid); err == nil {
			r.bench += p.CPUSeconds
		}
	}
	return r
}

// since returns the contention between an earlier reading and r.
func (r cpuReading) since(earlier cpuReading) Contention {
	var c Contention
	if dt := r.total - earlier.total; dt > 0 {
		c.MachineBusy = float64(r.busy-earlier.busy) / float64(dt)
	}
	if secs := r.at.Sub(earlier.at).Seconds(); secs > 0 {
		c.ServerWait = (r.serverWait - earlier.serverWait) / secs
		c.BenchCPU = (r.bench - earlier.bench) / secs
	}
	return c
}

// machineJiffies returns the busy and total time of all CPUs from the
// first line of /proc/stat; idle and iowait count as not busy.
func machineJiffies() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text()) // cpu user nice system idle iowait irq softirq steal …
	for i, v := range fields[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return busy, total
}

// runQueueWait returns the seconds pid's threads have waited on a run
// queue, the second field of each /proc/<pid>/task/<tid>/schedstat.
func runQueueWait(pid int) float64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var ns uint64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			ns += n
		}
	}
	return float64(ns) / 1e9
}
