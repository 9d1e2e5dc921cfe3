package main

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// schedIdle is Linux's SCHED_IDLE policy: a thread of it runs only when no
// normal thread wants the CPU, and a normal thread that wakes preempts it at
// once (a nice value alone still let the writer finish its slice first).
const schedIdle = 5

// lowerPriority puts every thread of this process under SCHED_IDLE with the
// given nice value (both are thread attributes on Linux; threads started
// later inherit them from the thread that starts them).
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
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return err
		}
		var param struct{ priority int32 } // must be 0 for SCHED_IDLE
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), schedIdle,
			uintptr(unsafe.Pointer(&param))); errno != 0 {
			return errno
		}
	}
	return nil
}
