package store_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// memSource is a store.LogSource over rows in memory, counting its calls.
type memSource struct {
	rows   []ledger.Record // newest first by (time, id)
	zones  store.ZoneCounts
	scans  []store.LogRange
	bucket int // ZoneBuckets calls
}

func newMemSource(rows []ledger.Record) *memSource {
	m := &memSource{zones: store.ZoneCounts{}}
	for i := range rows {
		m.zones.Add(&rows[i])
	}
	m.rows = slices.Clone(rows)
	slices.SortFunc(m.rows, func(a, b ledger.Record) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return m
}

func (m *memSource) ZoneBuckets(_ context.Context, want []store.Zone, from, to int64, n int) ([]int64, error) {
	m.bucket++
	seen := map[int64]int{}
	for z := range m.zones {
		for _, w := range want {
			if z.Dim == w.Dim && z.Value == w.Value && z.Bucket >= from && z.Bucket < to {
				seen[z.Bucket]++
			}
		}
	}
	var out []int64
	for b, k := range seen {
		if k == len(want) {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out[:min(n, len(out))], nil
}

func (m *memSource) ScanLogs(_ context.Context, f store.LogFilter, r store.LogRange, limit int) ([]ledger.Record, error) {
	m.scans = append(m.scans, r)
	var out []ledger.Record
	for _, row := range m.rows {
		us := row.Time.UnixMicro()
		if us < r.From || us >= r.To || (r.HasCursor && (us > r.CursorUS || us == r.CursorUS && row.ID >= r.CursorID)) {
			continue
		}
		g := f
		g.Since, g.Until, g.Cursor = time.Time{}, time.Time{}, ""
		if store.FilterZones(g) != nil && !match(g, row) {
			continue
		}
		if out = append(out, row); len(out) == limit {
			break
		}
	}
	return out, nil
}

func match(f store.LogFilter, r ledger.Record) bool {
	return (f.Model == "" || r.Model == f.Model) && (f.User == "" || r.User == f.User) &&
		(f.Status == 0 || r.Status == f.Status) && (f.Stream == nil || r.Stream == *f.Stream)
}

func TestPageLogsZones(t *testing.T) {
	t0 := time.Unix(1768003200, 0).UTC()
	bucket := time.Duration(store.ZoneBucketUS) * time.Microsecond
	var rows []ledger.Record
	for i := range 2000 { // 5 rows per bucket over 400 buckets
		r := ledger.Record{ID: fmt.Sprintf("r%04d", i), Time: t0.Add(time.Duration(i) * bucket / 5), Model: "common",
			User: fmt.Sprintf("u%d", i%3), Status: 200}
		if i%500 == 7 {
			r.Model = "rare"
		}
		if i%5 == 0 {
			r.Time = r.Time.Add(-time.Duration(i%7) * time.Microsecond) // ties and near-ties at bucket starts
		}
		rows = append(rows, r)
	}
	rows = append(rows, ledger.Record{ID: "late", Time: t0.Add(3 * bucket), Model: "rare", User: "u9", Status: 418})
	yes := true
	tests := []struct {
		name      string
		f         store.LogFilter
		firstSpan time.Duration // the first scanned range's width, when it is bounded
	}{
		{"common finds its page in one bucket", store.LogFilter{Model: "common", Limit: 3}, bucket},
		{"rare", store.LogFilter{Model: "rare", Limit: 2}, 0},
		{"rare and user", store.LogFilter{Model: "rare", User: "u9", Limit: 2}, 0},
		{"absent", store.LogFilter{Model: "absent"}, 0},
		{"user within time bounds", store.LogFilter{User: "u1", Since: t0.Add(10*bucket + bucket/3), Until: t0.Add(200 * bucket), Limit: 50}, 0},
		{"status late", store.LogFilter{Status: 418, Limit: 1}, 0},
		{"stream none", store.LogFilter{Stream: &yes}, 0},
		{"no filter", store.LogFilter{Limit: 9}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newMemSource(rows)
			var want []string
			for _, r := range src.rows {
				us := r.Time.UnixMicro()
				if (tc.f.Since.IsZero() || us >= tc.f.Since.UnixMicro()) && (tc.f.Until.IsZero() || us < tc.f.Until.UnixMicro()) && match(tc.f, r) {
					want = append(want, r.ID)
				}
			}
			var got []string
			f := tc.f
			for range 10_000 {
				page, next, err := store.PageLogs(t.Context(), src, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page {
					got = append(got, r.ID)
				}
				if next == "" {
					break
				}
				f.Cursor = next
			}
			if d := gocmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("ids (-want +got):\n%s", d)
			}
			if tc.f.Model == "absent" || tc.f.Stream != nil {
				if len(src.scans) != 0 {
					t.Errorf("%d scans for a value in no bucket, want none", len(src.scans))
				}
			}
			if tc.firstSpan != 0 {
				if w := time.Duration(src.scans[0].To-src.scans[0].From) * time.Microsecond; w > tc.firstSpan {
					t.Errorf("first range %v wide, want at most %v", w, tc.firstSpan)
				}
			}
		})
	}
}
