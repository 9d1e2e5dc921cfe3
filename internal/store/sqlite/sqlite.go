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
// half way on a lock upgrade; readers are query-only. The writer's page
// cache is 4 MB, not 32: appending rows touches only the right edges of the
// B-trees and the aggregate rows of the current hour, and a 32 MB cache
// that a busy ledger fills within a minute was a third of the gateway's RSS.
const (
	writerOpts = "&_txlock=immediate&_pragma=cache_size(-4000)"
	readerOpts = "&_pragma=query_only(1)"
)

// Store is a store.Store backed by one SQLite file.
type Store struct {
	w *sql.DB // the single writer: SQLite allows one write transaction at a time
	r *sql.DB // readers: WAL lets them run beside the writer

	ins *inserter // the InsertRecords statements, see insert.go

	usage *store.UsageCache // per-bucket sums for Usage
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
	if s.ins, err = prepareInserter(ctx, w); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
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
	var err error
	if s.ins != nil {
		err = s.ins.close()
	}
	return errors.Join(err, s.r.Close(), s.w.Close())
}

const recordCols = `id, time_us, key_id, key_name, end_user, endpoint, model, model_used, upstream, stream,
	outcome, status, attempts, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
	total_tokens, estimated, cost_nano, priced, duration_ns, ttfb_ns, client_ip, error, request_body, response_body, cache_write_tokens`

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
