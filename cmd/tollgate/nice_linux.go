package main

import (
	"os"
	"strconv"
	"syscall"
)

// lowerPriority sets the nice value of every thread of this process (on
// Linux it is a thread's attribute; threads started later inherit it from
// the thread that starts them).
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
	}
	return nil
}
