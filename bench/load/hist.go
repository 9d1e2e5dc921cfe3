// Package load is the library behind tollgate-bench: it drives OpenAI-style
// chat workloads (open loop, closed loop, streaming, large bodies, idle
// streams) at an HTTP target over loopback, records latencies in a
// fixed-size histogram, samples a process's CPU time and memory from /proc,
// manages the child processes a run needs, and prints the comparison table.
//
// Nothing here keeps package-level mutable state; every run is bounded in
// time and in the number of requests it may have in flight.
package load

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram precision: each power of two is split into
// 2^subBits linear buckets, so a recorded value is off by at most
// 1/2^subBits (0.8%) of itself, and by half that at the bucket midpoint.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	// numBuckets covers every non-negative int64 nanosecond value.
	numBuckets = (64 - subBits + 1) * subBuckets
)

// Histogram records durations in an HDR-like log-linear histogram. Memory
// is fixed (about 60 KB) whatever the number of samples, and Record is
// lock-free, so many goroutines can share one. The zero value is not
// usable; call NewHistogram.
type Histogram struct {
	counts []atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64 // nanoseconds; int64 overflows only after 292 years of samples
	min    atomic.Int64
	max    atomic.Int64
}

// NewHistogram returns an empty Histogram.
func NewHistogram() *Histogram {
	h := &Histogram{counts: make([]atomic.Uint64, numBuckets)}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf maps a non-negative value to its bucket index. Values below
// subBuckets get exact buckets; above, the top subBits+1 bits select one.
func bucketOf(v int64) int {
	if v < subBuckets {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)*subBuckets + int(uint64(v)>>shift) - subBuckets
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < subBuckets {
		return int64(i), 1
	}
	shift := i/subBuckets - 1
	return int64(i%subBuckets+subBuckets) << shift, int64(1) << shift
}

// Record adds one sample. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count returns the number of samples recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Quantile returns the value at quantile q (0..1): the midpoint of the
// bucket holding the ceil(q*n)-th smallest sample, clamped to the exact
// recorded minimum and maximum. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, w := bucketRange(i)
			v := lo + (w-1)/2
			v = min(max(v, h.min.Load()), h.max.Load())
			return time.Duration(v)
		}
	}
	return time.Duration(h.max.Load())
}

// Summary is a snapshot of a Histogram, in the units people read.
type Summary struct {
	Count uint64        `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	Min   time.Duration `json:"min_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns the count, mean, extremes and the usual percentiles.
func (h *Histogram) Summary() Summary {
	n := h.n.Load()
	if n == 0 {
		return Summary{}
	}
	return Summary{
		Count: n,
		Mean:  time.Duration(h.sum.Load() / int64(n)),
		Min:   time.Duration(h.min.Load()),
		P50:   h.Quantile(0.50),
		P90:   h.Quantile(0.90),
		P99:   h.Quantile(0.99),
		Max:   time.Duration(h.max.Load()),
	}
}
