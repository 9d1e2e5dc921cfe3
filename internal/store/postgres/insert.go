package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// InsertRecords stores recs and folds them into usage_hourly, usage_daily
// and key_last_used, in one transaction. Rows whose (id, time) is stored
// already are skipped, and only the rows inserted are aggregated.
//
// The common case, a batch of new rows, takes the fast path: COPY straight
// into requests, then one statement that upserts the batch's groups, summed
// here. A batch holding a stored row (a spill replay, or a batch retried
// after its commit was lost) fails that COPY on the primary key and is
// redone through the staging table, which skips the stored rows.
func (s *Store) InsertRecords(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	agg := aggregate(recs)
	err := s.pool.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"requests"}, stageCols(), &recordRows{recs: recs}); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if _, err := tx.Exec(ctx, foldSQL(), agg.args()...); err != nil {
			return fmt.Errorf("aggregates: %w", err)
		}
		return nil
	})
	if isStoredRow(err) {
		err = s.pool.tx(ctx, func(tx pgx.Tx) error { return insertStaged(ctx, tx, recs) })
	}
	if err != nil {
		return fmt.Errorf("postgres: insert records: %w", err)
	}
	return nil
}

// isStoredRow reports whether err is a duplicate key in requests.
func isStoredRow(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == "requests"
}

// recordRows is the pgx.CopyFromSource of a batch. It reuses one row slice:
// pgx encodes each row before asking for the next.
type recordRows struct {
	recs []ledger.Record
	i    int
	row  []any
}

func (rr *recordRows) Next() bool { rr.i++; return rr.i <= len(rr.recs) }

func (rr *recordRows) Err() error { return nil }

func (rr *recordRows) Values() ([]any, error) {
	r := &rr.recs[rr.i-1]
	rr.row = append(rr.row[:0], r.ID, r.Time.UTC(), r.KeyID, r.KeyName, r.User, r.Endpoint, r.Model, r.ModelUsed,
		r.Upstream, r.Stream, string(r.Outcome), r.Status, r.Attempts, r.PromptTokens, r.CompletionTokens,
		r.CachedTokens, r.ReasoningTokens, r.TotalTokens, r.Estimated, r.CostNanoUSD, r.Priced, int64(r.Duration),
		int64(r.TTFB), r.ClientIP, r.Error, r.RequestBody, r.ResponseBody, r.CacheWriteTokens,
		int16(store.HistBucket(r.Duration)))
	return rr.row, nil
}

// insertStaged copies recs into a per-connection staging table, then moves
// them into requests and the aggregates with one statement (insertSQL) that
// skips stored rows and aggregates only those it inserted.
func insertStaged(ctx context.Context, tx pgx.Tx, recs []ledger.Record) error {
	// ON COMMIT DELETE ROWS keeps the temp table (no catalog churn per
	// batch) but empties it whatever happens.
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS requests_stage
		(LIKE requests INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
		return fmt.Errorf("staging table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"requests_stage"}, stageCols(), &recordRows{recs: recs}); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if _, err := tx.Exec(ctx, insertSQL()); err != nil {
		return fmt.Errorf("move: %w", err)
	}
	return nil
}

// aggKey identifies one usage_hourly or usage_daily row.
type aggKey struct {
	t                               int64 // hour or day start, unix seconds
	keyID, model, upstream, endUser string
}

func (a aggKey) compare(b aggKey) int {
	return cmp.Or(cmp.Compare(a.t, b.t), strings.Compare(a.keyID, b.keyID), strings.Compare(a.model, b.model),
		strings.Compare(a.upstream, b.upstream), strings.Compare(a.endUser, b.endUser))
}

// aggCols is the number of summed columns: store.AggSums, then the duration
// histogram h00..h23.
var aggCols = len(store.AggSums) + store.HistBuckets

// aggs are the groups of one batch with their sums, in aggKey order.
type aggs struct {
	keys []aggKey
	vals [][]int64 // vals[i] holds aggCols sums for keys[i]
}

// batchAgg is a batch summed per hourly and daily group, and the newest
// time per key.
type batchAgg struct {
	hourly, daily aggs
	lastKeys      []string
	lastTimes     []time.Time
	zones         store.ZoneCounts
}

// aggregate sums recs the way insertSQL's aggregates do, so the fast path
// upserts one row per group and batch without a GROUP BY on the server.
func aggregate(recs []ledger.Record) batchAgg {
	hourly, daily := map[aggKey][]int64{}, map[aggKey][]int64{}
	last := map[string]time.Time{}
	zones := store.ZoneCounts{}
	for i := range recs {
		r := &recs[i]
		zones.Add(r)
		k := aggKey{store.HourFloor(r.Time), r.KeyID, r.Model, r.Upstream, r.User}
		addTo(hourly, k, r)
		k.t -= k.t % 86400 // HourFloor is a multiple of 3600, and days start at multiples of 86400
		addTo(daily, k, r)
		if r.KeyID != "" && r.Time.After(last[r.KeyID]) {
			last[r.KeyID] = r.Time
		}
	}
	b := batchAgg{hourly: sorted(hourly), daily: sorted(daily), zones: zones}
	for _, k := range slices.Sorted(maps.Keys(last)) {
		b.lastKeys = append(b.lastKeys, k)
		b.lastTimes = append(b.lastTimes, last[k].UTC())
	}
	return b
}

func addTo(m map[aggKey][]int64, k aggKey, r *ledger.Record) {
	v := m[k]
	if v == nil {
		v = make([]int64, aggCols)
		m[k] = v
	}
	for i, c := range store.AggSums {
		v[i] += c.Of(r)
	}
	v[len(store.AggSums)+store.HistBucket(r.Duration)]++
}

// sorted orders the groups by key: every writer upserts in this order, so
// concurrent transactions (replicas) lock aggregate rows in the same order
// and cannot deadlock.
func sorted(m map[aggKey][]int64) aggs {
	var a aggs
	for k := range m {
		a.keys = append(a.keys, k)
	}
	slices.SortFunc(a.keys, aggKey.compare)
	for _, k := range a.keys {
		a.vals = append(a.vals, m[k])
	}
	return a
}

// args are the arrays of one table's upsert in foldSQL: bucket start, key
// id, model, upstream, user, then one array per summed column.
func (a aggs) args() []any {
	n := len(a.keys)
	ts := make([]int64, n)
	keys, models, ups, users := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, k := range a.keys {
		ts[i], keys[i], models[i], ups[i], users[i] = k.t, k.keyID, k.model, k.upstream, k.endUser
	}
	out := []any{ts, keys, models, ups, users}
	for c := range aggCols {
		col := make([]int64, n)
		for i, v := range a.vals {
			col[i] = v[c]
		}
		out = append(out, col)
	}
	return out
}

// args are foldSQL's parameters.
func (b batchAgg) args() []any {
	return append(append(append(b.hourly.args(), b.daily.args()...), b.lastKeys, b.lastTimes), zoneArgs(b.zones)...)
}

// zoneArgs are the arrays of the zone upsert in foldSQL, in (dim, value,
// bucket) order like upsertZones, so both paths lock zones in one order.
func zoneArgs(zc store.ZoneCounts) []any {
	zs := slices.SortedFunc(maps.Keys(zc), func(a, b store.Zone) int {
		return cmp.Or(cmp.Compare(a.Dim, b.Dim), strings.Compare(a.Value, b.Value), cmp.Compare(a.Bucket, b.Bucket))
	})
	dims, vals, buckets, ns := make([]int16, len(zs)), make([]string, len(zs)), make([]int64, len(zs)), make([]int64, len(zs))
	for i, z := range zs {
		dims[i], vals[i], buckets[i], ns[i] = int16(z.Dim), z.Value, z.Bucket, zc[z]
	}
	return []any{dims, vals, buckets, ns}
}

// foldSQL upserts a batch's groups into usage_hourly and usage_daily and
// its newest time per key into key_last_used, from arrays (unnest keeps
// their order, so rows are locked in key order).
func foldSQL() string {
	n := 5 + aggCols
	return `WITH hourly AS (
	` + upsertArrays("usage_hourly", "hour", 1) + `
), daily AS (
	` + upsertArrays("usage_daily", "day", 1+n) + `
), zones AS (
	INSERT INTO request_zones (dim, value, bucket, n)
	SELECT * FROM unnest(` + fmt.Sprintf("$%d::smallint[], $%d::text[], $%d::bigint[], $%d::bigint[]", 2*n+3, 2*n+4, 2*n+5, 2*n+6) + `)
	ON CONFLICT (dim, value, bucket) DO UPDATE SET n = request_zones.n + excluded.n
)
INSERT INTO key_last_used (key_id, time)
SELECT * FROM unnest(` + fmt.Sprintf("$%d::text[], $%d::timestamptz[]", 2*n+1, 2*n+2) + `)
ON CONFLICT (key_id) DO UPDATE SET time = GREATEST(key_last_used.time, excluded.time)`
}

// upsertArrays is one table's upsert from 5+aggCols arrays, numbered from
// $first.
func upsertArrays(table, col string, first int) string {
	cols := store.AggColumns()
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = c + " = " + table + "." + c + " + excluded." + c
	}
	params := make([]string, 5+len(cols))
	for i := range params {
		typ := "bigint[]"
		if i >= 1 && i <= 4 {
			typ = "text[]"
		}
		params[i] = fmt.Sprintf("$%d::%s", first+i, typ)
	}
	return fmt.Sprintf(`INSERT INTO %[1]s (%[2]s, key_id, model, upstream, end_user, %[3]s)
	SELECT * FROM unnest(%[4]s)
	ON CONFLICT (%[2]s, key_id, model, upstream, end_user) DO UPDATE SET %[5]s`,
		table, col, strings.Join(cols, ", "), strings.Join(params, ", "), strings.Join(sets, ", "))
}
