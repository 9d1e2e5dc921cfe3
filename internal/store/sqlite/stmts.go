package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// The statements of the insert path (insert.go) and when they are prepared.

// chunkSizes are the row counts statements are prepared for: parsing a
// multi-row statement costs as much as running it, so each size is prepared
// once. A batch is cut into the largest that fit (250 rows: 7x32+16+8+2).
// 32 rows (about 0.3 ms of CPU) is also the longest the writer's goroutine
// runs SQLite before it yields, so a request goroutine on a single P waits
// at most that long; 64-row statements saved no measurable CPU.
var chunkSizes = []int{32, 16, 8, 4, 2, 1}

// procChunkSizes are chunkSizes in a writer process (Options.InWriterProcess),
// where no request goroutine waits for a statement: a longer statement
// costs less CPU a row (docs/perf.md).
var procChunkSizes = []int{128, 64, 32, 16, 8, 4, 2, 1}

// sized is a family of statements, one per entry of the inserter's sizes,
// each prepared when a chunk of its size first comes. Preparing all of them
// up front (~45 statements, long multi-row ones up to ~1 ms each) cost ~5 ms
// of CPU on every start for statements most workloads never run: 1000-row
// batches with the same columns set use two of them.
type sized struct {
	sql   func(rows int) string
	stmts []driver.Stmt // by index in inserter.sizes; nil until prepared
}

// chunkIndex is the index in in.sizes of the largest size for at most n
// rows.
func (in *inserter) chunkIndex(n int) int {
	for i, size := range in.sizes {
		if size <= n {
			return i
		}
	}
	return len(in.sizes) - 1
}

// chunkSize is the largest chunk size for at most n rows.
func (in *inserter) chunkSize(n int) int { return in.sizes[in.chunkIndex(n)] }

// pick returns the statement of z for the largest chunk size for at most n
// rows, preparing it if needed.
func (in *inserter) pick(ctx context.Context, z *sized, n int) (int, driver.Stmt, error) {
	i := in.chunkIndex(n)
	if z.stmts == nil {
		z.stmts = make([]driver.Stmt, len(in.sizes))
	}
	if z.stmts[i] == nil {
		st, err := in.pc.PrepareContext(ctx, z.sql(in.sizes[i]))
		if err != nil {
			return 0, nil, fmt.Errorf("sqlite: prepare: %w", err)
		}
		z.stmts[i] = st
		in.yield() // a long multi-row statement parses for up to ~1 ms
	}
	return in.sizes[i], z.stmts[i], nil
}

// inserter holds the prepared statements of InsertRecords. They are the
// driver's own statements on the writer's driver connection (sql.Conn.Raw):
// database/sql's per-call work (a connection grab, a Stmt per transaction,
// checking and converting each of the 900 arguments of a 32-row statement)
// cost about 1 µs per row. Only InsertRecords uses them, inside Raw.
type inserter struct {
	conn any                       // the driver connection the statements belong to
	pc   driver.ConnPrepareContext // the same
	nv   []driver.NamedValue       // the arguments of one statement, reused

	rowFams map[uint32]*rowFamily // INSERT INTO request_rows, by mask (rows.go)
	insRet  *rowFamily            // every column, RETURNING the rows inserted
	upsHour sized
	upsDay  sized
	upsZone sized
	insIDs  sized // request_ids entries (ids.go)
	// The single statements are prepared with the connection: preparing them
	// per batch cost CPU, and the parse ran up to 1.2 ms in one stretch in
	// a trace.
	lastUsed  driver.Stmt
	ckpt      driver.Stmt
	shapeFind driver.Stmt
	shapeAdd  driver.Stmt

	// shapes are the shape ids known (shape.go); fresh, those added in
	// the running transaction; ids, each row's of the chunk at hand.
	shapes map[shapeKey]int64
	fresh  []shapeKey
	ids    []int64

	// sizes, ckptBytes and yieldEvery are the defaults, or the writer
	// process's (Options.InWriterProcess).
	sizes      []int
	ckptBytes  int64
	yieldEvery time.Duration
	// unckpt estimates the bytes committed since the last checkpoint.
	unckpt atomic.Int64
	// yielded is when the writer last yielded (yield).
	yielded time.Time
}

func newInserter() *inserter {
	in := &inserter{sizes: chunkSizes, ckptBytes: ckptBytes, yieldEvery: yieldEvery, shapes: map[shapeKey]int64{}}
	in.rowFams, in.insRet = map[uint32]*rowFamily{}, newRowFamily(0, true)
	in.upsHour.sql = func(n int) string { return upsertAggSQL("usage_hourly", "hour", n) }
	in.upsDay.sql = func(n int) string { return upsertAggSQL("usage_daily", "day", n) }
	in.upsZone.sql = upsertZoneSQL
	in.insIDs.sql = insertIDsSQL
	return in
}

// families lists every statement family.
func (in *inserter) families() []*sized {
	out := []*sized{&in.insRet.stmts, &in.upsHour, &in.upsDay, &in.upsZone, &in.insIDs}
	for _, f := range in.rowFams {
		out = append(out, &f.stmts)
	}
	return out
}

// yieldEvery is how long the writer runs SQLite statements before it
// yields. A Gosched after every statement cost about 2 µs per row of
// process CPU (BenchmarkInsertRealistic) when another P was idle: the
// runtime wakes a thread to pick up the yielded goroutine. Yielding by time
// keeps a bound (yieldEvery plus one statement, ~0.2 ms of CPU) and saved
// ~0.5 µs/row; 0 yields after every statement (docs/perf.md).
const yieldEvery = 250 * time.Microsecond

// yield lets other goroutines run if the writer has run for yieldEvery;
// a negative yieldEvery never yields.
func (in *inserter) yield() {
	if in.yieldEvery < 0 {
		return
	}
	if now := time.Now(); now.Sub(in.yielded) >= in.yieldEvery {
		runtime.Gosched()
		in.yielded = time.Now()
	}
}

// ckptBytes is how much committed row data triggers a checkpoint: about
// 100 WAL pages, which take about 0.6 ms of CPU to copy into the database.
// SQLite's own auto-checkpoint (wal_autocheckpoint, 10000 pages) stays as
// a backstop, but copying 10000 pages in one call kept the writer's
// goroutine on the CPU for about 60 ms, which on a single P is a 60 ms stall
// for every request goroutine (the p99 tail at 2000 req/s).
const ckptBytes = 400 << 10

// procCkptBytes is ckptBytes in a writer process (Options.InWriterProcess):
// about 1000 pages, ~6 ms of CPU per checkpoint, which there delays only
// the batch's answer.
const procCkptBytes = 4 << 20

// commitBytes and rowBytes estimate what a batch adds to the WAL: ~11 pages
// every commit writes (page 1, the aggregate, zone and key_last_used leaves,
// the B-trees' right edges), and per row its share of the request_rows
// leaves plus the logged bodies. Measured without the requests_id index
// (migration 00006): 22 frames for 250 rows, 55 for 1000, with 180 bytes a
// row; a row of request_rows (00007) holds about 100. The former single
// estimate of 300 bytes a row, from when every row also had an index entry,
// triggered a checkpoint every ~73 pages of a 1000-row batch instead of ~100.
const commitBytes = 45 << 10

func rowBytes(r *ledger.Record) int64 {
	return int64(100 + len(r.RequestBody) + len(r.ResponseBody) + len(r.Error))
}

// prepare binds the inserter to dc unless it is bound to it, preparing the
// single statements; the families are prepared as used (pick).
// database/sql replaces a connection only after it failed; the statements
// of the old one are dropped, not closed, because closing a statement of a
// closed connection is not safe.
func (in *inserter) prepare(ctx context.Context, dc any) error {
	if in.conn == dc {
		return nil
	}
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return fmt.Errorf("sqlite: driver connection %T cannot prepare", dc)
	}
	in.conn, in.pc = nil, nil
	for _, z := range in.families() {
		z.stmts = nil
	}
	in.lastUsed, in.ckpt, in.shapeFind, in.shapeAdd = nil, nil, nil, nil
	for _, p := range []struct {
		dst *driver.Stmt
		q   string
	}{
		{&in.lastUsed, `INSERT INTO key_last_used (key_id, time_us) VALUES (?, ?)
			ON CONFLICT(key_id) DO UPDATE SET time_us = max(time_us, excluded.time_us)`},
		{&in.ckpt, `PRAGMA wal_checkpoint(PASSIVE)`},
		{&in.shapeFind, shapeFindSQL},
		{&in.shapeAdd, shapeAddSQL},
	} {
		st, err := pc.PrepareContext(ctx, p.q)
		if err != nil {
			in.close()
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = st
	}
	in.conn, in.pc = dc, pc
	return nil
}

// close closes the statements; call it inside Raw on their connection.
func (in *inserter) close() error {
	var errs []error
	for _, z := range in.families() {
		for _, st := range z.stmts {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		z.stmts = nil
	}
	for _, st := range []*driver.Stmt{&in.lastUsed, &in.ckpt, &in.shapeFind, &in.shapeAdd} {
		if *st != nil {
			errs = append(errs, (*st).Close())
		}
		*st = nil
	}
	in.conn, in.pc = nil, nil
	return errors.Join(errs...)
}

// arg appends one statement argument.
func (in *inserter) arg(v any) {
	in.nv = append(in.nv, driver.NamedValue{Ordinal: len(in.nv) + 1, Value: v})
}

// exec runs st with the arguments collected by arg.
func (in *inserter) exec(ctx context.Context, st driver.Stmt) (driver.Result, error) {
	ex, ok := st.(driver.StmtExecContext)
	if !ok {
		return nil, fmt.Errorf("sqlite: statement %T cannot exec", st)
	}
	return ex.ExecContext(ctx, in.nv)
}

func upsertAggSQL(table, col string, rows int) string {
	cols := store.AggColumns()
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = c + " = " + c + " + excluded." + c
	}
	return `INSERT INTO ` + table + ` (` + col + `, key_id, model, upstream, end_user, ` + strings.Join(cols, ", ") +
		`) VALUES ` + placeholders(rows, 5+len(cols)) +
		` ON CONFLICT(` + col + `, key_id, model, upstream, end_user) DO UPDATE SET ` + strings.Join(sets, ", ")
}

// upsertZoneSQL adds rows zone counts to request_zones (store.ZoneCounts).
func upsertZoneSQL(rows int) string {
	return `INSERT INTO request_zones (dim, value, bucket, n) VALUES ` + placeholders(rows, 4) +
		` ON CONFLICT(dim, value, bucket) DO UPDATE SET n = n + excluded.n`
}

// insertIDsSQL lists rows in request_ids. A replayed row's entry went in
// with the row, in the same transaction, hence DO NOTHING.
func insertIDsSQL(rows int) string {
	return `INSERT INTO request_ids (id, time_us) VALUES ` + placeholders(rows, 2) + ` ON CONFLICT DO NOTHING`
}

// placeholders returns "(?,...,?),(...)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	one := "(?" + strings.Repeat(",?", cols-1) + ")"
	var b strings.Builder
	b.Grow(rows * (len(one) + 1))
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	return b.String()
}
