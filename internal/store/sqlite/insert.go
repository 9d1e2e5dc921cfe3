package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// The ledger's insert path. Where its CPU goes (BenchmarkInsertRealistic,
// docs/perf.md): binding parameters, B-tree inserts into the table and its
// indexes, the commit's WAL writes, and the RETURNING rows read back. The
// common batch has no id that is already stored, so it is inserted without
// RETURNING and every row is aggregated; only a batch in which some row was
// skipped (a replay of rows already stored) is redone the careful way.

// reqCol is one requests column that InsertRecords fills, with its value in
// a record. Values are driver.Value types (int64, not int) so database/sql
// passes them on without reflection.
type reqCol struct {
	name string
	val  func(r *ledger.Record) any
}

// reqCols are the requests columns in insert order. Adding a column (say
// cache_write_tokens) is one line here plus its migration.
var reqCols = []reqCol{
	{"id", func(r *ledger.Record) any { return r.ID }},
	{"time_us", func(r *ledger.Record) any { return r.Time.UnixMicro() }},
	{"key_id", func(r *ledger.Record) any { return r.KeyID }},
	{"key_name", func(r *ledger.Record) any { return r.KeyName }},
	{"end_user", func(r *ledger.Record) any { return r.User }},
	{"endpoint", func(r *ledger.Record) any { return r.Endpoint }},
	{"model", func(r *ledger.Record) any { return r.Model }},
	{"model_used", func(r *ledger.Record) any { return r.ModelUsed }},
	{"upstream", func(r *ledger.Record) any { return r.Upstream }},
	{"stream", func(r *ledger.Record) any { return r.Stream }},
	{"outcome", func(r *ledger.Record) any { return string(r.Outcome) }},
	{"status", func(r *ledger.Record) any { return int64(r.Status) }},
	{"attempts", func(r *ledger.Record) any { return int64(r.Attempts) }},
	{"prompt_tokens", func(r *ledger.Record) any { return r.PromptTokens }},
	{"completion_tokens", func(r *ledger.Record) any { return r.CompletionTokens }},
	{"cached_tokens", func(r *ledger.Record) any { return r.CachedTokens }},
	{"reasoning_tokens", func(r *ledger.Record) any { return r.ReasoningTokens }},
	{"total_tokens", func(r *ledger.Record) any { return r.TotalTokens }},
	{"estimated", func(r *ledger.Record) any { return r.Estimated }},
	{"cost_nano", func(r *ledger.Record) any { return r.CostNanoUSD }},
	{"priced", func(r *ledger.Record) any { return r.Priced }},
	{"duration_ns", func(r *ledger.Record) any { return int64(r.Duration) }},
	{"ttfb_ns", func(r *ledger.Record) any { return int64(r.TTFB) }},
	{"client_ip", func(r *ledger.Record) any { return r.ClientIP }},
	{"error", func(r *ledger.Record) any { return r.Error }},
	{"request_body", func(r *ledger.Record) any { return nullBytes(r.RequestBody) }},
	{"response_body", func(r *ledger.Record) any { return nullBytes(r.ResponseBody) }},
	{"cache_write_tokens", func(r *ledger.Record) any { return r.CacheWriteTokens }},
}

// sumCol is one summed column of usage_hourly and usage_daily, with what a
// record adds to it.
type sumCol struct {
	name string
	val  func(r *ledger.Record) int64
}

// sumCols are the summed aggregate columns before the duration histogram
// (h00..h23). Adding one is one line here plus its migration.
var sumCols = []sumCol{
	{"requests", func(*ledger.Record) int64 { return 1 }},
	{"errors", func(r *ledger.Record) int64 { return b2i(r.Outcome != ledger.OutcomeOK) }},
	{"prompt_tokens", func(r *ledger.Record) int64 { return r.PromptTokens }},
	{"completion_tokens", func(r *ledger.Record) int64 { return r.CompletionTokens }},
	{"cached_tokens", func(r *ledger.Record) int64 { return r.CachedTokens }},
	{"reasoning_tokens", func(r *ledger.Record) int64 { return r.ReasoningTokens }},
	{"cost_nano", func(r *ledger.Record) int64 { return r.CostNanoUSD }},
	{"unpriced", func(r *ledger.Record) int64 { return b2i(store.Unpriced(r)) }},
	{"cache_write_tokens", func(r *ledger.Record) int64 { return r.CacheWriteTokens }},
	{"refused", func(r *ledger.Record) int64 { return b2i(store.Refused(r)) }},
	{"ttfb_ns", func(r *ledger.Record) int64 { return max(0, int64(r.TTFB)) }},
	{"ttfb_n", func(r *ledger.Record) int64 { return b2i(r.TTFB > 0) }},
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// chunkSizes are the row counts statements are prepared for: parsing a
// multi-row statement costs as much as running it, so each size is prepared
// once. A batch is cut into the largest that fit (250 rows: 7x32+16+8+2).
// 32 rows (about 0.3 ms of CPU) is also the longest the writer's goroutine
// runs SQLite before it yields, so a request goroutine on a single P waits
// at most that long; 64-row statements saved no measurable CPU.
var chunkSizes = []int{32, 16, 8, 4, 2, 1}

// sized holds one statement per entry of chunkSizes.
type sized []*sql.Stmt

// pick returns the largest prepared statement for at most n rows.
func (z sized) pick(n int) (int, *sql.Stmt) {
	for i, size := range chunkSizes {
		if size <= n {
			return size, z[i]
		}
	}
	return 1, z[len(z)-1]
}

// inserter holds the prepared statements of InsertRecords.
type inserter struct {
	ins     sized // INSERT ... ON CONFLICT DO NOTHING
	insRet  sized // the same, RETURNING the rows inserted
	upsHour sized
	upsDay  sized

	// unckpt estimates the bytes committed since the last checkpoint.
	unckpt atomic.Int64
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

func prepareInserter(ctx context.Context, db *sql.DB) (*inserter, error) {
	in := &inserter{}
	for _, p := range []struct {
		dst *sized
		q   func(rows int) string
	}{
		{&in.ins, func(n int) string { return insertReqSQL(n, false) }},
		{&in.insRet, func(n int) string { return insertReqSQL(n, true) }},
		{&in.upsHour, func(n int) string { return upsertAggSQL("usage_hourly", "hour", n) }},
		{&in.upsDay, func(n int) string { return upsertAggSQL("usage_daily", "day", n) }},
	} {
		for _, n := range chunkSizes {
			st, err := db.PrepareContext(ctx, p.q(n))
			if err != nil {
				in.close()
				return nil, fmt.Errorf("sqlite: prepare: %w", err)
			}
			*p.dst = append(*p.dst, st)
		}
	}
	return in, nil
}

func (in *inserter) close() error {
	var errs []error
	for _, z := range []sized{in.ins, in.insRet, in.upsHour, in.upsDay} {
		for _, st := range z {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

func insertReqSQL(rows int, returning bool) string {
	names := make([]string, len(reqCols))
	for i, c := range reqCols {
		names[i] = c.name
	}
	q := `INSERT INTO requests (` + strings.Join(names, ", ") + `) VALUES ` + placeholders(rows, len(reqCols)) +
		` ON CONFLICT(id, time_us) DO NOTHING`
	if returning {
		q += ` RETURNING id, time_us`
	}
	return q
}

// aggColNames are the summed columns of usage_hourly, histogram included.
func aggColNames() []string {
	cols := make([]string, 0, len(sumCols)+store.HistBuckets)
	for _, c := range sumCols {
		cols = append(cols, c.name)
	}
	for i := range store.HistBuckets {
		cols = append(cols, fmt.Sprintf("h%02d", i))
	}
	return cols
}

func upsertAggSQL(table, col string, rows int) string {
	cols := aggColNames()
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = c + " = " + c + " + excluded." + c
	}
	return `INSERT INTO ` + table + ` (` + col + `, key_id, model, upstream, end_user, ` + strings.Join(cols, ", ") +
		`) VALUES ` + placeholders(rows, 5+len(cols)) +
		` ON CONFLICT(` + col + `, key_id, model, upstream, end_user) DO UPDATE SET ` + strings.Join(sets, ", ")
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

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// InsertRecords inserts recs, skipping ids already present, and folds the
// rows actually inserted into usage_hourly, usage_daily and key_last_used in
// the same transaction.
func (s *Store) InsertRecords(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	all, err := s.insert(ctx, recs, false)
	if err == nil && !all {
		// Some row was skipped: the batch is (partly) a replay, or repeats
		// an id. Redo it learning from RETURNING which rows went in.
		_, err = s.insert(ctx, recs, true)
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
		// PASSIVE never waits for readers; what a reader still needs is
		// copied by a later call. A failure (SQLITE_BUSY) only means the
		// WAL grows a little longer, so it is not the caller's error.
		_, _ = s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
	return nil
}

// insert runs one transaction. Without checked it inserts and aggregates
// every row, and rolls back reporting false as soon as a row is skipped;
// with checked it aggregates only the rows RETURNING reports.
func (s *Store) insert(ctx context.Context, recs []ledger.Record, checked bool) (all bool, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlite: insert records: %w", err)
	}
	defer func() {
		if err != nil || !all {
			tx.Rollback()
		}
	}()
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
	args := make([]any, 0, chunkSizes[0]*len(reqCols))
	for lo := 0; lo < len(recs); {
		n, st := s.ins.ins.pick(len(recs) - lo)
		if checked {
			_, st = s.ins.insRet.pick(n)
		}
		chunk := recs[lo : lo+n]
		lo += n
		args = args[:0]
		for i := range chunk {
			for _, c := range reqCols {
				args = append(args, c.val(&chunk[i]))
			}
		}
		if checked {
			err = insertReturning(ctx, tx.StmtContext(ctx, st), args, byID, agg)
		} else {
			all, err = insertAll(ctx, tx.StmtContext(ctx, st), args, n)
		}
		if err != nil {
			return false, fmt.Errorf("sqlite: insert records: %w", err)
		}
		if !checked && !all {
			return false, nil
		}
		// SQLite runs on this goroutine; yield between statements so that
		// request goroutines on a busy (or single) CPU wait at most one
		// statement, not a whole batch.
		runtime.Gosched()
	}
	if !checked {
		for i := range recs {
			agg.add(&recs[i])
		}
	}
	if err := s.writeAggs(ctx, tx, agg); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("sqlite: insert records: commit: %w", err)
	}
	return true, nil
}

type rowKey struct {
	id string
	us int64
}

// insertAll runs a plain insert of n rows; false if any was skipped.
func insertAll(ctx context.Context, st *sql.Stmt, args []any, n int) (bool, error) {
	res, err := st.ExecContext(ctx, args...)
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
func insertReturning(ctx context.Context, st *sql.Stmt, args []any, byID map[rowKey]*ledger.Record, agg *aggregator) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var rk rowKey
		if err := rows.Scan(&rk.id, &rk.us); err != nil {
			return err
		}
		if r := byID[rk]; r != nil {
			agg.add(r)
			delete(byID, rk) // a second RETURNING of the same key cannot happen, but never count twice
		}
	}
	return rows.Err()
}

// aggKey identifies one usage_hourly or usage_daily row.
type aggKey struct {
	t                               int64 // hour or day start, unix seconds
	keyID, model, upstream, endUser string
}

// aggVals are the sums of sumCols followed by the histogram counts.
type aggVals []int64

// aggregator sums a batch in memory, so the aggregate tables take one
// upsert per group and batch, not one per row.
type aggregator struct {
	hourly, daily map[aggKey]aggVals
	last          map[string]int64 // newest time_us per key id
}

func newAggregator() *aggregator {
	return &aggregator{hourly: map[aggKey]aggVals{}, daily: map[aggKey]aggVals{}, last: map[string]int64{}}
}

func (a *aggregator) add(r *ledger.Record) {
	k := aggKey{store.HourFloor(r.Time), r.KeyID, r.Model, r.Upstream, r.User}
	addTo(a.hourly, k, r)
	k.t -= k.t % 86400
	addTo(a.daily, k, r)
	if us := r.Time.UnixMicro(); r.KeyID != "" && us > a.last[r.KeyID] {
		a.last[r.KeyID] = us
	}
}

func addTo(m map[aggKey]aggVals, k aggKey, r *ledger.Record) {
	v := m[k]
	if v == nil {
		v = make(aggVals, len(sumCols)+store.HistBuckets)
		m[k] = v
	}
	for i, c := range sumCols {
		v[i] += c.val(r)
	}
	v[len(sumCols)+store.HistBucket(r.Duration)]++
}

func (s *Store) writeAggs(ctx context.Context, tx *sql.Tx, agg *aggregator) error {
	if err := upsertAggs(ctx, tx, agg.hourly, s.ins.upsHour); err != nil {
		return err
	}
	if err := upsertAggs(ctx, tx, agg.daily, s.ins.upsDay); err != nil {
		return err
	}
	for id, us := range agg.last {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_last_used (key_id, time_us) VALUES (?, ?)
			ON CONFLICT(key_id) DO UPDATE SET time_us = max(time_us, excluded.time_us)`, id, us); err != nil {
			return fmt.Errorf("sqlite: key last used: %w", err)
		}
	}
	return nil
}

func upsertAggs(ctx context.Context, tx *sql.Tx, aggs map[aggKey]aggVals, stmts sized) error {
	keys := make([]aggKey, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	ncols := 5 + len(sumCols) + store.HistBuckets
	args := make([]any, 0, chunkSizes[0]*ncols)
	for lo := 0; lo < len(keys); {
		n, st := stmts.pick(len(keys) - lo)
		chunk := keys[lo : lo+n]
		lo += n
		args = args[:0]
		for _, k := range chunk {
			args = append(args, k.t, k.keyID, k.model, k.upstream, k.endUser)
			for _, v := range aggs[k] {
				args = append(args, v)
			}
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlite: upsert usage: %w", err)
		}
		runtime.Gosched()
	}
	return nil
}
