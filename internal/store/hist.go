package store

import (
	"math"
	"time"
)

// Duration histogram kept in the hourly aggregates.
//
// Percentiles over a time range are estimated from these fixed buckets, so
// /admin/usage never scans raw rows. Bucket 0 holds durations below
// HistBase; bucket i (1 <= i < HistBuckets-1) holds
// [HistBase*HistRatio^(i-1), HistBase*HistRatio^i); the last bucket holds
// everything from HistBase*HistRatio^(HistBuckets-2) (about 374 s) up.
//
// Resolution: a percentile is placed inside its bucket by geometric
// interpolation, so the estimate is within a factor of HistRatio (1.5) of the
// true value, typically much closer (at most ±22% from the bucket's geometric
// midpoint). Bucket 0 interpolates linearly over [0, 50 ms); the open last
// bucket reports its lower bound.
const (
	HistBuckets = 24
	HistBase    = 50 * time.Millisecond
	HistRatio   = 1.5
)

// HistBucket returns the histogram bucket of a request duration.
func HistBucket(d time.Duration) int {
	if d < HistBase {
		return 0
	}
	// Walk the bounds instead of using math.Log so that values exactly on a
	// bound land in the same bucket on every platform.
	bound := float64(HistBase)
	for i := 1; i < HistBuckets-1; i++ {
		bound *= HistRatio
		if float64(d) < bound {
			return i
		}
	}
	return HistBuckets - 1
}

// histLower returns the lower bound of bucket i in milliseconds.
func histLower(i int) float64 {
	if i == 0 {
		return 0
	}
	return float64(HistBase.Milliseconds()) * math.Pow(HistRatio, float64(i-1))
}

// HistPercentile estimates the q-quantile (0 < q <= 1) in milliseconds from
// bucket counts. It returns 0 when the histogram is empty.
func HistPercentile(h [HistBuckets]int64, q float64) float64 {
	var total int64
	for _, c := range h {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total) // the rank-th smallest value, 1-based in spirit
	var seen float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if seen+float64(c) < rank && i < HistBuckets-1 {
			seen += float64(c)
			continue
		}
		frac := (rank - seen) / float64(c)
		frac = min(max(frac, 0), 1)
		lo := histLower(i)
		switch {
		case i == 0:
			return lo + frac*float64(HistBase.Milliseconds())
		case i == HistBuckets-1:
			return lo
		default:
			return lo * math.Pow(HistRatio, frac)
		}
	}
	return histLower(HistBuckets - 1)
}
