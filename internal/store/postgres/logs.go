package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// upsertZones is the zone-map step of insertSQL: the distinct (dim, value,
// bucket) of the rows inserted (CTE ins), counted, one upsert per zone and
// batch, in key order so concurrent replicas lock in the same order. The
// buckets are store.ZoneBucketUS (600 s) wide, the dims store.ZoneDim.
const upsertZones = `INSERT INTO request_zones (dim, value, bucket, n)
	SELECT z.dim, z.value, floor(extract(epoch FROM ins.time) / 600)::bigint * 600000000, count(*)
	FROM ins CROSS JOIN LATERAL (VALUES
		(1, ins.key_id), (2, ins.model), (3, ins.end_user), (4, ins.upstream), (5, ins.outcome),
		(6, CASE WHEN ins.status <> 0 THEN ins.status::text ELSE '' END),
		(7, CASE WHEN ins.stream THEN '1' ELSE '0' END)) AS z(dim, value)
	WHERE z.value <> ''
	GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
	ON CONFLICT (dim, value, bucket) DO UPDATE SET n = request_zones.n + excluded.n`

// ListLogs returns rows newest first, filtered, one page at a time, through
// the zone map (store.PageLogs).
func (s *Store) ListLogs(ctx context.Context, f store.LogFilter) ([]ledger.Record, string, error) {
	out, next, err := store.PageLogs(ctx, logSource{s}, f)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list logs: %w", err)
	}
	return out, next, nil
}

// logSource is the store.LogSource of a Store.
type logSource struct{ s *Store }

// ZoneBuckets implements store.LogSource.
func (l logSource) ZoneBuckets(ctx context.Context, want []store.Zone, from, to int64, n int) ([]int64, error) {
	parts := make([]string, len(want))
	args := make([]any, 0, 4*len(want)+1)
	for i, z := range want {
		args = append(args, int16(z.Dim), z.Value, from, to)
		k := len(args)
		parts[i] = fmt.Sprintf(`SELECT bucket FROM request_zones WHERE dim = $%d AND value = $%d AND bucket >= $%d AND bucket < $%d`,
			k-3, k-2, k-1, k)
	}
	args = append(args, n)
	q := strings.Join(parts, " INTERSECT ") + fmt.Sprintf(` ORDER BY 1 DESC LIMIT $%d`, len(args))
	var out []int64
	err := l.s.pool.query(ctx, q, args, func(rows pgx.Rows) error {
		var b int64
		err := rows.Scan(&b)
		out = append(out, b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("zones: %w", err)
	}
	return out, nil
}

// ScanLogs implements store.LogSource: a walk back along requests_time from
// the range's upper end.
func (l logSource) ScanLogs(ctx context.Context, f store.LogFilter, r store.LogRange, limit int) ([]ledger.Record, error) {
	var where []string
	var args []any
	add := func(cond string, a any) {
		args = append(args, a)
		where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	for _, eq := range f.Equalities() {
		add(eq.Column+" = $?", eq.Value)
	}
	lower, upper := r.Bounded()
	if lower {
		add("time >= $?", time.UnixMicro(r.From).UTC())
	}
	if upper {
		add("time < $?", time.UnixMicro(r.To).UTC())
	}
	if r.HasCursor {
		args = append(args, time.UnixMicro(r.CursorUS).UTC(), r.CursorID)
		where = append(where, fmt.Sprintf("(time, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	q := `SELECT ` + selectCols + ` FROM requests`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY time DESC, id DESC LIMIT $%d", len(args))
	var out []ledger.Record
	err := l.s.pool.query(ctx, q, args, func(rows pgx.Rows) error {
		r, err := scanRecord(rows)
		out = append(out, r)
		return err
	})
	return out, err
}
