//go:build linux

package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store/sqlite"
)

// BenchmarkWriterProcessPaced sends the writer process (this test binary as
// the child, see TestMain) 1000-row batches 200 ms apart, as a gateway at
// 5000 req/s does, and reports the child's own CPU per row from
// /proc/PID/task/*/schedstat. Unlike BenchmarkInsertWriterProcess it counts
// what only the live child pays: reading and decoding the pipe, its GC, and
// the Go runtime waking up for every batch after the pause. It does not
// reproduce a gateway sharing the core; run it pinned (taskset -c 1) for the
// child's numbers alone. policy=idle gives the child's threads the
// SCHED_IDLE policy, as `tollgate ledger-writer` does (cmd/tollgate,
// lowerPriority); batch and normal are the policies it ran with before
// (docs/perf.md). Alone on a core, idle and batch differ little: what
// idle costs, preemption by every gateway thread that wakes, shows only
// live (bench/writer-cpu.sh).
func BenchmarkWriterProcessPaced(b *testing.B) {
	for _, policy := range []struct {
		name   string
		policy uint32
	}{{"normal", unix.SCHED_NORMAL}, {"batch", unix.SCHED_BATCH}, {"idle", unix.SCHED_IDLE}} {
		b.Run("policy="+policy.name, func(b *testing.B) { benchPaced(b, policy.policy) })
	}
}

func benchPaced(b *testing.B, policy uint32) {
	const rows, every = 1000, 200 * time.Millisecond
	s, err := sqlite.OpenWith(b.Context(), filepath.Join(b.TempDir(), "tollgate.db"), sqlite.Options{Writer: testWriter()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	sqlite.SetWriterStarved(s, time.Hour, time.Hour, 1)
	n := 0
	send := func() {
		if err := s.InsertRecords(b.Context(), gatewayBatch(n, rows, time.Now().UTC())); err != nil {
			b.Fatal(err)
		}
		n += rows
	}
	send() // starts the child and prepares its statements: not measured
	pid := sqlite.WriterPID(s)
	if policy != unix.SCHED_NORMAL {
		if err := setPolicy(pid, policy); err != nil {
			b.Skip("sched_setattr:", err)
		}
	}
	before, err := childThreads(pid)
	if err != nil {
		b.Fatal(err)
	}
	next := time.Now()
	for b.Loop() {
		next = next.Add(every)
		time.Sleep(time.Until(next))
		send()
	}
	after, err := childThreads(pid)
	if err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	var switches int64
	for tid, a := range after {
		cpu += a.cpu - before[tid].cpu
		switches += a.switches - before[tid].switches
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n-rows), "child-cpu-ns/row")
	b.ReportMetric(float64(switches)/float64(b.N), "child-switches/batch")
}

// setPolicy gives every thread of process pid the scheduling policy.
func setPolicy(pid int, policy uint32) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Policy: policy}, 0); err != nil {
			return err
		}
	}
	return nil
}

// gatewayBatch is rows rows as the gateway's ledger sends them at 5000
// req/s: ids made by the gateway (server.newID), times 200 µs apart, three
// keys, one model.
func gatewayBatch(from, rows int, end time.Time) []ledger.Record {
	recs := make([]ledger.Record, rows)
	for i := range recs {
		at := end.Add(-time.Duration(rows-i) * 200 * time.Microsecond)
		recs[i] = ledger.Record{
			ID: fmt.Sprintf("req_%014x%016x", at.UnixMicro()-40, from+i), Time: at, KeyID: fmt.Sprintf("k%d", i%3),
			KeyName: "web", Endpoint: "/v1/chat/completions", Model: "gpt-4o-mini", ModelUsed: "gpt-4o-mini",
			Upstream: "taotoken", Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1, PromptTokens: 20,
			CompletionTokens: 8, TotalTokens: 28, CostNanoUSD: 7800, Priced: true, Duration: 3 * time.Millisecond,
			TTFB: 2 * time.Millisecond, ClientIP: "127.0.0.1",
		}
	}
	return recs
}

type threadStat struct {
	cpu      time.Duration // on-CPU time (schedstat's first field)
	switches int64         // voluntary + involuntary context switches
}

// childThreads reads the CPU time and context switches of every thread of
// process pid.
func childThreads(pid int) (map[string]threadStat, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]threadStat, len(tasks))
	for _, t := range tasks {
		sched, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended
		}
		ns, err := strconv.ParseInt(strings.Fields(string(sched))[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("schedstat of %s: %w", t.Name(), err)
		}
		st := threadStat{cpu: time.Duration(ns)}
		status, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(status)) {
			if name, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(name, "ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				st.switches += n
			}
		}
		out[t.Name()] = st
	}
	return out, nil
}
