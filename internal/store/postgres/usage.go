package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
)

// Usage sums the aggregates over the hours overlapping [q.Since, q.Until):
// whole days from usage_daily, the partial days at the ends from
// usage_hourly (see store.SplitRange), through the store's usage cache (see
// store.UsageCache). The resolution is one hour; a partly covered hour
// counts whole.
func (s *Store) Usage(ctx context.Context, uq store.UsageQuery) (store.UsageReport, error) {
	rows, err := store.UsageRows(ctx, s, s.usage, uq)
	if err != nil {
		return store.UsageReport{}, fmt.Errorf("postgres: usage: %w", err)
	}
	rep := store.BuildReportFor(uq, rows)
	if !uq.EstimatePercentiles && rep.Total.Requests > 0 && rep.Total.Requests <= store.MaxExactRows {
		raws, err := s.rawRows(ctx, uq)
		if err != nil {
			return store.UsageReport{}, fmt.Errorf("postgres: usage: %w", err)
		}
		store.ApplyExactPercentiles(&rep, uq, raws)
	}
	return rep, nil
}

// rawRows reads the group value, time and duration of the raw rows q's
// aggregates cover, at most store.MaxExactRows+1 of them.
func (s *Store) rawRows(ctx context.Context, q store.UsageQuery) ([]store.RawRow, error) {
	from, to, ok := store.RawRange(q)
	if !ok {
		return nil, nil
	}
	grp := "''::text"
	if col, _ := store.UsageGroupColumn(q.GroupBy); col != "" && col != "hour" {
		grp = col
	}
	var out []store.RawRow
	scan := func(lo, hi int64) (bool, error) {
		sqlq := `SELECT ` + grp + `, time, duration_ns FROM requests WHERE time >= $1 AND time < $2`
		args := []any{time.UnixMicro(lo).UTC(), time.UnixMicro(hi).UTC()}
		if q.KeyID != "" {
			sqlq += " AND key_id = $3"
			args = append(args, q.KeyID)
		}
		sqlq += fmt.Sprintf(" LIMIT %d", store.MaxExactRows+1-len(out))
		err := s.pool.query(ctx, sqlq, args, func(rows pgx.Rows) error {
			var r store.RawRow
			var t time.Time
			var dur int64
			if err := rows.Scan(&r.Group, &t, &dur); err != nil {
				return err
			}
			r.Unix, r.Duration = t.Unix(), time.Duration(dur)
			out = append(out, r)
			return nil
		})
		return len(out) <= store.MaxExactRows, err
	}
	if q.KeyID == "" {
		_, err := scan(from*1e6, to*1e6)
		return out, err
	}
	// Without an index on key_id, the zone map says where the key's rows are.
	want := []store.Zone{{Dim: store.ZoneKey, Value: q.KeyID}}
	err := store.ZoneRanges(ctx, logSource{s}, want, from*1e6, to*1e6, scan)
	return out, err
}

// spanWhere is the WHERE clause and arguments selecting sp (and keyID).
func spanWhere(sp store.Span, keyID string) (string, []any) {
	where := ` WHERE ` + sp.Col + ` >= $1 AND ` + sp.Col + ` < $2`
	args := []any{sp.From, sp.To}
	if keyID != "" {
		where += " AND key_id = $3"
		args = append(args, keyID)
	}
	return where, args
}

// BucketCounts implements store.AggSource.
func (s *Store) BucketCounts(ctx context.Context, sp store.Span, keyID string) (map[int64]int64, error) {
	where, args := spanWhere(sp, keyID)
	out := map[int64]int64{}
	err := s.pool.query(ctx, `SELECT `+sp.Col+`, SUM(requests)::bigint FROM `+sp.Table+where+` GROUP BY 1`, args,
		func(rows pgx.Rows) error {
			var b, n int64
			err := rows.Scan(&b, &n)
			out[b] = n
			return err
		})
	return out, err
}

// BucketRows implements store.AggSource.
func (s *Store) BucketRows(ctx context.Context, sp store.Span, groupCol, keyID string) ([]store.BucketRow, error) {
	grp, groupBy := "''::text", "1"
	if groupCol != "" {
		grp, groupBy = groupCol, "1, 2"
	}
	where, args := spanWhere(sp, keyID)
	var out []store.BucketRow
	err := s.pool.query(ctx, `SELECT `+sp.Col+`, `+grp+`, `+store.UsageSumColumns("::bigint")+` FROM `+sp.Table+
		where+` GROUP BY `+groupBy, args, func(rows pgx.Rows) error {
		var r store.BucketRow
		err := rows.Scan(append([]any{&r.Bucket}, r.ScanDest()...)...)
		out = append(out, r)
		return err
	})
	return out, err
}
