package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// ListLogs returns rows newest first, filtered, one page at a time, through
// the zone map (store.PageLogs).
func (s *Store) ListLogs(ctx context.Context, f store.LogFilter) ([]ledger.Record, string, error) {
	out, next, err := store.PageLogs(ctx, logSource{s}, f)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list logs: %w", err)
	}
	return out, next, nil
}

// logSource is the store.LogSource of a Store.
type logSource struct{ s *Store }

// ZoneBuckets implements store.LogSource. Each value's buckets are one
// range of the zone table's primary key (dim, value, bucket); several
// values intersect.
func (l logSource) ZoneBuckets(ctx context.Context, want []store.Zone, from, to int64, n int) ([]int64, error) {
	parts := make([]string, len(want))
	args := make([]any, 0, 4*len(want)+1)
	for i, z := range want {
		parts[i] = `SELECT bucket FROM request_zones WHERE dim = ? AND value = ? AND bucket >= ? AND bucket < ?`
		args = append(args, int64(z.Dim), z.Value, from, to)
	}
	q := strings.Join(parts, " INTERSECT ") + ` ORDER BY 1 DESC LIMIT ?`
	args = append(args, n)
	rows, err := l.s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("zones: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var b int64
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("zones: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// ScanLogs implements store.LogSource: a walk back along the primary key
// (time_us, id) from the range's upper end.
func (l logSource) ScanLogs(ctx context.Context, f store.LogFilter, r store.LogRange, limit int) ([]ledger.Record, error) {
	var where []string
	var args []any
	for _, eq := range f.Equalities() {
		where, args = append(where, eq.Column+" = ?"), append(args, eq.Value)
	}
	lower, upper := r.Bounded()
	if lower {
		where, args = append(where, "time_us >= ?"), append(args, r.From)
	}
	if upper {
		where, args = append(where, "time_us < ?"), append(args, r.To)
	}
	if r.HasCursor {
		where = append(where, "(time_us, id) < (?, ?)")
		args = append(args, r.CursorUS, r.CursorID)
	}
	q := `SELECT ` + recordCols + ` FROM requests`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY time_us DESC, id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := l.s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetLog returns one row by request id: the newest of the rows the id
// bounds in the primary key and those request_ids lists (ids.go).
func (s *Store) GetLog(ctx context.Context, id string) (ledger.Record, error) {
	q, args := getListedLogSQL, []any{id}
	if t, ok := idTime(id); ok {
		q, args = getLogSQL, []any{t, t + idWindowUS, id, id}
	}
	r, err := scanRecord(s.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Record{}, store.ErrNotFound
	}
	if err != nil {
		return ledger.Record{}, fmt.Errorf("sqlite: get log: %w", err)
	}
	return r, nil
}

// getLogSQL picks the newest key among the rows the id's range holds and
// those request_ids lists, then reads that one row by primary key. (With
// "(time_us, id) IN (...) ORDER BY time_us DESC" the planner scanned the
// whole table backwards to save a sort.)
const getLogSQL = `SELECT ` + recordCols + ` FROM requests WHERE (time_us, id) = (
	SELECT time_us, id FROM (
		SELECT time_us, id FROM requests WHERE time_us >= ? AND time_us < ? AND id = ?
		UNION ALL SELECT time_us, id FROM request_ids WHERE id = ?)
	ORDER BY time_us DESC LIMIT 1)`

// getListedLogSQL is getLogSQL for an id that holds no time.
const getListedLogSQL = `SELECT ` + recordCols + ` FROM requests WHERE (time_us, id) = (
	SELECT time_us, id FROM request_ids WHERE id = ? ORDER BY time_us DESC LIMIT 1)`

// DeleteLogsBefore deletes at most limit raw rows older than t, oldest
// first. Aggregates are kept: they are small and the usage history outlives
// raw logs. The call that finds fewer than limit rows (the end of a
// retention sweep) also drops the zones of the buckets that ended by t.
func (s *Store) DeleteLogsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	us := t.UnixMicro()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete logs: %w", err)
	}
	defer tx.Rollback()
	// The same oldest rows in both statements (one transaction, key order):
	// their request_ids entries first, by primary key.
	const oldest = ` FROM request_rows WHERE time_us < ? ORDER BY time_us, id LIMIT ?)`
	if _, err := tx.ExecContext(ctx, `DELETE FROM request_ids WHERE (id, time_us) IN (SELECT id, time_us`+oldest, us, limit); err != nil {
		return 0, fmt.Errorf("sqlite: delete logs: ids: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM request_rows WHERE (time_us, id) IN (SELECT time_us, id`+oldest, us, limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete logs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete logs: %w", err)
	}
	if n < int64(limit) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM request_zones WHERE bucket <= ?`, us-store.ZoneBucketUS); err != nil {
			return 0, fmt.Errorf("sqlite: delete zones: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: delete logs: %w", err)
	}
	return int(n), nil
}
