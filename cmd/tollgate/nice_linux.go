package main

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// lowerPriority sets every thread of this process to the SCHED_IDLE
// policy and the given nice value, which that policy ignores (on Linux
// both are a thread's attributes; threads started later inherit them from
// the thread that starts them). A gateway thread that wakes preempts an
// idle-policy thread at once; under SCHED_BATCH at nice 19 the kernel
// (EEVDF) first let the writer finish the slice it had been given, and the
// gateway waited with it: in 5 s at 2000 or 5000 req/s, 7-12 waits of
// gateway threads stretched by over 1 ms (up to 5.5 ms, past the 4 ms
// scheduler tick), 0-1 with SCHED_IDLE (bench/writer-stalls.sh,
// docs/perf.md). An idle-policy thread that wakes never preempts another
// either, so sysmon's polls at the start of a batch still wait for the
// insert thread.
func lowerPriority(nice int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// The policy may be refused (a seccomp filter, an old kernel); the
		// nice value then still puts request threads first, and with the
		// policy it shows in ps and top what the process is.
		_ = unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: unix.SCHED_IDLE}, 0)
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return err
		}
	}
	return nil
}
