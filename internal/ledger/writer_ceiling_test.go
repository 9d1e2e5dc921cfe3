package ledger

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// gatedSink blocks every call until open is closed: a database slower than
// the traffic, i.e. the writer past its ceiling.
type gatedSink struct {
	*fakeSink
	open    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (g *gatedSink) InsertRecords(ctx context.Context, recs []Record) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.fakeSink.InsertRecords(ctx, recs)
}

// countHandler counts log records whose message contains sub.
type countHandler struct {
	slog.Handler
	sub string
	mu  *sync.Mutex
	n   *int
}

func (h countHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.sub) {
		h.mu.Lock()
		*h.n++
		h.mu.Unlock()
	}
	return nil
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }

// Past the ceiling, rows go to memory (counted as Overflowed, visible in
// QueueDepth) without Record touching the disk; beyond MaxMemoryRows they
// go to the spill file; one rate-limited warning says so; nothing is lost
// and every row reaches the sink once it catches up.
func TestWriterPastCeiling(t *testing.T) {
	tests := []struct {
		name          string
		rows, maxMem  int
		wantSpilledGE int64
	}{
		{"memory absorbs the burst", 300, 1000, 0},
		{"spill file beyond MaxMemoryRows", 300, 50, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &gatedSink{fakeSink: newFakeSink(), open: make(chan struct{}), entered: make(chan struct{})}
			var mu sync.Mutex
			warned := 0
			o := opts(t, WriterOptions{BatchSize: 10, QueueSize: 20, MaxMemoryRows: tc.maxMem})
			o.Logger = slog.New(countHandler{Handler: slog.DiscardHandler, sub: "writer behind", mu: &mu, n: &warned})
			w := NewWriter(g, o)
			w.Record(rec(0))
			<-g.entered // the loop is stuck in the sink from here on
			for i := 1; i < tc.rows; i++ {
				w.Record(rec(i))
			}
			st := w.Stats()
			if st.Overflowed == 0 || st.Lost != 0 {
				t.Errorf("while stuck: stats %+v, want overflowed rows and none lost", st)
			}
			if tc.wantSpilledGE == 0 && (st.Spilled != 0 || st.QueueDepth < tc.rows-1-o.BatchSize) {
				t.Errorf("while stuck below MaxMemoryRows: stats %+v, want nothing spilled and the rows in QueueDepth", st)
			}
			close(g.open)
			closeW(t, w)
			checkAll(t, g.fakeSink, tc.rows)
			st = w.Stats()
			if st.Spilled < tc.wantSpilledGE || (tc.wantSpilledGE == 0 && st.Spilled != 0) || st.Lost != 0 {
				t.Errorf("after: stats %+v, want spilled >= %d (0 if none expected), none lost", st, tc.wantSpilledGE)
			}
			mu.Lock()
			defer mu.Unlock()
			if warned != 1 {
				t.Errorf("%d 'writer behind' warnings, want exactly 1 (rate-limited)", warned)
			}
		})
	}
}

// limitedSink is a gatedSink that takes batches of up to max rows.
type limitedSink struct {
	*gatedSink
	max int
}

func (l limitedSink) MaxBatch() int { return l.max }

// Behind a slow call, a BatchLimiter sink gets batches that grow with the
// backlog up to its MaxBatch; any other sink never more than BatchSize.
func TestWriterBatchGrowsWithBacklog(t *testing.T) {
	tests := []struct {
		name    string
		limiter bool
		wantMax int
	}{
		{"plain sink", false, 10},
		{"batch limiter", true, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &gatedSink{fakeSink: newFakeSink(), open: make(chan struct{}), entered: make(chan struct{})}
			var sink Sink = g
			if tc.limiter {
				sink = limitedSink{g, 100}
			}
			w := NewWriter(sink, opts(t, WriterOptions{BatchSize: 10, QueueSize: 1000}))
			for i := range 10 {
				w.Record(rec(i))
			}
			<-g.entered
			for i := 10; i < 300; i++ {
				w.Record(rec(i))
			}
			close(g.open)
			closeW(t, w)
			checkAll(t, g.fakeSink, 300)
			g.mu.Lock()
			defer g.mu.Unlock()
			if got := slices.Max(g.batches); got != tc.wantMax {
				t.Errorf("largest batch %d rows (batches %v), want %d", got, g.batches, tc.wantMax)
			}
		})
	}
}
