package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// CPU usage is measured alongside wall-clock figures because the load
// tool and the servers share the machine: CPU time per request is what
// bounds throughput when the cores are saturated, and unlike throughput
// it barely moves when other work runs on the machine at the same time.

// ownCPU returns the CPU time (user+system) this process has used.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// TreeCPU returns the CPU time (user+system) used so far by process pid
// and all its living descendants, from /proc (Linux only). Postgres and
// Redis started by `make run` are descendants of its process, so one pid
// covers the whole platform.
func TreeCPU(pid int) (time.Duration, error) {
	by, err := TreeCPUByName(pid)
	var total time.Duration
	for _, d := range by {
		total += d
	}
	return total, err
}

// TreeCPUByName is TreeCPU split by process name (the kernel's comm:
// "postgres", "redis-server", the server binary's name).
func TreeCPUByName(pid int) (map[string]time.Duration, error) {
	type proc struct {
		ppid  int
		name  string
		ticks int64
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	procs := map[int]proc{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// The command name may hold spaces and parentheses: fields start
		// after the last ')'. Then: state ppid ... utime(14) stime(15).
		i := bytes.LastIndexByte(b, ')')
		j := bytes.IndexByte(b, '(')
		if i < 0 || j < 0 || j > i {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(string(f[1]))
		ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
		st, _ := strconv.ParseInt(string(f[12]), 10, 64)
		procs[p] = proc{ppid: ppid, name: string(b[j+1 : i]), ticks: ut + st}
	}
	if _, ok := procs[pid]; !ok {
		return nil, fmt.Errorf("no process %d", pid)
	}
	children := map[int][]int{}
	for p, pr := range procs {
		children[pr.ppid] = append(children[pr.ppid], p)
	}
	by := map[string]time.Duration{}
	stack := []int{pid}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		by[procs[p].name] += time.Duration(procs[p].ticks) * clockTick
		stack = append(stack, children[p]...)
	}
	return by, nil
}
