//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/store"
)

// writerChildren returns the pids of this process's `ledger-writer`
// children.
func writerChildren(t *testing.T) []int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skip("needs /proc:", err)
	}
	var pids []int
	for _, task := range tasks {
		b, _ := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "children"))
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if bytes.Contains(cmdline, []byte("ledger-writer")) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// TestLedgerWriterProcess: serve records requests through its writer
// process, which survives the SIGINT a terminal sends the process group
// and ends with the gateway; the
// ledger holds every request once.
func TestLedgerWriterProcess(t *testing.T) {
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
	defer fake.Close()
	db := filepath.Join(t.TempDir(), "ledger.db")
	before := writerChildren(t)
	addr, stop, logs := startGateway(t, map[string]string{
		"TAOTOKEN_BASE_URL": fake.URL + "/v1", "TOLLGATE_DB": db, "TOLLGATE_LOG_LEVEL": "warn",
	})
	client := &http.Client{}
	defer client.CloseIdleConnections()
	send := func(n int) {
		for range n {
			if status, err := call(client, addr, "gpt-4o-mini", false, nil); status != 200 || err != nil {
				t.Fatalf("request: %d %v", status, err)
			}
		}
	}
	send(20)
	var child int
	for range 100 { // the first batch is flushed within the writer's 250 ms interval
		if pids := writerChildren(t); len(pids) > len(before) {
			child = slices.DeleteFunc(pids, func(p int) bool { return slices.Contains(before, p) })[0]
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if child == 0 {
		t.Fatalf("no ledger-writer child process\n%s", logs)
	}
	// Once the first rows are stored the child is past its start (where
	// it begins to ignore SIGINT).
	st := openStore(t, db)
	requests := func() int64 {
		rep, err := st.Usage(t.Context(), store.UsageQuery{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Total.Requests
	}
	for i := 0; requests() < 20 && i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(child, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	send(20)
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, logs)
	}
	if syscall.Kill(child, 0) == nil {
		t.Errorf("writer process %d still running after the gateway stopped", child)
	}
	if n := requests(); n != 40 {
		t.Errorf("ledger holds %d rows, want 40\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "writer process failed") {
		t.Errorf("the writer process failed:\n%s", logs)
	}
}

// TestWriterEnv: the writer process gets the Go runtime's settings, not the
// gateway's keys.
func TestWriterEnv(t *testing.T) {
	got := writerEnv([]string{"TAOTOKEN_API_KEY=sk-secret", "GOMAXPROCS=1", "TOLLGATE_ADMIN_TOKEN=x", "GOGC=50",
		"TMPDIR=/tmp/x", "PATH=/bin", "TZ=UTC", "GODEBUG=gctrace=1"})
	want := []string{"GOMAXPROCS=1", "GOGC=50", "TMPDIR=/tmp/x", "TZ=UTC", "GODEBUG=gctrace=1"}
	if !slices.Equal(got, want) {
		t.Fatalf("writerEnv = %q, want %q", got, want)
	}
	if got := writerEnv(nil); got == nil {
		t.Fatal("writerEnv(nil) is nil: exec would pass the whole environment")
	}
}
