package store

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSplitRange(t *testing.T) {
	d := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	u := d.Unix()
	const H, D = 3600, 86400
	tests := []struct {
		name         string
		since, until time.Time
		want         []Span
	}{
		{"within a day", d.Add(90 * time.Minute), d.Add(5 * time.Hour), []Span{{"usage_hourly", "hour", u + H, u + 5*H}}},
		{"partial hours round out", d.Add(30 * time.Minute), d.Add(4*time.Hour + time.Second), []Span{{"usage_hourly", "hour", u, u + 5*H}}},
		{"exact days", d, d.Add(48 * time.Hour), []Span{{"usage_daily", "day", u, u + 2*D}}},
		{"head days tail", d.Add(-3 * time.Hour), d.Add(72*time.Hour + 30*time.Minute), []Span{
			{"usage_hourly", "hour", u - 3*H, u}, {"usage_daily", "day", u, u + 3*D}, {"usage_hourly", "hour", u + 3*D, u + 3*D + H}}},
		{"almost a day", d.Add(time.Hour), d.Add(24 * time.Hour), []Span{{"usage_hourly", "hour", u + H, u + D}}},
		{"empty", d, d, nil},
		{"no since", time.Time{}, d, []Span{{"usage_daily", "day", -unbounded, u}}},
		{"no until", d.Add(time.Hour), time.Time{}, []Span{{"usage_hourly", "hour", u + H, u + D}, {"usage_daily", "day", u + D, unbounded}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, SplitRange(tc.since, tc.until)); diff != "" {
				t.Errorf("SplitRange (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHistPercentile(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   float64 // ms; the estimate must be within a factor HistRatio
	}{
		{"single", []time.Duration{800 * time.Millisecond}, 0.5, 800},
		{"p95 of spread", []time.Duration{100, 200, 300, 400, 500, 600, 700, 800, 900, 10000}, 0.95, 10000},
		{"p50 of spread", []time.Duration{100, 200, 300, 400, 500, 600, 700, 800, 900, 10000}, 0.5, 500},
		{"tiny", []time.Duration{3, 5, 7}, 0.5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h [HistBuckets]int64
			for _, v := range tc.values {
				if v < time.Millisecond {
					v *= time.Millisecond
				}
				h[HistBucket(v)]++
			}
			got := HistPercentile(h, tc.q)
			if tc.want >= float64(HistBase.Milliseconds()) && (got < tc.want/HistRatio || got > tc.want*HistRatio) {
				t.Errorf("got %vms, want within x%v of %vms", got, HistRatio, tc.want)
			}
			if tc.want < float64(HistBase.Milliseconds()) && got >= float64(HistBase.Milliseconds()) {
				t.Errorf("got %vms, want below %v", got, HistBase)
			}
		})
	}
	if got := HistPercentile([HistBuckets]int64{}, 0.5); got != 0 {
		t.Errorf("empty = %v", got)
	}
	if HistBucket(0) != 0 || HistBucket(time.Hour) != HistBuckets-1 || HistBucket(HistBase) != 1 {
		t.Error("bucket bounds")
	}
}
