//go:build unix

package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

// The writer process in these tests is this test binary: TestMain runs
// ServeWriter when the environment says so, as `tollgate ledger-writer` does.
const (
	envWriterDB   = "TOLLGATE_TEST_WRITER_DB"
	envWriterMute = "TOLLGATE_TEST_WRITER_MUTE" // commit batches but never answer
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envWriterDB); path != "" {
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		var out io.Writer = os.Stdout
		if os.Getenv(envWriterMute) != "" {
			out = failWriter{}
		}
		if err := sqlite.ServeWriter(context.Background(), path, os.Stdin, out); err != nil {
			fmt.Fprintln(os.Stderr, "writer process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("answers lost") }

func testWriter(extraEnv ...string) sqlite.WriterCommand {
	return func(path string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append([]string{envWriterDB + "=" + path}, extraEnv...)
		cmd.Stderr = os.Stderr
		return cmd
	}
}

func openWithWriter(t *testing.T, path string, extraEnv ...string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.OpenWith(t.Context(), path, sqlite.Options{Writer: testWriter(extraEnv...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// Under the race detector a batch can take longer than the writer's
	// starvation limit; these tests are about the process, so only
	// TestWriterProcessStarved lowers it.
	sqlite.SetWriterStarved(s, time.Hour, time.Hour, 1)
	return s
}

// TestConformanceWriterProcess runs the store contract's insert and
// aggregate tests with the ledger's inserts going through a writer process
// (the read-only ones would test the same code twice, and under the race
// detector the whole suite takes over a minute).
func TestConformanceWriterProcess(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openWithWriter(t, filepath.Join(t.TempDir(), "tollgate.db"))
	}, "InsertIdempotent", "UsageMath", "UsageEqualsRows", "UsageCacheLateRows", "ListLogsConcurrentInserts",
		"KeySpendAndLastUsed", "ConcurrentInserts", "DeleteLogsBefore")
}

func batch(from, n int, at time.Time) []ledger.Record {
	recs := make([]ledger.Record, n)
	for i := range recs {
		recs[i] = ledger.Record{
			ID: fmt.Sprintf("req_%06d", from+i), Time: at.Add(time.Duration(i) * time.Millisecond), KeyID: "k1",
			Model: "gpt-4o-mini", Upstream: "up", Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1,
			PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, CostNanoUSD: 1000, Priced: true,
			Duration: 3 * time.Millisecond, TTFB: time.Millisecond,
		}
	}
	return recs
}

// requireTotals checks that the aggregates count every row exactly once.
func requireTotals(t *testing.T, s store.Store, at time.Time, rows int64) {
	t.Helper()
	rep, err := s.Usage(t.Context(), store.UsageQuery{Since: at.Add(-time.Hour), Until: at.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Requests != rows || rep.Total.CostNanoUSD != rows*1000 {
		t.Fatalf("usage: %d requests costing %d, want %d costing %d", rep.Total.Requests, rep.Total.CostNanoUSD, rows, rows*1000)
	}
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// TestWriterProcessFailover: inserts go to the child; when it is killed the
// next batch goes in-process, and after the retry delay a new child takes
// over. No row is lost or counted twice.
func TestWriterProcessFailover(t *testing.T) {
	s := openWithWriter(t, filepath.Join(t.TempDir(), "tollgate.db"))
	sqlite.SetWriterRetry(s, 0)
	at := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	if err := s.InsertRecords(t.Context(), batch(0, 100, at)); err != nil {
		t.Fatal(err)
	}
	first := sqlite.WriterPID(s)
	if !alive(first) || first == os.Getpid() {
		t.Fatalf("no writer process after an insert (pid %d)", first)
	}
	requireTotals(t, s, at, 100)

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertRecords(t.Context(), batch(100, 100, at)); err != nil {
		t.Fatalf("insert after the writer process died: %v", err)
	}
	requireTotals(t, s, at, 200)
	if err := s.InsertRecords(t.Context(), batch(200, 100, at)); err != nil {
		t.Fatal(err)
	}
	second := sqlite.WriterPID(s)
	if !alive(second) || second == first {
		t.Fatalf("writer process not replaced: pid %d, first %d", second, first)
	}
	requireTotals(t, s, at, 300)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(second) {
		t.Fatalf("writer process %d still running after Close", second)
	}
}

// TestWriterProcessLostAnswer: a child that commits a batch and dies before
// answering makes the store insert the same batch in-process; the rows it
// finds stored are skipped, so the aggregates count them once.
func TestWriterProcessLostAnswer(t *testing.T) {
	s := openWithWriter(t, filepath.Join(t.TempDir(), "tollgate.db"), envWriterMute+"=1")
	at := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	recs := batch(0, 50, at)
	if err := s.InsertRecords(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	requireTotals(t, s, at, 50)
	for _, r := range recs[:3] {
		if _, err := s.GetLog(t.Context(), r.ID); err != nil {
			t.Fatalf("row %s: %v", r.ID, err)
		}
	}
}

// TestWriterProcessSurvivesInterrupt: the signal a terminal sends to the
// whole process group does not end the writer before the gateway's drain.
func TestWriterProcessSurvivesInterrupt(t *testing.T) {
	s := openWithWriter(t, filepath.Join(t.TempDir(), "tollgate.db"))
	at := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	if err := s.InsertRecords(t.Context(), batch(0, 10, at)); err != nil {
		t.Fatal(err)
	}
	pid := sqlite.WriterPID(s)
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertRecords(t.Context(), batch(10, 10, at)); err != nil {
		t.Fatal(err)
	}
	if got := sqlite.WriterPID(s); got != pid {
		t.Fatalf("writer process changed from %d to %d after SIGINT", pid, got)
	}
	requireTotals(t, s, at, 20)
}

// TestWriterProcessCancelled: a cancelled insert reports the cancellation,
// and the store keeps working.
func TestWriterProcessCancelled(t *testing.T) {
	s := openWithWriter(t, filepath.Join(t.TempDir(), "tollgate.db"))
	at := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	if err := s.InsertRecords(t.Context(), batch(0, 10, at)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.InsertRecords(ctx, batch(10, 10, at)); err == nil {
		// The batch may have committed before the cancellation was seen;
		// then a retry must not count it twice.
		t.Log("cancelled insert completed")
	}
	if err := s.InsertRecords(t.Context(), batch(10, 10, at)); err != nil {
		t.Fatal(err)
	}
	requireTotals(t, s, at, 20)
}

// TestWriterProcessStarved: when the writer process answers far slower than
// its work needs (a saturated core, where its low priority starves it), the
// next batches go in-process; nothing is lost or counted twice.
func TestWriterProcessStarved(t *testing.T) {
	s := openWithWriter(t, filepath.Join(t.TempDir(), "tollgate.db"))
	at := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	if err := s.InsertRecords(t.Context(), batch(0, 100, at)); err != nil {
		t.Fatal(err)
	}
	if n := sqlite.InlinedBatches(s); n != 0 {
		t.Fatalf("%d batches in-process after a prompt answer", n)
	}
	// A slow answer while the gateway's own CPUs are not busy (here: never
	// twice GOMAXPROCS) is not starvation.
	sqlite.SetWriterStarved(s, 0, 0, 2)
	for i := range 2 {
		if err := s.InsertRecords(t.Context(), batch(1000+10*i, 10, at)); err != nil {
			t.Fatal(err)
		}
	}
	if n := sqlite.InlinedBatches(s); n != 0 {
		t.Fatalf("%d batches in-process while the gateway was idle", n)
	}
	sqlite.SetWriterStarved(s, 0, 0, 0) // any answer now counts as starved
	if err := s.InsertRecords(t.Context(), batch(100, 10, at)); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertRecords(t.Context(), batch(110, 10, at)); err != nil {
		t.Fatal(err)
	}
	if got := sqlite.InlinedBatches(s); got != 1 {
		t.Fatalf("%d batches in-process after a starved answer, want 1", got)
	}
	// Once the gateway is calm (here: below twice GOMAXPROCS, i.e. always)
	// at a check, the child takes batches again before starvedFor ends.
	sqlite.SetWriterStarved(s, time.Hour, time.Hour, 2)
	sqlite.SetWriterCalm(s, 0)
	if err := s.InsertRecords(t.Context(), batch(120, 10, at)); err != nil {
		t.Fatal(err)
	}
	if got := sqlite.InlinedBatches(s); got != 1 {
		t.Fatalf("%d batches in-process after the gateway calmed down, want still 1", got)
	}
	if sqlite.WriterPID(s) == 0 {
		t.Fatal("no writer process after the gateway calmed down")
	}
	requireTotals(t, s, at, 150)
}

// TestServeWriterNeedsItsOwnProcess: ServeWriter turns SQLite's mutexes
// off, which a process that has already opened a database must not do; it
// refuses instead of running without them.
func TestServeWriterNeedsItsOwnProcess(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "first.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, w := io.Pipe()
	defer w.Close()
	err = sqlite.ServeWriter(t.Context(), filepath.Join(t.TempDir(), "second.db"), r, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "single-thread") {
		t.Fatalf("ServeWriter after an Open = %v; want the single-thread configuration refused", err)
	}
}
