package store

import (
	"context"
	"math"
	"strconv"

	"github.com/tollgate/tollgate/internal/ledger"
)

// The ledger's zone map: instead of one index per log filter column (six
// B-tree inserts per row), each backend keeps a small table of which values
// occur in which time bucket, written once per batch for the distinct
// (bucket, dim, value) of the batch. A filtered logs page first reads the
// buckets that hold the value, newest first, then scans only those buckets'
// time ranges in the time-ordered table. A common value finds its page in
// the first bucket; a rare one touches only the few buckets that hold it.
// Worst case (a value in every bucket, once each): limit buckets scanned in
// full, see docs/perf.md.

// ZoneBucketUS is the width of a zone bucket in microseconds: 10 minutes.
// Narrower buckets make the worst case cheaper (fewer rows scanned per
// matching row) but write more zone rows for high-cardinality values
// (users); docs/perf.md has the numbers.
const ZoneBucketUS = int64(10 * 60 * 1e6)

// ZoneDim is a filtered column, as stored in the zone table's dim column.
// The numbers are stored: never renumber.
type ZoneDim int16

// The zone dimensions, one per LogFilter column except time.
const (
	ZoneKey      ZoneDim = 1
	ZoneModel    ZoneDim = 2
	ZoneUser     ZoneDim = 3
	ZoneUpstream ZoneDim = 4
	ZoneOutcome  ZoneDim = 5
	ZoneStatus   ZoneDim = 6
	ZoneStream   ZoneDim = 7
)

// Zone is one entry of the zone map: Value of Dim occurs in the bucket that
// starts at Bucket (unix microseconds, a multiple of ZoneBucketUS).
type Zone struct {
	Bucket int64
	Dim    ZoneDim
	Value  string
}

// ZoneBucket is the start of the bucket holding time us.
func ZoneBucket(us int64) int64 {
	return us - modUS(us, ZoneBucketUS)
}

func modUS(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// streamValue is how a stream flag is stored as a zone value.
func streamValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// ZoneCounts collects the distinct zones of a batch with their row counts.
// Empty values (and status 0) are not stored: a filter never asks for them.
type ZoneCounts map[Zone]int64

// Add counts r's zones.
func (z ZoneCounts) Add(r *ledger.Record) { z.AddN(r, 1) }

// AddN counts r's zones n times: n rows with r's zone values.
func (z ZoneCounts) AddN(r *ledger.Record, n int64) {
	b := ZoneBucket(r.Time.UnixMicro())
	stream := r.Stream
	eachZone(r.KeyID, r.Model, r.User, r.Upstream, string(r.Outcome), r.Status, &stream, func(d ZoneDim, v string) {
		z[Zone{b, d, v}] += n
	})
}

// eachZone calls fn with the zone value of every dimension that is set:
// the one place rows and filters are turned into zone values, so what the
// writer stores is what a filter asks for. Empty values, status 0 and a
// nil stream are not set.
func eachZone(key, model, user, upstream, outcome string, status int, stream *bool, fn func(ZoneDim, string)) {
	add := func(d ZoneDim, v string) {
		if v != "" {
			fn(d, v)
		}
	}
	add(ZoneKey, key)
	add(ZoneModel, model)
	add(ZoneUser, user)
	add(ZoneUpstream, upstream)
	add(ZoneOutcome, outcome)
	if status != 0 {
		add(ZoneStatus, strconv.Itoa(status))
	}
	if stream != nil {
		add(ZoneStream, streamValue(*stream))
	}
}

// FilterZones returns the zone values f filters on (Bucket unset), in a
// fixed order; none when f filters on time only.
func FilterZones(f LogFilter) []Zone {
	var out []Zone
	eachZone(f.KeyID, f.Model, f.User, f.Upstream, f.Outcome, f.Status, f.Stream, func(d ZoneDim, v string) {
		out = append(out, Zone{Dim: d, Value: v})
	})
	return out
}

// ColumnEq is one column filter of a logs scan: Column = Value.
type ColumnEq struct {
	Column string
	Value  any
}

// Equalities returns f's column filters (not its time bounds), in a fixed
// order, for the backends' WHERE clauses; the stream flag is a bool.
func (f LogFilter) Equalities() []ColumnEq {
	var out []ColumnEq
	add := func(col string, v any) { out = append(out, ColumnEq{col, v}) }
	if f.Model != "" {
		add("model", f.Model)
	}
	if f.KeyID != "" {
		add("key_id", f.KeyID)
	}
	if f.User != "" {
		add("end_user", f.User)
	}
	if f.Outcome != "" {
		add("outcome", f.Outcome)
	}
	if f.Upstream != "" {
		add("upstream", f.Upstream)
	}
	if f.Status != 0 {
		add("status", f.Status)
	}
	if f.Stream != nil {
		add("stream", *f.Stream)
	}
	return out
}

// LogRange is one time range of a logs scan: time_us in [From, To), and,
// when HasCursor, strictly before the cursor row (CursorUS, CursorID) in
// (time_us, id) order. From is math.MinInt64 and To math.MaxInt64 when
// unbounded.
type LogRange struct {
	From, To  int64
	HasCursor bool
	CursorUS  int64
	CursorID  string
}

// Bounded reports whether the range has a lower and an upper time bound.
func (r LogRange) Bounded() (lower, upper bool) {
	return r.From != math.MinInt64, r.To != math.MaxInt64
}

// LogSource is what a backend provides for PageLogs.
type LogSource interface {
	// ZoneBuckets returns, newest first, at most n bucket starts b with
	// from <= b < to at which every zone of want (Dim and Value) occurs.
	ZoneBuckets(ctx context.Context, want []Zone, from, to int64, n int) ([]int64, error)
	// ScanLogs returns at most limit rows in r that match f's column
	// filters (not its time bounds or cursor, which r carries), newest
	// first by (time_us, id).
	ScanLogs(ctx context.Context, f LogFilter, r LogRange, limit int) ([]ledger.Record, error)
}

// zoneBatch is how many buckets PageLogs asks for at a time: 64 buckets of
// 10 minutes are about 11 hours.
const zoneBatch = 64

// PageLogs implements Store.ListLogs over a LogSource: one page of f, newest
// first, with the cursor of the next page.
func PageLogs(ctx context.Context, src LogSource, f LogFilter) ([]ledger.Record, string, error) {
	limit := ClampLimit(f.Limit)
	r := LogRange{From: math.MinInt64, To: math.MaxInt64}
	if !f.Since.IsZero() {
		r.From = f.Since.UnixMicro()
	}
	if !f.Until.IsZero() {
		r.To = f.Until.UnixMicro()
	}
	if f.Cursor != "" {
		t, id, err := DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		r.HasCursor, r.CursorUS, r.CursorID = true, t.UnixMicro(), id
		if r.CursorUS < math.MaxInt64 {
			r.To = min(r.To, r.CursorUS+1)
		}
	}
	var out []ledger.Record
	var err error
	if want := FilterZones(f); len(want) == 0 {
		out, err = src.ScanLogs(ctx, f, r, limit+1)
	} else {
		out, err = pageZones(ctx, src, f, want, r, limit+1)
	}
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = EncodeCursor(last.Time, last.ID)
	}
	return out, next, nil
}

// pageZones collects up to need rows of f in r, scanning only the buckets
// in which every filtered value occurs.
func pageZones(ctx context.Context, src LogSource, f LogFilter, want []Zone, r LogRange, need int) ([]ledger.Record, error) {
	var out []ledger.Record
	err := ZoneRanges(ctx, src, want, r.From, r.To, func(from, to int64) (bool, error) {
		sub := r
		sub.From, sub.To = from, to
		rows, err := src.ScanLogs(ctx, f, sub, need-len(out))
		out = append(out, rows...)
		return len(out) < need, err
	})
	return out, err
}

// ZoneRanges calls fn, newest first, with the time ranges [from, to) within
// [lo, hi) of the buckets in which every zone of want occurs, until fn
// returns false or an error. Adjacent buckets make one range, of at most
// 1, 2, 4, ... 64 buckets: a common value finds its page in the first
// small range (PostgreSQL's planner turned an 11-hour range with a filter
// into a bitmap scan of every row in it, 10-25 ms instead of 2), and a long
// walk still costs only one range per 64 buckets.
func ZoneRanges(ctx context.Context, src LogSource, want []Zone, lo, hi int64, fn func(from, to int64) (bool, error)) error {
	first := math.MinInt64 + ZoneBucketUS // ZoneBucket must not overflow
	if lo > first {
		first = ZoneBucket(lo)
	}
	span := 1 // the most buckets in one range: 1, 2, 4, ... zoneBatch
	for hi > first {
		bs, err := src.ZoneBuckets(ctx, want, first, hi, zoneBatch)
		if err != nil {
			return err
		}
		for i := 0; i < len(bs); {
			// bs[i] is the newest bucket of a run of adjacent ones ending at bs[j].
			j := i
			for j+1 < len(bs) && bs[j+1] == bs[j]-ZoneBucketUS && j-i+1 < span {
				j++
			}
			span = min(2*span, zoneBatch)
			from, to := max(lo, bs[j]), hi
			if bs[i] < math.MaxInt64-ZoneBucketUS {
				to = min(hi, bs[i]+ZoneBucketUS)
			}
			if more, err := fn(from, to); err != nil || !more {
				return err
			}
			i = j + 1
		}
		if len(bs) < zoneBatch {
			return nil
		}
		hi = bs[len(bs)-1]
	}
	return nil
}
