package sqlite

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// The writer process. SQLite is a library: its inserts, commits and
// checkpoint fsyncs run on the goroutine that calls it, and on a gateway
// with one CPU that goroutine holds the only P the request goroutines have
// (docs/perf.md: the p99 tail at 2000 req/s was the writer's CPU stretches
// and the checkpoint's fsyncs, not the requests' own work). So by default
// the ledger's inserts run in a child process, the same binary started as
// `tollgate ledger-writer` (PostgreSQL's checkpointer and WAL writer are
// processes for the same reason): the kernel preempts it for request
// threads at a granularity Go's scheduler cannot, and its blocking system
// calls hold nobody's P. The parent keeps everything else (readers, keys,
// migrations) and waits for each batch's answer on a pipe, which parks its
// goroutine without holding a P.
//
// Protocol (stdin and stdout of the child), one batch at a time:
//
//	parent → child: uint32 length (little endian), ledger wire batch
//	child → parent: uint32 length, one status byte (0 ok, 1 error), error text
//
// The child ends when its stdin closes. Any failure of the process (it
// cannot start, dies, answers garbage) makes the batch go through the
// in-process path instead; inserts are idempotent (a row already stored is
// skipped and not counted again), so a batch the child committed before it
// died is not stored twice.

// WriterCommand returns the command that runs ServeWriter on the database
// at path; its stdin and stdout are set by the store.
type WriterCommand func(path string) *exec.Cmd

// maxFrame bounds one frame in either direction: a batch is at most a few
// thousand rows of a few KB (bodies are truncated before they reach the
// ledger), so anything larger is corruption.
const maxFrame = 256 << 20

// A writer process that answers slower than 10,000 rows a second while the
// gateway itself keeps its CPUs busy is starved: it runs at the lowest
// priority (SCHED_IDLE, nice 19), so request threads always go first, and on
// a saturated core it gets well under 2% of the CPU. Batches then go
// in-process for starvedFor, where
// Go's scheduler gives the ledger a share of the CPU, as before the writer
// process existed; otherwise the ledger would fall behind and pile rows up in
// memory (docs/perf.md). A slow answer alone is not enough: at 2000 req/s on
// one core, batches preempted by every request and waiting on a checkpoint's
// fsyncs came back past 50 ms while the gateway used a third of its CPU, and
// taking that for starvation brought the in-process tail back.
const (
	// 100 µs a row: at 5000 rows/s on one core the gateway uses 70-90% of
	// it and the child, working in the gaps, answered 1000 rows in 55-145 ms;
	// 25 µs a row took that for starvation and brought SQLite's fsyncs
	// back into the gateway (p99 8.5 ms). Past 10,000 rows/s per core the
	// gateway is near saturation anyway, where in-process is the plan.
	starvedPerRow = 100 * time.Microsecond
	starvedMin    = 50 * time.Millisecond
	starvedBusy   = 0.75 // the gateway's CPU use, in CPUs per GOMAXPROCS, while it waited
	starvedFor    = 10 * time.Second
	// calmEvery: a gateway below starvedBusy for a second gets its child
	// back before starvedFor ends.
	calmEvery = time.Second
)

// writerRetry is how long the store inserts in-process after the writer
// process failed, before it starts a new one.
const writerRetry = 5 * time.Second

// writerProc is the parent's end of the writer process.
type writerProc struct {
	newCmd WriterCommand
	path   string
	log    *slog.Logger
	retry  time.Duration // writerRetry; tests shorten it

	// starvedPerRow, starvedMin and starvedBusy, which tests change
	starvedPerRow, starvedMin time.Duration
	starvedBusy               float64

	mu      sync.Mutex // one batch at a time, like the single writer connection
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has been waited for
	stdin   *os.File
	stdout  *os.File
	rd      *bufio.Reader
	buf     []byte
	retryAt time.Time // no new process before this, after a failure
	// inlineUntil: batches go in-process until then (a starved process);
	// inlined counts them.
	inlineUntil time.Time
	inlined     int
	// calmEvery: while in-process, how often the gateway's CPU use is
	// checked (calmed); calmAt and calmCPU are the last check.
	calmEvery time.Duration
	calmAt    time.Time
	calmCPU   time.Duration
	logged    time.Time // last failure logged: at most one a minute
}

// insert sends recs to the writer process. handled is false when no process
// could take the batch; the caller inserts it in-process. With handled
// true, err is the child's answer (or ctx's error).
func (p *writerProc) insert(ctx context.Context, recs []ledger.Record) (handled bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Before(p.inlineUntil) {
		if !p.calmed(now) {
			p.inlined++
			return false, nil
		}
		p.inlineUntil = time.Time{}
	}
	if p.cmd == nil {
		if time.Now().Before(p.retryAt) {
			return false, nil
		}
		if err := p.start(); err != nil {
			p.fail("start", err)
			return false, nil
		}
	}
	p.buf = append(p.buf[:0], 0, 0, 0, 0)
	p.buf = ledger.AppendWireBatch(p.buf, recs)
	if len(p.buf)-4 > maxFrame {
		return false, nil // cannot be sent; the in-process path can insert it
	}
	binary.LittleEndian.PutUint32(p.buf, uint32(len(p.buf)-4))
	if _, err := p.stdin.Write(p.buf); err != nil {
		p.fail("send", err)
		return false, nil
	}
	sent, cpu0 := time.Now(), processCPU()
	stop := context.AfterFunc(ctx, func() { p.stdout.SetReadDeadline(time.Now()) })
	answer, err := p.answer()
	p.noteStarved(len(recs), sent, cpu0)
	if !stop() {
		// ctx ended while we waited and the read deadline is (being) set:
		// this process's pipe is done for. The batch may still commit in
		// it; a retry of it is idempotent.
		p.stop()
		if err == nil {
			return true, answer
		}
		return true, fmt.Errorf("sqlite: writer process: %w", ctx.Err())
	}
	if err != nil {
		p.fail("answer", err)
		return false, nil
	}
	return true, answer
}

// noteStarved switches batches to in-process when the answer to rows rows,
// sent at sent with the process at cpu0 of CPU, came too slowly while the
// gateway was busy.
func (p *writerProc) noteStarved(rows int, sent time.Time, cpu0 time.Duration) {
	now, cpu := time.Now(), processCPU()
	took := now.Sub(sent)
	busy := float64(cpu-cpu0) / float64(took) / float64(runtime.GOMAXPROCS(0))
	if took <= max(p.starvedMin, time.Duration(rows)*p.starvedPerRow) || busy < p.starvedBusy {
		return
	}
	p.inlineUntil = now.Add(starvedFor)
	p.calmAt, p.calmCPU = now, cpu
	if now.Sub(p.logged) >= time.Minute {
		p.logged = now
		p.log.Warn("ledger writer process starved for CPU; inserting in-process for a while",
			slog.Int("rows", rows), slog.Duration("took", took), slog.Float64("gateway_cpu_busy", busy),
			slog.Duration("for", starvedFor))
	}
}

// calmed reports, at most once per calmEvery, whether the gateway used
// less than starvedBusy of its CPUs since the last check: a burst that
// starved the child (a load test's closed-loop warm-up) need not keep the
// ledger's fsyncs in the gateway for all of starvedFor.
func (p *writerProc) calmed(now time.Time) bool {
	if now.Sub(p.calmAt) < p.calmEvery {
		return false
	}
	cpu := processCPU()
	busy := float64(cpu-p.calmCPU) / float64(now.Sub(p.calmAt)) / float64(runtime.GOMAXPROCS(0))
	p.calmAt, p.calmCPU = now, cpu
	return busy < p.starvedBusy
}

// answer reads one answer frame: nil for ok, the child's error otherwise.
// The returned error is about the frame itself (the process failed).
func (p *writerProc) answer() (childErr error, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(p.rd, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || n > 64<<10 {
		return nil, fmt.Errorf("answer frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.rd, b); err != nil {
		return nil, err
	}
	switch b[0] {
	case 0:
		return nil, nil
	case 1:
		return fmt.Errorf("sqlite: writer process: %s", b[1:]), nil
	default:
		return nil, fmt.Errorf("answer status %d", b[0])
	}
}

func (p *writerProc) start() error {
	cmd := p.newCmd(p.path)
	inR, stdin, err := os.Pipe()
	if err != nil {
		return err
	}
	if _, err := growPipe(stdin); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		p.log.Debug("ledger writer process: pipe keeps its default size", slog.String("error", err.Error()))
	}
	r, w, err := os.Pipe() // an *os.File, so a read can be given a deadline
	if err != nil {
		inR.Close()
		stdin.Close()
		return err
	}
	cmd.Stdin, cmd.Stdout = inR, w
	err = cmd.Start()
	inR.Close()
	w.Close()
	if err != nil {
		stdin.Close()
		r.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	p.cmd, p.done, p.stdin, p.stdout, p.rd = cmd, done, stdin, r, bufio.NewReaderSize(r, 512)
	return nil
}

// fail stops the process after a failure and inserts in-process for
// writerRetry.
func (p *writerProc) fail(what string, err error) {
	p.stop()
	p.retryAt = time.Now().Add(p.retry)
	if now := time.Now(); now.Sub(p.logged) >= time.Minute {
		p.logged = now
		p.log.Warn("ledger writer process failed; inserting in-process for a while", slog.String("step", what),
			slog.String("error", err.Error()), slog.Duration("retry_in", p.retry))
	}
}

// stop ends the process: closing stdin lets it finish and exit; one that
// does not within a few seconds is killed.
func (p *writerProc) stop() {
	if p.cmd == nil {
		return
	}
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.stdout.Close()
	p.cmd, p.done, p.stdin, p.stdout, p.rd = nil, nil, nil, nil, nil
}

// warm starts the process ahead of the first batch.
func (p *writerProc) warm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		if err := p.start(); err != nil {
			p.fail("start", err)
		}
	}
}

// close stops the process for good.
func (p *writerProc) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stop()
	p.retryAt = time.Now().Add(100 * 365 * 24 * time.Hour)
}

// pid is the running writer process's id, 0 when none (tests).
func (p *writerProc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// ServeWriter is the writer process: it opens the database at path and
// inserts the batches read from in, answering each on out, until in ends.
// The caller (tollgate ledger-writer) must ignore SIGINT and SIGTERM: the
// parent drains its ledger through this process when it is asked to stop,
// and ends it by closing in. It must be the process's first and only use
// of SQLite: it turns SQLite's mutexes off (singleThread), which fails once
// a database has been opened.
func ServeWriter(ctx context.Context, path string, in io.Reader, out io.Writer) error {
	if err := singleThread(); err != nil {
		return fmt.Errorf("sqlite: writer process: %w", err)
	}
	s, err := OpenWith(ctx, path, Options{InWriterProcess: true})
	if err != nil {
		return err
	}
	defer s.Close()
	// The process's whole memory is this connection: a 1 MB page cache
	// holds the B-trees' right edges and the current hour's aggregate rows
	// that appending touches.
	if _, err := s.w.ExecContext(ctx, `PRAGMA cache_size(-1000)`); err != nil {
		return fmt.Errorf("sqlite: writer process: %w", err)
	}
	// Open the writer connection now, with its checkpoint and last-used
	// statements; each insert statement is prepared when a chunk of its
	// size first comes (stmts.go).
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: writer process: %w", err)
	}
	err = conn.Raw(func(dc any) error { return s.ins.prepare(ctx, dc) })
	conn.Close()
	if err != nil {
		return fmt.Errorf("sqlite: writer process: %w", err)
	}
	if f, ok := in.(*os.File); ok {
		in = pollable(f)
	}
	rd := bufio.NewReaderSize(in, 64<<10)
	wr := bufio.NewWriterSize(out, 512)
	var (
		frame []byte
		recs  []ledger.Record
		hdr   [4]byte
	)
	for {
		if _, err := io.ReadFull(rd, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("sqlite: writer process: read: %w", err)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > maxFrame {
			return fmt.Errorf("sqlite: writer process: frame of %d bytes", n)
		}
		if cap(frame) < int(n) {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(rd, frame); err != nil {
			return fmt.Errorf("sqlite: writer process: read: %w", err)
		}
		clear(recs)
		recs, err = ledger.ReadWireBatch(recs[:0], frame)
		if err == nil {
			err = s.InsertRecords(ctx, recs)
		}
		if err := writeAnswer(wr, err); err != nil {
			return fmt.Errorf("sqlite: writer process: write: %w", err)
		}
	}
}

func writeAnswer(w *bufio.Writer, insErr error) error {
	msg := []byte{0}
	if insErr != nil {
		msg = append([]byte{1}, insErr.Error()...)
		msg = msg[:min(len(msg), 4096)]
	}
	var hdr [4]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(msg)))
	w.Write(hdr[:])
	w.Write(msg)
	return w.Flush()
}
