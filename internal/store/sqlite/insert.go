package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// The ledger's insert path. Where its CPU goes (BenchmarkInsertRealistic,
// docs/perf.md): binding parameters, B-tree inserts into the table and its
// indexes, the commit's WAL writes, and the RETURNING rows read back. The
// common batch has no id that is already stored, so it is inserted without
// RETURNING and every row is aggregated; only a batch in which some row was
// skipped (a replay of rows already stored) is redone the careful way.

// chunkSizes are the row counts statements are prepared for: parsing a
// multi-row statement costs as much as running it, so each size is prepared
// once. A batch is cut into the largest that fit (250 rows: 7x32+16+8+2).
// 32 rows (about 0.3 ms of CPU) is also the longest the writer's goroutine
// runs SQLite before it yields, so a request goroutine on a single P waits
// at most that long; 64-row statements saved no measurable CPU.
var chunkSizes = []int{32, 16, 8, 4, 2, 1}

// sized holds one statement per entry of chunkSizes.
type sized []driver.Stmt

// pick returns the largest prepared statement for at most n rows.
func (z sized) pick(n int) (int, driver.Stmt) {
	for i, size := range chunkSizes {
		if size <= n {
			return size, z[i]
		}
	}
	return 1, z[len(z)-1]
}

// inserter holds the prepared statements of InsertRecords. They are the
// driver's own statements on the writer's driver connection (sql.Conn.Raw):
// database/sql's per-call work (a connection grab, a Stmt per transaction,
// checking and converting each of the 900 arguments of a 32-row statement)
// cost about 1 µs per row. Only InsertRecords uses them, inside Raw.
type inserter struct {
	conn any                 // the driver connection the statements belong to
	nv   []driver.NamedValue // the arguments of one statement, reused

	ins     sized     // INSERT ... ON CONFLICT DO NOTHING
	shapers []*shaper // shaped INSERTs, wide first (shape.go)
	insRet  sized     // the same, RETURNING the rows inserted
	upsHour sized
	upsDay  sized
	upsZone sized
	// lastUsed and ckpt are prepared once too: preparing them per batch
	// cost CPU, and the parse ran up to 1.2 ms in one stretch in a trace.
	lastUsed driver.Stmt
	ckpt     driver.Stmt

	// unckpt estimates the bytes committed since the last checkpoint.
	unckpt atomic.Int64
	// yielded is when the writer last yielded (yield).
	yielded time.Time
}

// yieldEvery is how long the writer runs SQLite statements before it
// yields. A Gosched after every statement cost about 2 µs per row of
// process CPU (BenchmarkInsertRealistic) when another P was idle: the
// runtime wakes a thread to pick up the yielded goroutine. Yielding by time
// keeps a bound (yieldEvery plus one statement, ~0.2 ms of CPU) and saved
// ~0.5 µs/row; 0 yields after every statement (docs/perf.md).
const yieldEvery = 250 * time.Microsecond

// yield lets other goroutines run if the writer has run for yieldEvery.
func (in *inserter) yield() {
	if now := time.Now(); now.Sub(in.yielded) >= yieldEvery {
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

// rowBytes roughly estimates what a record adds to the WAL: the fixed
// columns and index entries (~300 bytes measured) plus the logged bodies.
func rowBytes(r *ledger.Record) int64 {
	return int64(300 + len(r.RequestBody) + len(r.ResponseBody) + len(r.Error))
}

// prepare (re)prepares the statements on dc unless they were prepared on
// it. database/sql replaces a connection only after it failed; the
// statements of the old one are dropped, not closed, because closing a
// statement of a closed connection is not safe.
func (in *inserter) prepare(ctx context.Context, dc any) error {
	if in.conn == dc {
		return nil
	}
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return fmt.Errorf("sqlite: driver connection %T cannot prepare", dc)
	}
	in.conn = nil
	type family struct {
		dst *sized
		q   func(rows int) string
	}
	var shaped []family
	for _, sh := range in.shapers {
		shaped = append(shaped, family{&sh.stmts, sh.sql})
	}
	for _, p := range append([]family{
		{&in.ins, func(n int) string { return insertReqSQL(n, false) }},
		{&in.insRet, func(n int) string { return insertReqSQL(n, true) }},
		{&in.upsHour, func(n int) string { return upsertAggSQL("usage_hourly", "hour", n) }},
		{&in.upsDay, func(n int) string { return upsertAggSQL("usage_daily", "day", n) }},
		{&in.upsZone, upsertZoneSQL},
	}, shaped...) {
		*p.dst = (*p.dst)[:0]
		for _, n := range chunkSizes {
			st, err := pc.PrepareContext(ctx, p.q(n))
			if err != nil {
				in.close()
				return fmt.Errorf("sqlite: prepare: %w", err)
			}
			*p.dst = append(*p.dst, st)
			// The first batch prepares ~40 statements, the shaped ones
			// ~1 ms each: yield between them as between inserts.
			in.yield()
		}
	}
	for _, p := range []struct {
		dst *driver.Stmt
		q   string
	}{
		{&in.lastUsed, `INSERT INTO key_last_used (key_id, time_us) VALUES (?, ?)
			ON CONFLICT(key_id) DO UPDATE SET time_us = max(time_us, excluded.time_us)`},
		{&in.ckpt, `PRAGMA wal_checkpoint(PASSIVE)`},
	} {
		st, err := pc.PrepareContext(ctx, p.q)
		if err != nil {
			in.close()
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = st
	}
	in.conn = dc
	return nil
}

// close closes the statements; call it inside Raw on their connection.
func (in *inserter) close() error {
	var errs []error
	stmts := []*sized{&in.ins, &in.insRet, &in.upsHour, &in.upsDay, &in.upsZone}
	for _, sh := range in.shapers {
		stmts = append(stmts, &sh.stmts)
	}
	for _, z := range stmts {
		for _, st := range *z {
			errs = append(errs, st.Close())
		}
		*z = nil
	}
	for _, st := range []*driver.Stmt{&in.lastUsed, &in.ckpt} {
		if *st != nil {
			errs = append(errs, (*st).Close())
		}
		*st = nil
	}
	in.conn = nil
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

func insertReqSQL(rows int, returning bool) string {
	names := make([]string, len(reqCols))
	for i, c := range reqCols {
		names[i] = c.name
	}
	q := `INSERT INTO requests (` + strings.Join(names, ", ") + `) VALUES ` + placeholders(rows, len(reqCols)) +
		` ON CONFLICT(time_us, id) DO NOTHING`
	if returning {
		q += ` RETURNING id, time_us`
	}
	return q
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

// InsertRecords inserts recs, skipping ids already present, and folds the
// rows actually inserted into usage_hourly, usage_daily, key_last_used and
// request_zones in the same transaction.
func (s *Store) InsertRecords(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if s.proc != nil {
		if handled, err := s.proc.insert(ctx, recs); handled {
			return err
		}
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: insert records: %w", err)
	}
	err = conn.Raw(func(dc any) error {
		if err := s.ins.prepare(ctx, dc); err != nil {
			return err
		}
		all, err := s.insert(ctx, dc, recs, false)
		if err == nil && !all {
			// Some row was skipped: the batch is (partly) a replay, or
			// repeats an id. Redo it learning from RETURNING which rows
			// went in.
			_, err = s.insert(ctx, dc, recs, true)
		}
		if err != nil {
			return err
		}
		var n int64
		for i := range recs {
			n += rowBytes(&recs[i])
		}
		if s.ins.unckpt.Add(n) >= ckptBytes {
			s.ins.unckpt.Store(0)
			runtime.Gosched()
			// PASSIVE never waits for readers; what a reader still needs
			// is copied by a later call. A failure (SQLITE_BUSY) only means
			// the WAL grows a little longer, so it is not the caller's error.
			s.ins.nv = s.ins.nv[:0]
			_, _ = s.ins.exec(context.WithoutCancel(ctx), s.ins.ckpt)
		}
		return nil
	})
	conn.Close()
	return err
}

// insert runs one transaction on the driver connection dc. Without checked
// it inserts and aggregates every row, and rolls back reporting false as
// soon as a row is skipped; with checked it aggregates only the rows
// RETURNING reports.
func (s *Store) insert(ctx context.Context, dc any, recs []ledger.Record, checked bool) (all bool, err error) {
	bt, ok := dc.(driver.ConnBeginTx)
	if !ok {
		return false, fmt.Errorf("sqlite: driver connection %T cannot begin", dc)
	}
	tx, err := bt.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return false, fmt.Errorf("sqlite: insert records: %w", err)
	}
	defer func() {
		if err != nil || !all {
			tx.Rollback()
		}
	}()
	// Statements run without the caller's cancellation: with a cancellable
	// context the driver starts a watcher goroutine and a progress handler
	// per statement (about 0.8 µs per row). A statement is short (32 rows);
	// ctx is checked between them.
	octx := ctx
	ctx = context.WithoutCancel(ctx)
	agg := newAggregator()
	var byID map[rowKey]*ledger.Record
	if checked {
		byID = make(map[rowKey]*ledger.Record, len(recs))
		for i := range recs {
			k := rowKey{recs[i].ID, recs[i].Time.UnixMicro()}
			if _, dup := byID[k]; !dup {
				byID[k] = &recs[i]
			}
		}
	}
	in := s.ins
	for lo := 0; lo < len(recs); {
		n, st := in.ins.pick(len(recs) - lo)
		if checked {
			_, st = in.insRet.pick(n)
		}
		chunk := recs[lo : lo+n]
		lo += n
		if err := octx.Err(); err != nil {
			return false, fmt.Errorf("sqlite: insert records: %w", err)
		}
		in.nv = in.nv[:0]
		if sh, shapes := in.shaped(chunk, checked); sh != nil {
			_, st = sh.stmts.pick(n)
			sh.args(in, chunk, shapes)
		} else {
			for i := range chunk {
				for _, c := range reqCols {
					in.arg(c.val(&chunk[i]))
				}
			}
		}
		if checked {
			err = in.insertReturning(ctx, st, byID, agg)
		} else {
			all, err = in.insertAll(ctx, st, n)
		}
		if err != nil {
			return false, fmt.Errorf("sqlite: insert records: %w", err)
		}
		if !checked && !all {
			return false, nil
		}
		// SQLite runs on this goroutine; yield between statements so that
		// request goroutines on a busy (or single) CPU wait at most about
		// yieldEvery plus one statement, not a whole batch.
		in.yield()
	}
	if !checked {
		for i := range recs {
			agg.add(&recs[i])
		}
	}
	if err := in.writeAggs(ctx, agg); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlite: insert records: commit: %w", err)
	}
	return true, nil
}

// shaped returns the first shaped family chunk fits and its shape count;
// nil for the plain statement (always on the checked path).
func (in *inserter) shaped(chunk []ledger.Record, checked bool) (*shaper, int) {
	if checked {
		return nil, 0
	}
	for _, sh := range in.shapers {
		if n, ok := sh.find(chunk); ok {
			return sh, n
		}
	}
	return nil, 0
}

type rowKey struct {
	id string
	us int64
}

// insertAll runs a plain insert of n rows; false if any was skipped.
func (in *inserter) insertAll(ctx context.Context, st driver.Stmt, n int) (bool, error) {
	res, err := in.exec(ctx, st)
	if err != nil {
		return false, err
	}
	got, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return got == int64(n), nil
}

// insertReturning runs an insert ... RETURNING and aggregates the rows
// reported.
func (in *inserter) insertReturning(ctx context.Context, st driver.Stmt, byID map[rowKey]*ledger.Record, agg *aggregator) error {
	q, ok := st.(driver.StmtQueryContext)
	if !ok {
		return fmt.Errorf("sqlite: statement %T cannot query", st)
	}
	rows, err := q.QueryContext(ctx, in.nv)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	for {
		if err := rows.Next(dest); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		id, _ := dest[0].(string)
		us, _ := dest[1].(int64)
		rk := rowKey{id, us}
		if r := byID[rk]; r != nil {
			agg.add(r)
			delete(byID, rk) // a second RETURNING of the same key cannot happen, but never count twice
		}
	}
}

func (in *inserter) writeAggs(ctx context.Context, agg *aggregator) error {
	agg.fold()
	if err := in.upsertAggs(ctx, agg.hourly, in.upsHour); err != nil {
		return err
	}
	if err := in.upsertAggs(ctx, agg.daily, in.upsDay); err != nil {
		return err
	}
	if err := in.upsertZones(ctx, agg.zones); err != nil {
		return err
	}
	for id, us := range agg.last {
		in.nv = in.nv[:0]
		in.arg(id)
		in.arg(us)
		if _, err := in.exec(ctx, in.lastUsed); err != nil {
			return fmt.Errorf("sqlite: key last used: %w", err)
		}
	}
	return nil
}

func (in *inserter) upsertAggs(ctx context.Context, aggs map[aggKey]aggVals, stmts sized) error {
	keys := make([]aggKey, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	for lo := 0; lo < len(keys); {
		n, st := stmts.pick(len(keys) - lo)
		chunk := keys[lo : lo+n]
		lo += n
		in.nv = in.nv[:0]
		for _, k := range chunk {
			in.arg(k.t)
			in.arg(k.keyID)
			in.arg(k.model)
			in.arg(k.upstream)
			in.arg(k.endUser)
			for _, v := range aggs[k] {
				in.arg(v)
			}
		}
		if _, err := in.exec(ctx, st); err != nil {
			return fmt.Errorf("sqlite: upsert usage: %w", err)
		}
		in.yield()
	}
	return nil
}

// upsertZones writes a batch's zone counts: a handful of rows per batch.
func (in *inserter) upsertZones(ctx context.Context, zones store.ZoneCounts) error {
	keys := make([]store.Zone, 0, len(zones))
	for z := range zones {
		keys = append(keys, z)
	}
	for lo := 0; lo < len(keys); {
		n, st := in.upsZone.pick(len(keys) - lo)
		in.nv = in.nv[:0]
		for _, z := range keys[lo : lo+n] {
			in.arg(int64(z.Dim))
			in.arg(z.Value)
			in.arg(z.Bucket)
			in.arg(zones[z])
		}
		lo += n
		if _, err := in.exec(ctx, st); err != nil {
			return fmt.Errorf("sqlite: upsert zones: %w", err)
		}
		in.yield()
	}
	return nil
}
