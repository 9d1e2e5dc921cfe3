package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLedgerWriterPriority starts the writer process (this test binary,
// see TestMain) and checks that every one of its threads runs at nice 19
// with the SCHED_IDLE policy.
func TestLedgerWriterPriority(t *testing.T) {
	cmd := exec.Command(os.Args[0], "ledger-writer", "--db", filepath.Join(t.TempDir(), "w.db"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close() // the writer ends when its input does
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer process: %v", err)
		}
	}()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if last = threadsNotLowered(t, cmd.Process.Pid); last == "" {
			return
		}
	}
	t.Errorf("writer threads not at nice 19 / SCHED_IDLE: %s", last)
}

// threadsNotLowered describes the first thread of pid that is not at nice
// 19 with SCHED_IDLE, or returns "".
func threadsNotLowered(t *testing.T, pid int) string {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			return fmt.Sprintf("thread %d: %v", tid, err)
		}
		// Getpriority returns 20 - nice on Linux.
		prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
		if err != nil {
			return fmt.Sprintf("thread %d: %v", tid, err)
		}
		if attr.Policy != unix.SCHED_IDLE || 20-prio != writerNice {
			return fmt.Sprintf("thread %d: policy %d, nice %d", tid, attr.Policy, 20-prio)
		}
	}
	return ""
}
