package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/telemetry/repeat"
)

// Sink receives batches of records; the store implements it. InsertRecords
// must skip records whose ID it already holds, so a batch may be retried.
type Sink interface {
	InsertRecords(ctx context.Context, recs []Record) error
}

// BatchLimiter is implemented by sinks that take larger batches more
// cheaply per row. While rows pile up behind a slow sink call, the writer
// then sends up to MaxBatch rows per call instead of BatchSize, so the batch
// grows with the backlog. PostgreSQL upserts one aggregate row per group
// and batch, so 5000-row batches halve its CPU per row; SQLite does not
// implement it, because its commit runs on the gateway's CPU in one
// stretch that grows with the batch.
type BatchLimiter interface {
	MaxBatch() int
}

// WriterOptions tune a Writer. Zero values take the defaults.
type WriterOptions struct {
	BatchSize int // rows per sink call; default 1000
	// FlushInterval is how long a row waits at most, give or take half of
	// it, for its batch to fill; default 250ms. Partial batches are sent
	// only once their oldest row is this old, so at rates that fill a
	// batch within it every batch is full (SQLite pays ~1 µs a row more
	// for a 250-row batch than for a 1000-row one).
	FlushInterval time.Duration
	// QueueSize is the records buffered between Record and the loop;
	// default 2048. The channel is allocated whole (a Record is ~350
	// bytes: 10000 cost 3.4 MB of RSS from the start); rows beyond it
	// wait in the overflow, up to MaxMemoryRows, so a burst still costs
	// no disk write.
	QueueSize int
	// MaxMemoryRows bounds the rows held in memory while the sink fails;
	// beyond it rows go to the spill file. Default 100000.
	MaxMemoryRows int
	// SpillPath is the append-only JSON-lines overflow file; default
	// "tollgate-spill.jsonl" (main puts it next to the SQLite file).
	SpillPath     string
	RetryMin      time.Duration // first backoff after a sink error; default 100ms
	RetryMax      time.Duration // backoff cap; default 5s (rows land within seconds of the database coming back)
	InsertTimeout time.Duration // per sink call; default 30s
	Logger        *slog.Logger  // default: discard
	// Trace, if set, is called before each sink call; the function it
	// returns is called after it with the rows and the error (a tracing
	// span for the ledger write).
	Trace func(ctx context.Context) func(rows int, err error)
}

func (o *WriterOptions) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 250 * time.Millisecond
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 2048
	}
	if o.MaxMemoryRows <= 0 {
		o.MaxMemoryRows = 100_000
	}
	if o.SpillPath == "" {
		o.SpillPath = "tollgate-spill.jsonl"
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Second, o.RetryMin)
	}
	if o.InsertTimeout <= 0 {
		o.InsertTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// WriterStats are the writer's counters, for metrics.
type WriterStats struct {
	Queued            int64         // records handed to Record
	Written           int64         // rows accepted by the sink (replays included)
	Spilled           int64         // rows appended to the spill file
	Replayed          int64         // rows read back from the spill file and accepted
	Lost              int64         // rows dropped: only when the spill file itself fails
	Overflowed        int64         // rows that found the queue full: the sink was slower than the traffic
	Batches           int64         // successful sink calls
	Failures          int64         // failed sink calls
	LastBatchDuration time.Duration // of the last successful sink call
	QueueDepth        int           // rows waiting in memory (channel, overflow and retry buffer)
}

// Writer makes records durable off the request path. Record only enqueues;
// a background loop, started by NewWriter and stopped by Close, batches rows
// to the sink, retries with exponential backoff while it fails, keeps up to
// MaxMemoryRows in memory and spills the rest to disk, and replays the spill
// file once the sink works again (also at start, for a file left by an
// earlier run).
type Writer struct {
	sink     Sink
	maxBatch int // rows per sink call while behind: BatchLimiter or BatchSize
	opts     WriterOptions
	log      *slog.Logger
	spill    *spillFile

	ch       chan Record
	mu       sync.RWMutex // write-held by Close so no Record is mid-send when the loop drains
	closed   bool
	closeReq chan context.Context
	done     chan struct{}
	closeErr error
	// base is the context of sink calls made by the loop; Close cancels it
	// when its own deadline passes, so a hung call cannot outlive Close.
	base       context.Context
	cancelBase context.CancelFunc

	// spillHint is set whenever rows go to the spill file (from Record or
	// the loop), so the loop knows to replay.
	spillHint atomic.Bool

	sinkErrLog *repeat.Limiter

	// overflow holds rows that found ch full, up to MaxMemoryRows, so that
	// Record never writes to disk on the request path; kick wakes the loop
	// to take them.
	ovMu     sync.Mutex
	overflow []Record
	kick     chan struct{}

	queued, written, spilled, replayed, lost, batches, failures, overflowed atomic.Int64
	lastBatch, pendingLen, overflowLen                                      atomic.Int64
}

var _ Recorder = (*Writer)(nil)

// NewWriter starts a writer; call Close to stop it.
func NewWriter(sink Sink, opts WriterOptions) *Writer {
	opts.defaults()
	w := &Writer{
		sink:     sink,
		maxBatch: opts.BatchSize,
		opts:     opts,
		log:      opts.Logger,
		spill:    &spillFile{path: opts.SpillPath},
		ch:       make(chan Record, opts.QueueSize),
		closeReq: make(chan context.Context),
		done:     make(chan struct{}),
		kick:     make(chan struct{}, 1),

		sinkErrLog: repeat.New(10*time.Second, nil),
	}
	if bl, ok := sink.(BatchLimiter); ok {
		w.maxBatch = max(bl.MaxBatch(), opts.BatchSize)
	}
	w.base, w.cancelBase = context.WithCancel(context.Background())
	go w.loop()
	return w
}

// Record enqueues rec. It never blocks on the sink or the disk while the
// rows held in memory are below MaxMemoryRows: with the queue full (the
// sink is slower than the traffic) rec goes to an in-memory overflow that
// the loop takes with its next batch, spilling whatever exceeds
// MaxMemoryRows to the file in one write. Only beyond that bound, and after
// Close, does Record append rec to the spill file itself.
func (w *Writer) Record(rec Record) {
	w.queued.Add(1)
	w.mu.RLock()
	if !w.closed {
		select {
		case w.ch <- rec:
			w.mu.RUnlock()
			// The loop takes queued rows on its tick; a full batch
			// wakes it at once.
			if int64(len(w.ch))+w.pendingLen.Load() >= int64(w.opts.BatchSize) {
				w.wake()
			}
			return
		default:
		}
		if w.park(rec) {
			w.mu.RUnlock()
			return
		}
	}
	w.mu.RUnlock()
	w.spillRows([]Record{rec})
}

// park adds rec to the overflow unless MaxMemoryRows are held there.
func (w *Writer) park(rec Record) bool {
	w.ovMu.Lock()
	if len(w.overflow) >= w.opts.MaxMemoryRows {
		w.ovMu.Unlock()
		return false
	}
	w.overflow = append(w.overflow, rec)
	w.overflowLen.Store(int64(len(w.overflow)))
	w.ovMu.Unlock()
	w.overflowed.Add(1)
	w.wake()
	return true
}

// wake has the loop take what is queued now rather than on its next tick.
func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// takeOverflow moves the overflow into st.pending.
func (w *Writer) takeOverflow(st *loopState) {
	w.ovMu.Lock()
	ov := w.overflow
	w.overflow = nil
	w.overflowLen.Store(0)
	w.ovMu.Unlock()
	st.pending = append(st.pending, ov...)
}

// Stats returns the current counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{
		Queued:            w.queued.Load(),
		Written:           w.written.Load(),
		Spilled:           w.spilled.Load(),
		Replayed:          w.replayed.Load(),
		Lost:              w.lost.Load(),
		Overflowed:        w.overflowed.Load(),
		Batches:           w.batches.Load(),
		Failures:          w.failures.Load(),
		LastBatchDuration: time.Duration(w.lastBatch.Load()),
		QueueDepth:        len(w.ch) + int(w.pendingLen.Load()+w.overflowLen.Load()),
	}
}

// Close flushes every queued row, then replays the spill file, until done
// or ctx ends; rows the sink has not taken by then are left safe in the
// spill file. It returns an error only if rows were lost. Close is
// idempotent; records arriving after it go to the spill file.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return w.closeErr
	}
	w.closed = true
	w.mu.Unlock()
	stop := context.AfterFunc(ctx, w.cancelBase)
	defer stop()
	w.closeReq <- ctx
	<-w.done
	w.cancelBase()
	return w.closeErr
}

func (w *Writer) spillRows(recs []Record) bool {
	if err := w.spill.append(recs); err != nil {
		w.lost.Add(int64(len(recs)))
		w.log.Error("ledger: rows lost: spill file failed", slog.Int("rows", len(recs)), slog.Any("err", err))
		return false
	}
	w.spilled.Add(int64(len(recs)))
	w.spillHint.Store(true)
	return true
}

// loopState is owned by the loop goroutine.
type loopState struct {
	pending []Record
	// oldest is about when the oldest pending row arrived; zero when
	// nothing is pending.
	oldest time.Time
	// batch is the backing array of the last batch, reused by take: flush
	// drops its slice, and growing a fresh one per batch was the writer's
	// largest allocation. At most keepBatches*maxBatch rows are kept.
	batch   []Record
	backoff time.Duration
	retryAt time.Time
	replay  *replayFile
	// behind rate-limits the warning that the sink is past its ceiling.
	warnedAt                        time.Time
	overflowedWarned, spilledWarned int64
}

// keepBatches bounds the batch array take keeps between flushes, in batches.
const keepBatches = 2

// behindWarnEvery is the least time between two "writer behind" warnings.
const behindWarnEvery = time.Minute

func (w *Writer) loop() {
	defer close(w.done)
	w.spillHint.Store(w.spill.pending())
	st := &loopState{}
	// Ticking at half the interval bounds a row's wait to 1.5 intervals.
	tick := time.NewTicker(w.opts.FlushInterval / 2)
	defer tick.Stop()
	base := w.base
	w.work(base, st) // replay a spill file left by an earlier run
	for {
		// Only the first row of a batch wakes the loop (it starts the
		// batch's clock); the rest wait in the channel for the tick, or
		// for Record's wake once they fill a batch. A wake per row cost a
		// goroutine switch per request.
		var first <-chan Record
		if len(st.pending) == 0 {
			first = w.ch
		}
		select {
		case rec := <-first:
			st.pending = append(st.pending, rec)
			w.take(base, st)
		case <-w.kick:
			w.take(base, st)
		case <-tick.C:
			w.take(base, st)
			w.work(base, st)
		case ctx := <-w.closeReq:
			w.finish(ctx, st)
			return
		}
	}
}

// take moves queued and overflowed rows to pending, flushes full batches
// and bounds what is held in memory.
func (w *Writer) take(ctx context.Context, st *loopState) {
	if len(st.pending) <= 1 && cap(st.pending) < cap(st.batch) {
		st.pending = append(st.batch[:0], st.pending...)
	}
	for n := len(w.ch); n > 0; n-- {
		st.pending = append(st.pending, <-w.ch)
	}
	w.takeOverflow(st)
	if c := cap(st.pending); c > cap(st.batch) && c <= keepBatches*w.maxBatch {
		st.batch = st.pending[:0]
	}
	w.pendingLen.Store(int64(len(st.pending)))
	if st.oldest.IsZero() && len(st.pending) > 0 {
		st.oldest = time.Now()
	}
	w.warnBehind(st) // before the flush: the backlog as it arrived
	if len(st.pending) >= w.opts.BatchSize {
		w.flush(ctx, st, true)
	}
	w.bound(st)
}

// warnBehind logs, at most once a minute, that rows found the queue full:
// the traffic is above what the sink takes (its ceiling), so rows pile up
// in memory and then in the spill file until the traffic drops.
func (w *Writer) warnBehind(st *loopState) {
	// A full queue alone is not yet a problem: the next sink call takes a
	// bigger batch. Rows piling up beyond a few batches, or spilled, are.
	ov := w.overflowed.Load()
	if ov == st.overflowedWarned || time.Since(st.warnedAt) < behindWarnEvery ||
		(len(st.pending) <= 4*w.maxBatch && w.spilled.Load() == st.spilledWarned) {
		return
	}
	w.log.Warn("ledger: writer behind: rows arrive faster than the database takes them",
		slog.Int64("overflowed_rows", ov-st.overflowedWarned), slog.Int("rows_in_memory", len(st.pending)),
		slog.Int64("spilled_rows_total", w.spilled.Load()), slog.Int64("last_batch_ms", w.lastBatch.Load()/1e6))
	st.warnedAt, st.overflowedWarned, st.spilledWarned = time.Now(), ov, w.spilled.Load()
}

// work flushes rows that have waited FlushInterval, then replays some of
// the spill file, unless in backoff.
func (w *Writer) work(ctx context.Context, st *loopState) {
	young := len(st.pending) > 0 && time.Since(st.oldest) < w.opts.FlushInterval
	if !young && !w.flush(ctx, st, false) {
		return // the sink failed or is in backoff (which replayBatch checks too)
	}
	// A few batches per tick, so new rows are not kept waiting behind a big replay.
	for range 10 {
		if !w.mayReplay(st) || !w.replayBatch(ctx, st) {
			return
		}
	}
}

// flush sends pending rows in batches (only full ones if full is set, the
// timer takes the rest); false if the sink failed or is in backoff.
func (w *Writer) flush(ctx context.Context, st *loopState, full bool) bool {
	sent := false
	for len(st.pending) > 0 {
		if full && len(st.pending) < w.opts.BatchSize {
			if sent {
				st.oldest = time.Now() // the rest came in while the batch filled
			}
			return true
		}
		if time.Now().Before(st.retryAt) {
			return false
		}
		n := min(len(st.pending), w.maxBatch)
		if !w.insert(ctx, st, st.pending[:n]) {
			return false
		}
		w.written.Add(int64(n))
		st.pending = st.pending[n:]
		w.pendingLen.Store(int64(len(st.pending)))
		sent = true
	}
	st.pending = nil // release the backing array
	st.oldest = time.Time{}
	return !time.Now().Before(st.retryAt)
}

// insert makes one sink call and updates the backoff.
func (w *Writer) insert(ctx context.Context, st *loopState, batch []Record) bool {
	ctx, cancel := context.WithTimeout(ctx, w.opts.InsertTimeout)
	defer cancel()
	start := time.Now()
	var end func(int, error)
	if w.opts.Trace != nil {
		end = w.opts.Trace(ctx)
	}
	err := w.sink.InsertRecords(ctx, batch)
	if end != nil {
		end(len(batch), err)
	}
	if err == nil {
		w.batches.Add(1)
		w.lastBatch.Store(int64(time.Since(start)))
		st.backoff, st.retryAt = 0, time.Time{}
		return true
	}
	w.failures.Add(1)
	st.backoff = min(max(2*st.backoff, w.opts.RetryMin), w.opts.RetryMax)
	st.retryAt = time.Now().Add(st.backoff)
	// A database outage fails every retry: log it once, then once per 10s
	// with the count of repeats.
	w.sinkErrLog.Log(ctx, w.log, slog.LevelWarn, "sink", "ledger: sink failed, will retry",
		slog.Int("rows", len(batch)), slog.Duration("backoff", st.backoff), slog.Any("err", err))
	return false
}

// bound moves rows beyond MaxMemoryRows to the spill file, in one write.
func (w *Writer) bound(st *loopState) {
	if len(st.pending) <= w.opts.MaxMemoryRows {
		return
	}
	// Spill down to below the bound so the next rows do not each cost an fsync.
	keep := max(w.opts.MaxMemoryRows-w.maxBatch, w.opts.MaxMemoryRows/2)
	w.spillRows(st.pending[keep:])
	clear(st.pending[keep:])
	st.pending = st.pending[:keep]
	w.pendingLen.Store(int64(len(st.pending)))
}

// mayReplay reports whether the spill file may hold rows to replay.
func (w *Writer) mayReplay(st *loopState) bool {
	return st.replay != nil || w.spillHint.Load()
}

// replayBatch sends one batch from the spill file; false when there is
// nothing more or the sink failed.
func (w *Writer) replayBatch(ctx context.Context, st *loopState) bool {
	if time.Now().Before(st.retryAt) {
		return false
	}
	if st.replay == nil {
		// Clear the hint first: a spill from now on sets it again.
		w.spillHint.Store(false)
		rf, err := w.spill.openReplay()
		if err != nil {
			w.spillHint.Store(true)
			w.log.Error("ledger: cannot open spill file for replay", slog.Any("err", err))
			return false
		}
		if rf == nil {
			return false
		}
		st.replay = rf
	}
	batch, bad, err := st.replay.next(w.opts.BatchSize)
	if bad > 0 {
		w.lost.Add(int64(bad))
		w.log.Error("ledger: undecodable lines in spill file", slog.Int("lines", bad))
	}
	if err != nil {
		w.log.Error("ledger: spill replay", slog.Any("err", err))
		return false
	}
	if len(batch) > 0 {
		if !w.insert(ctx, st, batch) {
			return false
		}
		w.written.Add(int64(len(batch)))
		w.replayed.Add(int64(len(batch)))
		st.replay.buf = nil
	}
	if st.replay.done() {
		if err := st.replay.close(); err != nil {
			w.log.Error("ledger: finishing spill replay", slog.Any("err", err))
		}
		st.replay = nil
		w.log.Info("ledger: spill file replayed")
	}
	return true
}

// finish runs once at Close: drain the queue, flush and replay until ctx
// ends, then spill what is left.
func (w *Writer) finish(ctx context.Context, st *loopState) {
	for n := len(w.ch); n > 0; n-- { // no sender is left: Close holds closed
		st.pending = append(st.pending, <-w.ch)
	}
	w.takeOverflow(st)
	w.pendingLen.Store(int64(len(st.pending)))
	w.warnBehind(st)
	lostBefore := w.lost.Load()
	for ctx.Err() == nil {
		if w.flush(ctx, st, false) {
			if !w.mayReplay(st) {
				break // everything is in the sink
			}
			if w.replayBatch(ctx, st) {
				continue
			}
			if !w.mayReplay(st) {
				break // replay found nothing more
			}
		}
		// The sink failed (or the spill file did): wait for the backoff, at
		// least RetryMin so a failure that sets none cannot spin.
		t := time.NewTimer(max(time.Until(st.retryAt), w.opts.RetryMin))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if len(st.pending) > 0 {
		w.log.Warn("ledger: sink unavailable at shutdown, rows kept in spill file",
			slog.Int("rows", len(st.pending)), slog.String("path", w.opts.SpillPath))
		w.spillRows(st.pending)
		st.pending = nil
		w.pendingLen.Store(0)
	}
	if st.replay != nil {
		if err := st.replay.close(); err != nil {
			w.log.Error("ledger: closing spill replay", slog.Any("err", err))
		}
	}
	if lost := w.lost.Load() - lostBefore; lost > 0 {
		w.closeErr = fmt.Errorf("ledger: %d rows lost at shutdown: spill file failed", lost)
	}
}
