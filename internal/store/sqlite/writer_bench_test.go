package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/trace"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// BenchmarkWriterStall runs the real ledger.Writer over SQLite at 5000
// rows/s on one P (GOMAXPROCS=1, as when the gateway is pinned to a core)
// and measures how long a request goroutine can be kept off the CPU by it.
// Each iteration is 10 ms of traffic (50 rows).
//
// A probe goroutine sleeps 100 µs in a loop; the Go scheduler runs its
// timer only when the running goroutine yields, so each oversleep is a
// stretch in which something else held the P. Only the part of it this
// process spent on the CPU is counted (getrusage), so a stall caused by the
// machine's other tenants is not charged to the writer. Reported:
// stall-max-µs, stall-p99-µs and cpu-µs/row (all process CPU per row
// written: the rows' creation, the writer, SQLite, GC).
//
// With TOLLGATE_TRACE_OUT=file it also writes an execution trace
// (go tool trace file) to see what ran in the longest stretches.
func BenchmarkWriterStall(b *testing.B) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	dir := b.TempDir()
	s, err := Open(b.Context(), filepath.Join(dir, "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if out := os.Getenv("TOLLGATE_TRACE_OUT"); out != "" {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			b.Fatal(err)
		}
		defer trace.Stop()
	}
	w := ledger.NewWriter(s, ledger.WriterOptions{SpillPath: filepath.Join(dir, "spill.jsonl")})
	stalls := make(chan []time.Duration)
	stop := make(chan struct{})
	go probe(stop, stalls)

	const rowsPerTick, tick = 50, 10 * time.Millisecond
	n := 0
	c0 := processCPU()
	next := time.Now()
	for b.Loop() {
		now := time.Now()
		for range rowsPerTick {
			n++
			w.Record(ledger.Record{
				ID: fmt.Sprintf("req_%014x%016x", now.UnixMicro()-40, n), Time: now, KeyID: fmt.Sprintf("k%d", n%3), KeyName: "web",
				Endpoint: "/v1/chat/completions", Model: "gpt-4o-mini", ModelUsed: "gpt-4o-mini", Upstream: "taotoken",
				Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1, PromptTokens: 20, CompletionTokens: 8, TotalTokens: 28,
				CostNanoUSD: 7800, Priced: true, Duration: 3 * time.Millisecond, TTFB: 2 * time.Millisecond, ClientIP: "127.0.0.1",
			})
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - c0
	close(stop)
	got := <-stalls
	if st := w.Stats(); st.Written != int64(n) {
		b.Fatalf("written %d of %d rows", st.Written, n)
	}
	slices.Sort(got)
	if len(got) > 0 {
		b.ReportMetric(float64(got[len(got)-1].Microseconds()), "stall-max-µs")
		b.ReportMetric(float64(got[len(got)*99/100].Microseconds()), "stall-p99-µs")
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/row")
}

// probe reports, when stop closes, how long each of its 100 µs sleeps
// overslept, counting only CPU time this process used meanwhile.
func probe(stop <-chan struct{}, out chan<- []time.Duration) {
	var stalls []time.Duration
	for {
		select {
		case <-stop:
			out <- stalls
			return
		default:
		}
		t0, c0 := time.Now(), processCPU()
		time.Sleep(100 * time.Microsecond)
		over := time.Since(t0) - 100*time.Microsecond
		stalls = append(stalls, max(0, min(over, processCPU()-c0)))
	}
}
