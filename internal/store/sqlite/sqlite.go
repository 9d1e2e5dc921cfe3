// Package sqlite implements store.Store on an embedded SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode: one writer connection, a small pool of
// readers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// temp_store(MEMORY) keeps statement journals of multi-row upserts off disk;
// cache_size(-32000) is a 32 MB page cache per connection.
const pragmas = "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)" +
	"&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-32000)&_pragma=wal_autocheckpoint(10000)"

// The writer takes the write lock at BEGIN, so a transaction never fails
// half way on a lock upgrade; readers are query-only.
const (
	writerOpts = "&_txlock=immediate"
	readerOpts = "&_pragma=query_only(1)"
)

// Store is a store.Store backed by one SQLite file.
type Store struct {
	w *sql.DB // the single writer: SQLite allows one write transaction at a time
	r *sql.DB // readers: WAL lets them run beside the writer

	// Statements of InsertRecords, prepared once per row count: parsing a
	// multi-row statement costs as much as running it.
	insReq, upsHour, upsDay sized

	usage *store.UsageCache // per-bucket sums for Usage
}

// chunkSizes are the row counts statements are prepared for. A batch is cut
// into the largest that fit, so any batch takes at most a handful of
// statements (250 rows: 64+64+64+32+16+8+2, not 3 + 58 single rows).
var chunkSizes = []int{64, 32, 16, 8, 4, 2, 1}

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

var _ store.Store = (*Store)(nil)

// Open opens (creating it on first start) the SQLite database at path and
// applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	dsn := "file:" + path + pragmas
	w, err := sql.Open("sqlite", dsn+writerOpts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn+readerOpts)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open readers %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &Store{w: w, r: r, usage: store.NewUsageCache(store.UsageCacheRows)}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst *sized
		q   func(rows int) string
	}{
		{&s.insReq, insertReqSQL},
		{&s.upsHour, func(n int) string { return upsertAggSQL("usage_hourly", "hour", n) }},
		{&s.upsDay, func(n int) string { return upsertAggSQL("usage_daily", "day", n) }},
	} {
		for _, n := range chunkSizes {
			st, err := s.w.PrepareContext(ctx, p.q(n))
			if err != nil {
				return fmt.Errorf("sqlite: prepare: %w", err)
			}
			*p.dst = append(*p.dst, st)
		}
	}
	return nil
}

// Migrate applies pending migrations to the database at path and closes it.
func Migrate(ctx context.Context, path string) error {
	s, err := Open(ctx, path)
	if err != nil {
		return err
	}
	return s.Close()
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	for _, z := range []sized{s.insReq, s.upsHour, s.upsDay} {
		for _, st := range z {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

const recordCols = `id, time_us, key_id, key_name, end_user, endpoint, model, model_used, upstream, stream,
	outcome, status, attempts, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
	total_tokens, estimated, cost_nano, priced, duration_ns, ttfb_ns, client_ip, error, request_body, response_body, cache_write_tokens`

// aggKey identifies one usage_hourly or usage_daily row.
type aggKey struct {
	t                               int64 // hour or day start, unix seconds
	keyID, model, upstream, endUser string
}

type aggVal struct {
	t    store.UsageTotals
	hist [store.HistBuckets]int64
}

// chunkRows is the most rows of one statement.
const chunkRows = 64

const recordNCols = 28

func insertReqSQL(rows int) string {
	return `INSERT INTO requests (` + recordCols + `) VALUES ` + placeholders(rows, recordNCols) +
		` ON CONFLICT(id, time_us) DO NOTHING RETURNING id, time_us`
}

// InsertRecords inserts recs, skipping ids already present, and folds the
// rows actually inserted (as reported by RETURNING) into usage_hourly and
// key_last_used in the same transaction. Multi-row statements keep the
// statement count, which dominates the cost, near two per 500 rows.
func (s *Store) InsertRecords(ctx context.Context, recs []ledger.Record) (err error) {
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: insert records: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	type rowKey struct {
		id string
		us int64
	}
	byID := make(map[rowKey]*ledger.Record, len(recs))
	for i := range recs {
		k := rowKey{recs[i].ID, recs[i].Time.UnixMicro()}
		if _, dup := byID[k]; !dup {
			byID[k] = &recs[i]
		}
	}
	aggs := make(map[aggKey]*aggVal)  // hourly
	daily := make(map[aggKey]*aggVal) // the same, per UTC day
	last := make(map[string]int64)
	args := make([]any, 0, chunkRows*recordNCols)
	for lo := 0; lo < len(recs); {
		n, st := s.insReq.pick(len(recs) - lo)
		chunk := recs[lo : lo+n]
		lo += n
		args = args[:0]
		for i := range chunk {
			r := &chunk[i]
			args = append(args, r.ID, r.Time.UnixMicro(), r.KeyID, r.KeyName, r.User, r.Endpoint, r.Model, r.ModelUsed,
				r.Upstream, r.Stream, string(r.Outcome), r.Status, r.Attempts, r.PromptTokens, r.CompletionTokens,
				r.CachedTokens, r.ReasoningTokens, r.TotalTokens, r.Estimated, r.CostNanoUSD, r.Priced,
				int64(r.Duration), int64(r.TTFB), r.ClientIP, r.Error, nullBytes(r.RequestBody), nullBytes(r.ResponseBody),
				r.CacheWriteTokens)
		}
		rows, err := tx.StmtContext(ctx, st).QueryContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("sqlite: insert records: %w", err)
		}
		for rows.Next() {
			var rk rowKey
			if err := rows.Scan(&rk.id, &rk.us); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: insert records: %w", err)
			}
			r := byID[rk]
			if r == nil {
				continue
			}
			k := aggKey{store.HourFloor(r.Time), r.KeyID, r.Model, r.Upstream, r.User}
			addRecord(aggs, k, r)
			k.t -= k.t % 86400
			addRecord(daily, k, r)
			if us := r.Time.UnixMicro(); r.KeyID != "" && us > last[r.KeyID] {
				last[r.KeyID] = us
			}
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("sqlite: insert records: %w", err)
		}
		// SQLite runs on this goroutine; yield between statements so that
		// request goroutines on a busy (or single) CPU wait at most one
		// statement, not a whole batch.
		runtime.Gosched()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: insert records: %w", err)
		}
	}
	if err := s.upsertAggs(ctx, tx, aggs, s.upsHour); err != nil {
		return err
	}
	if err := s.upsertAggs(ctx, tx, daily, s.upsDay); err != nil {
		return err
	}
	for id, us := range last {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_last_used (key_id, time_us) VALUES (?, ?)
			ON CONFLICT(key_id) DO UPDATE SET time_us = max(time_us, excluded.time_us)`, id, us); err != nil {
			return fmt.Errorf("sqlite: key last used: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: insert records: commit: %w", err)
	}
	return nil
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

func addRecord(m map[aggKey]*aggVal, k aggKey, r *ledger.Record) {
	a := m[k]
	if a == nil {
		a = &aggVal{}
		m[k] = a
	}
	a.t.Requests++
	if r.Outcome != ledger.OutcomeOK {
		a.t.Errors++
	}
	a.t.PromptTokens += r.PromptTokens
	a.t.CompletionTokens += r.CompletionTokens
	a.t.CachedTokens += r.CachedTokens
	a.t.ReasoningTokens += r.ReasoningTokens
	a.t.CostNanoUSD += r.CostNanoUSD
	a.t.CacheWriteTokens += r.CacheWriteTokens
	if store.Unpriced(r) {
		a.t.Unpriced++
	}
	if store.Refused(r) {
		a.t.Refused++
	}
	a.hist[store.HistBucket(r.Duration)]++
}

// aggCols are the summed columns of usage_hourly.
func aggCols() []string {
	cols := slices.Clone(store.AggSumColumns)
	for i := range store.HistBuckets {
		cols = append(cols, fmt.Sprintf("h%02d", i))
	}
	return cols
}

func upsertAggSQL(table, col string, rows int) string {
	cols := aggCols()
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = c + " = " + c + " + excluded." + c
	}
	return `INSERT INTO ` + table + ` (` + col + `, key_id, model, upstream, end_user, ` + strings.Join(cols, ", ") +
		`) VALUES ` + placeholders(rows, 5+len(cols)) +
		` ON CONFLICT(` + col + `, key_id, model, upstream, end_user) DO UPDATE SET ` + strings.Join(sets, ", ")
}

func (s *Store) upsertAggs(ctx context.Context, tx *sql.Tx, aggs map[aggKey]*aggVal, stmts sized) error {
	keys := make([]aggKey, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	ncols := 5 + len(aggCols())
	args := make([]any, 0, chunkRows*ncols)
	for lo := 0; lo < len(keys); {
		n, st := stmts.pick(len(keys) - lo)
		chunk := keys[lo : lo+n]
		lo += n
		args = args[:0]
		for _, k := range chunk {
			a := aggs[k]
			args = append(args, k.t, k.keyID, k.model, k.upstream, k.endUser,
				a.t.Requests, a.t.Errors, a.t.PromptTokens, a.t.CompletionTokens, a.t.CachedTokens,
				a.t.ReasoningTokens, a.t.CostNanoUSD, a.t.Unpriced, a.t.CacheWriteTokens, a.t.Refused)
			for _, c := range a.hist {
				args = append(args, c)
			}
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlite: upsert usage: %w", err)
		}
		runtime.Gosched()
	}
	return nil
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(sc scanner) (ledger.Record, error) {
	var r ledger.Record
	var us, dur, ttfb int64
	var outcome string
	err := sc.Scan(&r.ID, &us, &r.KeyID, &r.KeyName, &r.User, &r.Endpoint, &r.Model, &r.ModelUsed, &r.Upstream,
		&r.Stream, &outcome, &r.Status, &r.Attempts, &r.PromptTokens, &r.CompletionTokens, &r.CachedTokens,
		&r.ReasoningTokens, &r.TotalTokens, &r.Estimated, &r.CostNanoUSD, &r.Priced, &dur, &ttfb, &r.ClientIP,
		&r.Error, &r.RequestBody, &r.ResponseBody, &r.CacheWriteTokens)
	r.Time = time.UnixMicro(us).UTC()
	r.Outcome = ledger.Outcome(outcome)
	r.Duration, r.TTFB = time.Duration(dur), time.Duration(ttfb)
	return r, err
}

// ListLogs returns rows newest first, filtered, one page at a time.
func (s *Store) ListLogs(ctx context.Context, f store.LogFilter) ([]ledger.Record, string, error) {
	limit := store.ClampLimit(f.Limit)
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if !f.Since.IsZero() {
		add("time_us >= ?", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add("time_us < ?", f.Until.UnixMicro())
	}
	if f.Model != "" {
		add("model = ?", f.Model)
	}
	if f.KeyID != "" {
		add("key_id = ?", f.KeyID)
	}
	if f.User != "" {
		add("end_user = ?", f.User)
	}
	if f.Outcome != "" {
		add("outcome = ?", f.Outcome)
	}
	if f.Upstream != "" {
		add("upstream = ?", f.Upstream)
	}
	if f.Status != 0 {
		add("status = ?", f.Status)
	}
	if f.Stream != nil {
		add("stream = ?", boolInt(*f.Stream))
	}
	if f.Cursor != "" {
		t, id, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		add("(time_us < ? OR (time_us = ? AND id < ?))", t.UnixMicro(), t.UnixMicro(), id)
	}
	q := `SELECT ` + recordCols + ` FROM requests`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY time_us DESC, id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list logs: %w", err)
	}
	defer rows.Close()
	var out []ledger.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: list logs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list logs: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = store.EncodeCursor(last.Time, last.ID)
	}
	return out, next, nil
}

// GetLog returns one row by request id.
func (s *Store) GetLog(ctx context.Context, id string) (ledger.Record, error) {
	r, err := scanRecord(s.r.QueryRowContext(ctx, `SELECT `+recordCols+` FROM requests WHERE id = ? ORDER BY time_us DESC LIMIT 1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Record{}, store.ErrNotFound
	}
	if err != nil {
		return ledger.Record{}, fmt.Errorf("sqlite: get log: %w", err)
	}
	return r, nil
}

// DeleteLogsBefore deletes at most limit raw rows older than t. Aggregates
// are kept: they are small and the usage history outlives raw logs.
func (s *Store) DeleteLogsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM requests WHERE rowid IN
		(SELECT rowid FROM requests WHERE time_us < ? ORDER BY time_us LIMIT ?)`, t.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete logs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete logs: %w", err)
	}
	return int(n), nil
}

// boolInt is SQLite's storage of a boolean column.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
