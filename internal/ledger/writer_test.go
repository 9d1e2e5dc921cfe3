package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSink stores rows like a real store: unique ids, replays skipped. It
// can be told to fail, and remembers batch sizes and duplicate attempts.
type fakeSink struct {
	mu      sync.Mutex
	rows    map[string]Record
	batches []int
	dupes   int
	fail    bool
	delay   time.Duration
}

func newFakeSink() *fakeSink { return &fakeSink{rows: map[string]Record{}} }

func (s *fakeSink) InsertRecords(ctx context.Context, recs []Record) error {
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("database is down")
	}
	s.batches = append(s.batches, len(recs))
	for _, r := range recs {
		if _, ok := s.rows[r.ID]; ok {
			s.dupes++
			continue
		}
		s.rows[r.ID] = r
	}
	return nil
}

func (s *fakeSink) setFail(b bool) {
	s.mu.Lock()
	s.fail = b
	s.mu.Unlock()
}

func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func rec(i int) Record {
	return Record{ID: fmt.Sprintf("req-%05d", i), Time: time.Unix(1_700_000_000+int64(i), 0).UTC(),
		Model: "gpt-4o", Outcome: OutcomeOK, Status: 200, PromptTokens: int64(i), RequestBody: []byte(`{"x":1}`)}
}

func opts(t *testing.T, o WriterOptions) WriterOptions {
	if o.SpillPath == "" {
		o.SpillPath = filepath.Join(t.TempDir(), "spill.jsonl")
	}
	if o.RetryMin == 0 {
		o.RetryMin, o.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	}
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

func closeW(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// checkAll asserts that the sink holds rows 0..n-1, each once, unchanged.
func checkAll(t *testing.T, s *fakeSink, n int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rows) != n {
		t.Fatalf("sink has %d rows, want %d", len(s.rows), n)
	}
	for i := range n {
		want := rec(i)
		got, ok := s.rows[want.ID]
		if !ok {
			t.Fatalf("row %s missing", want.ID)
		}
		if !got.Time.Equal(want.Time) || got.PromptTokens != want.PromptTokens || string(got.RequestBody) != string(want.RequestBody) {
			t.Fatalf("row %s changed: %+v", want.ID, got)
		}
	}
	if s.dupes != 0 {
		t.Errorf("%d rows were inserted twice", s.dupes)
	}
}

func TestWriterBatchesBySize(t *testing.T) {
	s := newFakeSink()
	w := NewWriter(s, opts(t, WriterOptions{BatchSize: 10, FlushInterval: time.Hour}))
	for i := range 25 {
		w.Record(rec(i))
	}
	waitFor(t, "two full batches", func() bool { return s.count() == 20 })
	closeW(t, w)
	checkAll(t, s, 25)
	if fmt.Sprint(s.batches) != "[10 10 5]" {
		t.Errorf("batches = %v, want [10 10 5]", s.batches)
	}
	if st := w.Stats(); st.Queued != 25 || st.Written != 25 || st.Batches != 3 || st.QueueDepth != 0 || st.Lost != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestWriterBatchesByTime(t *testing.T) {
	s := newFakeSink()
	w := NewWriter(s, opts(t, WriterOptions{BatchSize: 1000, FlushInterval: 20 * time.Millisecond}))
	defer closeW(t, w)
	for i := range 3 {
		w.Record(rec(i))
	}
	waitFor(t, "the timed flush", func() bool { return s.count() == 3 })
	if st := w.Stats(); st.LastBatchDuration <= 0 {
		t.Errorf("LastBatchDuration = %v", st.LastBatchDuration)
	}
}

// TestWriterFullBatchesAtRate sends rows at a steady rate on the fake
// clock: a rate that fills a batch within FlushInterval sends only full
// batches, and a slower one sends a partial batch once its oldest row has
// waited FlushInterval, never later than 1.5 intervals.
func TestWriterFullBatchesAtRate(t *testing.T) {
	const interval = 250 * time.Millisecond
	for _, tc := range []struct {
		name      string
		every     time.Duration // between two rows
		wantSizes func(sizes []int) bool
	}{
		{"5000 rows/s: every batch full", 200 * time.Microsecond,
			func(sizes []int) bool { return !slices.ContainsFunc(sizes, func(n int) bool { return n != 1000 }) }},
		{"1000 rows/s: batches of 250-375 rows", time.Millisecond,
			func(sizes []int) bool {
				return !slices.ContainsFunc(sizes, func(n int) bool { return n < 250 || n > 375 })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeSink()
				w := NewWriter(s, opts(t, WriterOptions{BatchSize: 1000, FlushInterval: interval}))
				start := time.Now()
				for i := 0; time.Since(start) < 3*time.Second; i++ {
					w.Record(rec(i))
					time.Sleep(tc.every)
				}
				synctest.Wait()
				s.mu.Lock()
				sizes := slices.Clone(s.batches)
				s.mu.Unlock()
				closeW(t, w)
				if len(sizes) < 6 || !tc.wantSizes(sizes) {
					t.Errorf("batches before Close = %v", sizes)
				}
			})
		})
	}
}

// TestWriterRowWaitsAtMost checks the bound on a lone row's wait.
func TestWriterRowWaitsAtMost(t *testing.T) {
	const interval = 250 * time.Millisecond
	for _, after := range []time.Duration{0, time.Millisecond, 60 * time.Millisecond, 124 * time.Millisecond, 126 * time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeSink()
				w := NewWriter(s, opts(t, WriterOptions{BatchSize: 1000, FlushInterval: interval}))
				defer closeW(t, w)
				time.Sleep(after) // where the row falls between two ticks
				w.Record(rec(0))
				sent := time.Now()
				for s.count() == 0 {
					time.Sleep(time.Millisecond)
				}
				if waited := time.Since(sent); waited < interval || waited > interval*3/2+time.Millisecond {
					t.Errorf("row waited %v; want [%v, %v]", waited, interval, interval*3/2)
				}
			})
		})
	}
}

// TestWriterWakesOncePerBatch: the first row of a batch wakes the loop;
// the next ones wait in the queue for the tick (no goroutine switch per
// request), unless they fill a batch, which wakes it at once.
func TestWriterWakesOncePerBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 250 * time.Millisecond
		s := newFakeSink()
		w := NewWriter(s, opts(t, WriterOptions{BatchSize: 10, FlushInterval: interval}))
		defer closeW(t, w)
		time.Sleep(time.Millisecond) // just after a tick
		w.Record(rec(0))
		synctest.Wait()
		if n := len(w.ch); n != 0 {
			t.Fatalf("first row: %d rows left in the queue; want it taken", n)
		}
		for i := 1; i < 5; i++ {
			w.Record(rec(i))
		}
		synctest.Wait()
		if n := len(w.ch); n != 4 {
			t.Fatalf("%d rows in the queue; want the 4 after the first to wait for the tick", n)
		}
		time.Sleep(interval / 2) // the tick takes them
		synctest.Wait()
		if n, st := len(w.ch), w.Stats(); n != 0 || st.QueueDepth != 5 || s.count() != 0 {
			t.Fatalf("after the tick: %d queued, depth %d, %d written; want 0, 5, 0", n, st.QueueDepth, s.count())
		}
		for i := 5; i < 10; i++ { // the tenth row fills the batch
			w.Record(rec(i))
		}
		synctest.Wait()
		if got := s.count(); got != 10 {
			t.Fatalf("%d rows written; want the full batch of 10 at once", got)
		}
	})
}

func TestWriterCloseFlushes(t *testing.T) {
	s := newFakeSink()
	w := NewWriter(s, opts(t, WriterOptions{BatchSize: 64, FlushInterval: time.Hour}))
	for i := range 1000 {
		w.Record(rec(i))
	}
	closeW(t, w)
	checkAll(t, s, 1000)
	closeW(t, w) // idempotent
}

func TestWriterSurvivesSinkOutage(t *testing.T) {
	tests := []struct {
		name      string
		maxMemory int
		wantSpill bool
	}{
		{"in memory", 100_000, false},
		{"through spill file", 5, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeSink()
			s.setFail(true)
			o := opts(t, WriterOptions{BatchSize: 8, FlushInterval: 5 * time.Millisecond, MaxMemoryRows: tc.maxMemory})
			w := NewWriter(s, o)
			const n = 300
			for i := range n {
				w.Record(rec(i))
				if i%50 == 0 {
					time.Sleep(2 * time.Millisecond) // let the loop see several failures
				}
			}
			waitFor(t, "failures", func() bool { return w.Stats().Failures >= 3 })
			if tc.wantSpill {
				waitFor(t, "spill", func() bool { return w.Stats().Spilled > 0 })
			}
			if s.count() != 0 {
				t.Fatal("rows reached a failing sink")
			}
			s.setFail(false)
			waitFor(t, "recovery", func() bool { return s.count() == n })
			closeW(t, w)
			checkAll(t, s, n)
			st := w.Stats()
			if st.Lost != 0 || (st.Spilled > 0) != tc.wantSpill || st.Replayed != st.Spilled {
				t.Errorf("stats = %+v", st)
			}
			for _, p := range []string{o.SpillPath, o.SpillPath + ".replaying"} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind after replay: %v", p, err)
				}
			}
		})
	}
}

func TestWriterSpillSurvivesRestart(t *testing.T) {
	down := newFakeSink()
	down.setFail(true)
	o := opts(t, WriterOptions{BatchSize: 10, FlushInterval: 5 * time.Millisecond})
	w := NewWriter(down, o)
	for i := range 50 {
		w.Record(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close with the sink down: %v", err)
	}
	if st := w.Stats(); st.Spilled != 50 || st.Lost != 0 {
		t.Fatalf("after shutdown with the sink down: %+v", st)
	}
	w.Record(rec(50)) // after Close: straight to the spill file

	// A new writer (a restarted gateway) replays the file without being asked.
	up := newFakeSink()
	w2 := NewWriter(up, o)
	waitFor(t, "replay at start", func() bool { return up.count() == 51 })
	closeW(t, w2)
	checkAll(t, up, 51)
	if _, err := os.Stat(o.SpillPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spill file not removed: %v", err)
	}
}

func TestWriterReplaySkipsTornLine(t *testing.T) {
	o := opts(t, WriterOptions{FlushInterval: 5 * time.Millisecond})
	sp := &spillFile{path: o.SpillPath}
	if err := sp.append([]Record{rec(0), rec(1)}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(o.SpillPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"ID":"req-00002","Ti`) // a crash mid-write
	f.Close()
	s := newFakeSink()
	w := NewWriter(s, o)
	waitFor(t, "replay", func() bool { return s.count() == 2 })
	closeW(t, w)
	if st := w.Stats(); st.Lost != 1 || st.Replayed != 2 {
		t.Errorf("stats = %+v, want 1 lost (torn line), 2 replayed", st)
	}
}

func TestWriterConcurrentRecord(t *testing.T) {
	s := newFakeSink()
	s.delay = time.Millisecond
	// A tiny queue forces some records down the direct-spill path.
	w := NewWriter(s, opts(t, WriterOptions{BatchSize: 100, QueueSize: 64, FlushInterval: 2 * time.Millisecond}))
	const workers, each = 8, 250
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				w.Record(rec(g*each + i))
			}
		})
	}
	wg.Wait()
	waitFor(t, "all rows", func() bool { return s.count() == workers*each })
	closeW(t, w)
	checkAll(t, s, workers*each)
	if st := w.Stats(); st.Queued != workers*each || st.Lost != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestWriterSpillFailureCountsLost(t *testing.T) {
	s := newFakeSink()
	s.setFail(true)
	o := opts(t, WriterOptions{FlushInterval: 5 * time.Millisecond})
	o.SpillPath = filepath.Join(t.TempDir(), "no-such-dir", "spill.jsonl")
	w := NewWriter(s, o)
	w.Record(rec(0))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err == nil {
		t.Error("Close: want error when rows could not be kept")
	}
	if st := w.Stats(); st.Lost != 1 {
		t.Errorf("Lost = %d, want 1", st.Lost)
	}
}

func TestWriterCloseDeadlineWithHungSink(t *testing.T) {
	s := newFakeSink()
	s.delay = time.Hour // honours ctx only
	o := opts(t, WriterOptions{FlushInterval: 5 * time.Millisecond, InsertTimeout: time.Hour})
	w := NewWriter(s, o)
	for i := range 5 {
		w.Record(rec(i))
	}
	time.Sleep(30 * time.Millisecond) // the loop is now inside the hung call
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a 100ms deadline", d)
	}
	if st := w.Stats(); st.Spilled != 5 || st.Lost != 0 {
		t.Errorf("stats = %+v, want the 5 rows spilled", st)
	}
}

func TestWriterTraceSeesEveryBatch(t *testing.T) {
	var mu sync.Mutex
	rows, calls := 0, 0
	sink := newFakeSink()
	w := NewWriter(sink, WriterOptions{
		BatchSize: 10, FlushInterval: 10 * time.Millisecond, SpillPath: filepath.Join(t.TempDir(), "spill.jsonl"),
		Trace: func(context.Context) func(int, error) {
			return func(n int, err error) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if err == nil {
					rows += n
				}
			}
		},
	})
	for i := range 25 {
		w.Record(Record{ID: fmt.Sprintf("t%d", i), Time: time.Now()})
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if rows != 25 || calls < 3 {
		t.Errorf("traced %d rows in %d calls; want 25 rows in at least 3 batches", rows, calls)
	}
}
