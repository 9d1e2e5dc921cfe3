package main

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// lowerPriority sets every thread of this process to the SCHED_BATCH
// policy at the given nice value (on Linux both are a thread's attributes;
// threads started later inherit them from the thread that starts them).
// A batch thread that wakes never preempts the thread running: the Go
// runtime's sysmon, which polls every 20 µs for the first millisecond of
// each batch the writer takes, then waits for the insert thread's slice
// instead of costing it two context switches a poll (docs/perf.md). Where
// sched_setattr is refused, only the nice value is set.
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
		attr := unix.SchedAttr{Policy: unix.SCHED_BATCH, Nice: int32(nice)}
		if unix.SchedSetAttr(tid, &attr, 0) == nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return err
		}
	}
	return nil
}
