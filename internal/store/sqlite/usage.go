package sqlite

import (
	"context"
	"fmt"
	"time"

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
		return store.UsageReport{}, fmt.Errorf("sqlite: usage: %w", err)
	}
	rep := store.BuildReportFor(uq, rows)
	if !uq.EstimatePercentiles && rep.Total.Requests > 0 && rep.Total.Requests <= store.MaxExactRows {
		raws, err := s.rawRows(ctx, uq)
		if err != nil {
			return store.UsageReport{}, fmt.Errorf("sqlite: usage: %w", err)
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
	grp := "''"
	if col, _ := store.UsageGroupColumn(q.GroupBy); col != "" && col != "hour" {
		grp = col
	}
	from, to = from*1e6, to*1e6
	var out []store.RawRow
	scan := func(lo, hi int64) (bool, error) {
		sqlq := `SELECT ` + grp + `, time_us, duration_ns FROM requests WHERE time_us >= ? AND time_us < ?`
		args := []any{lo, hi}
		if q.KeyID != "" {
			sqlq += " AND key_id = ?"
			args = append(args, q.KeyID)
		}
		sqlq += " LIMIT ?"
		args = append(args, store.MaxExactRows+1-len(out))
		rows, err := s.r.QueryContext(ctx, sqlq, args...)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
			var r store.RawRow
			var us, dur int64
			if err := rows.Scan(&r.Group, &us, &dur); err != nil {
				return false, err
			}
			r.Unix, r.Duration = us/1e6, time.Duration(dur)
			out = append(out, r)
		}
		return len(out) <= store.MaxExactRows, rows.Err()
	}
	if q.KeyID == "" {
		_, err := scan(from, to)
		return out, err
	}
	// Without an index on key_id, the zone map says where the key's rows are.
	want := []store.Zone{{Dim: store.ZoneKey, Value: q.KeyID}}
	err := store.ZoneRanges(ctx, logSource{s}, want, from, to, scan)
	return out, err
}

// spanWhere is the WHERE clause and arguments selecting sp (and keyID).
func spanWhere(sp store.Span, keyID string) (string, []any) {
	where := ` WHERE ` + sp.Col + ` >= ? AND ` + sp.Col + ` < ?`
	args := []any{sp.From, sp.To}
	if keyID != "" {
		where += " AND key_id = ?"
		args = append(args, keyID)
	}
	return where, args
}

// BucketCounts implements store.AggSource. Grouping on the time column, the
// primary key's first, streams without a sorter.
func (s *Store) BucketCounts(ctx context.Context, sp store.Span, keyID string) (map[int64]int64, error) {
	where, args := spanWhere(sp, keyID)
	rows, err := s.r.QueryContext(ctx, `SELECT `+sp.Col+`, SUM(requests) FROM `+sp.Table+where+` GROUP BY `+sp.Col, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var b, n int64
		if err := rows.Scan(&b, &n); err != nil {
			return nil, err
		}
		out[b] = n
	}
	return out, rows.Err()
}

// BucketRows implements store.AggSource.
func (s *Store) BucketRows(ctx context.Context, sp store.Span, groupCol, keyID string) ([]store.BucketRow, error) {
	grp, groupBy := "''", sp.Col
	if groupCol != "" {
		grp, groupBy = groupCol, sp.Col+", "+groupCol
	}
	where, args := spanWhere(sp, keyID)
	rows, err := s.r.QueryContext(ctx, `SELECT `+sp.Col+`, `+grp+`, `+store.UsageSumColumns("")+` FROM `+sp.Table+
		where+` GROUP BY `+groupBy, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.BucketRow
	for rows.Next() {
		var r store.BucketRow
		if err := rows.Scan(append([]any{&r.Bucket}, r.ScanDest()...)...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
