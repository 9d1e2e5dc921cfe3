package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted values, the
// definition Histogram.Quantile approximates.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

func TestBucketRoundTrip(t *testing.T) {
	// Every bucket's lowest and highest value must map back to it, and
	// buckets must tile the number line without gaps.
	next := int64(0)
	for i := range numBuckets - subBuckets {
		lo, w := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d (gap or overlap)", i, lo, next)
		}
		if got := bucketOf(lo); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketOf(lo + w - 1); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo+w-1, got, i)
		}
		next = lo + w
		if next < 0 { // overflowed int64: the last bucket
			break
		}
	}
	if got := bucketOf(math.MaxInt64); got >= numBuckets {
		t.Fatalf("bucketOf(MaxInt64) = %d, out of %d buckets", got, numBuckets)
	}
}

func TestQuantileAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 0-10ms", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential mean 1ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(time.Millisecond)) }},
		{"bimodal 100us/50ms", func() time.Duration {
			if rng.IntN(100) < 95 {
				return 100*time.Microsecond + time.Duration(rng.Int64N(10_000))
			}
			return 50*time.Millisecond + time.Duration(rng.Int64N(int64(time.Millisecond)))
		}},
		{"tiny values", func() time.Duration { return time.Duration(rng.Int64N(300)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram()
			vals := make([]time.Duration, 20_000)
			for i := range vals {
				vals[i] = tt.gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				want := exactQuantile(vals, q)
				got := h.Quantile(q)
				// Half a bucket (1/256) of relative error, plus 1ns of rounding.
				tol := float64(want)/256 + 1
				if math.Abs(float64(got-want)) > tol {
					t.Errorf("q%.3f = %v, want %v ± %.0fns", q, got, want, tol)
				}
			}
			s := h.Summary()
			if s.Count != uint64(len(vals)) || s.Min != vals[0] || s.Max != vals[len(vals)-1] {
				t.Errorf("summary count/min/max = %d/%v/%v, want %d/%v/%v", s.Count, s.Min, s.Max, len(vals), vals[0], vals[len(vals)-1])
			}
			var sum time.Duration
			for _, v := range vals {
				sum += v
			}
			if want := sum / time.Duration(len(vals)); s.Mean != want {
				t.Errorf("mean = %v, want %v", s.Mean, want)
			}
		})
	}
}

func TestSummarySmall(t *testing.T) {
	tests := []struct {
		name     string
		vals     []time.Duration
		p50, p99 time.Duration
	}{
		{"empty", nil, 0, 0},
		{"one", []time.Duration{5 * time.Millisecond}, 5 * time.Millisecond, 5 * time.Millisecond},
		{"negative is zero", []time.Duration{-time.Second}, 0, 0},
		{"exact small", []time.Duration{1, 2, 3, 4}, 2, 4},
		// 100 values 1..100ns: nearest rank p50 = 50, p99 = 99, all exact.
		{"1..100ns", seq(1, 100), 50, 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram()
			for _, v := range tt.vals {
				h.Record(v)
			}
			s := h.Summary()
			if s.P50 != tt.p50 || s.P99 != tt.p99 {
				t.Errorf("p50, p99 = %v, %v; want %v, %v", s.P50, s.P99, tt.p50, tt.p99)
			}
		})
	}
}

func seq(from, to int) []time.Duration {
	var out []time.Duration
	for i := from; i <= to; i++ {
		out = append(out, time.Duration(i))
	}
	return out
}

func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	s := h.Summary()
	if s.Count != 8000 || s.Min != 0 || s.Max != 7999*time.Microsecond {
		t.Fatalf("count/min/max = %d/%v/%v, want 8000/0s/7.999ms", s.Count, s.Min, s.Max)
	}
}
