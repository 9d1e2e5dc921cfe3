package store

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
)

// AggSource reads the aggregate tables (usage_hourly, usage_daily) for a
// UsageCache. Both backends implement it over their SQL.
type AggSource interface {
	// BucketCounts returns SUM(requests) per value of sp.Col in sp (one
	// entry per time bucket that has rows), for keyID ("" for all keys).
	BucketCounts(ctx context.Context, sp Span, keyID string) (map[int64]int64, error)
	// BucketRows sums sp's rows per time bucket and groupCol value (""
	// groups by time bucket only), for keyID ("" for all keys). Rows with
	// no requests may be left out.
	BucketRows(ctx context.Context, sp Span, groupCol, keyID string) ([]BucketRow, error)
}

// BucketRow is one (time bucket, group) sum: UsageRow.Group holds the
// group column's value ("" without one).
type BucketRow struct {
	Bucket int64
	UsageRow
}

// UsageCache keeps the per-bucket sums that usage reports are built from,
// so that a dashboard asking for 30 days every 30 seconds re-reads only the
// buckets that changed.
//
// It is exact, not time-based: aggregate rows only ever grow (every ledger
// row adds at least one request to its hour and day, in one transaction,
// and nothing deletes or lowers them), so a bucket's SUM(requests) is a
// version number. Each use re-reads those counts, one narrow column per
// bucket and cheap next to summing ~34 columns, and re-sums only the
// buckets whose count moved: the current hour and day under live traffic,
// or a past one a late row (a long stream, a replayed spill file) landed in.
// That holds across replicas sharing PostgreSQL too, since the counts come
// from the database.
type UsageCache struct {
	maxRows int
	mu      sync.Mutex
	sets    map[cacheKey]map[int64]cachedBucket
	rows    int // cached BucketRows, bounded by maxRows
}

type cacheKey struct {
	table, groupCol, keyID string
}

type cachedBucket struct {
	count int64 // SUM(requests) of the bucket when rows were read
	rows  []UsageRow
}

// UsageCacheRows is the size of the backends' usage caches: 100,000 rows,
// about 30 MB, holds 30 days grouped by a few hundred users or keys.
const UsageCacheRows = 100_000

// NewUsageCache returns a cache that holds at most maxRows summed rows
// (each about 300 bytes); when full it starts over.
func NewUsageCache(maxRows int) *UsageCache {
	return &UsageCache{maxRows: maxRows, sets: map[cacheKey]map[int64]cachedBucket{}}
}

// maxRuns bounds the range queries one Rows call issues for stale buckets;
// beyond it the stale buckets are read in one range.
const maxRuns = 8

// Rows returns sp's rows per time bucket and groupCol value, from the
// cache where a bucket's request count has not moved and from src
// otherwise. A nil cache reads everything from src.
func (c *UsageCache) Rows(ctx context.Context, src AggSource, sp Span, groupCol, keyID string) ([]BucketRow, error) {
	if c == nil {
		return src.BucketRows(ctx, sp, groupCol, keyID)
	}
	counts, err := src.BucketCounts(ctx, sp, keyID)
	if err != nil {
		return nil, err
	}
	buckets := make([]int64, 0, len(counts))
	for b := range counts {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	key := cacheKey{sp.Table, groupCol, keyID}

	var out []BucketRow
	var stale []int64
	c.mu.Lock()
	set := c.sets[key]
	for _, b := range buckets {
		if cb, ok := set[b]; ok && cb.count == counts[b] {
			for _, r := range cb.rows {
				out = append(out, BucketRow{Bucket: b, UsageRow: r})
			}
		} else {
			stale = append(stale, b)
		}
	}
	c.mu.Unlock()
	if len(stale) == 0 {
		return out, nil
	}

	fresh, err := c.readRuns(ctx, src, sp, groupCol, keyID, buckets, stale)
	if err != nil {
		return nil, err
	}
	// Keep only the stale buckets (a run may cover fresh ones' neighbours
	// only when maxRuns merged runs) and remember them by bucket.
	want := make(map[int64]bool, len(stale))
	for _, b := range stale {
		want[b] = true
	}
	byBucket := map[int64][]UsageRow{}
	for _, r := range fresh {
		if want[r.Bucket] {
			byBucket[r.Bucket] = append(byBucket[r.Bucket], r.UsageRow)
			out = append(out, r)
		}
	}
	c.store(key, byBucket)
	return out, nil
}

// readRuns reads the stale buckets in runs of consecutive stale ones (in
// the order of all buckets present), so a warm cache reads one short range.
func (c *UsageCache) readRuns(ctx context.Context, src AggSource, sp Span, groupCol, keyID string, all, stale []int64) ([]BucketRow, error) {
	var runs []Span
	isStale := make(map[int64]bool, len(stale))
	for _, b := range stale {
		isStale[b] = true
	}
	for i := 0; i < len(all); i++ {
		if !isStale[all[i]] {
			continue
		}
		j := i
		for j+1 < len(all) && isStale[all[j+1]] {
			j++
		}
		runs = append(runs, Span{Table: sp.Table, Col: sp.Col, From: all[i], To: all[j] + 1})
		i = j
	}
	if len(runs) > maxRuns {
		runs = []Span{{Table: sp.Table, Col: sp.Col, From: runs[0].From, To: runs[len(runs)-1].To}}
	}
	var out []BucketRow
	for _, r := range runs {
		rows, err := src.BucketRows(ctx, r, groupCol, keyID)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// store remembers fresh buckets, each with the request count of the rows
// read (not of the earlier count query: rows may be newer, and a count
// taken from them matches the next check exactly when nothing changed).
func (c *UsageCache) store(key cacheKey, byBucket map[int64][]UsageRow) {
	n := 0
	for _, rows := range byBucket {
		n += len(rows)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rows+n > c.maxRows {
		clear(c.sets)
		c.rows = 0
		if n > c.maxRows {
			return
		}
	}
	set := c.sets[key]
	if set == nil {
		set = map[int64]cachedBucket{}
		c.sets[key] = set
	}
	for b, rows := range byBucket {
		var count int64
		for _, r := range rows {
			count += r.Totals.Requests
		}
		c.rows += len(rows) - len(set[b].rows)
		set[b] = cachedBucket{count: count, rows: rows}
	}
}

// UsageRows sums the aggregates q asks for (see UsageSpans and
// SQLGroupBy) through cache (nil reads everything from src), as rows for
// BuildReportFor: grouped by the group column's value, or by the hour or
// UTC day start (unix seconds) for time groupings.
func UsageRows(ctx context.Context, src AggSource, cache *UsageCache, uq UsageQuery) ([]UsageRow, error) {
	sqlGroup := SQLGroupBy(uq)
	col, err := UsageGroupColumn(sqlGroup)
	if err != nil {
		return nil, err
	}
	dim := col
	if col == "hour" {
		dim = "" // time groupings come from the bucket itself
	}
	// The spans (up to three) are read in parallel: both backends have
	// several reader connections.
	spans := UsageSpans(uq)
	results := make([][]BucketRow, len(spans))
	errs := make([]error, len(spans))
	var wg sync.WaitGroup
	for i, sp := range spans {
		wg.Go(func() { results[i], errs[i] = cache.Rows(ctx, src, sp, dim, uq.KeyID) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var rows []UsageRow
	for _, brs := range results {
		for _, br := range brs {
			r := br.UsageRow
			switch sqlGroup {
			case "day":
				r.Group = strconv.FormatInt(br.Bucket-mod(br.Bucket, 86400), 10)
			case "hour":
				r.Group = strconv.FormatInt(br.Bucket, 10)
			case "":
				r.Group = ""
			}
			if r.Totals.Requests > 0 {
				rows = append(rows, r)
			}
		}
	}
	return MergeRows(rows), nil
}
