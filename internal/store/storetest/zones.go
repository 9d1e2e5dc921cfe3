package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// zoneRows spreads 600 rows over 50 hours (300 zone buckets, more than one
// batch of the planner's bucket reads), with values common (in every
// bucket), periodic (every other bucket) and rare (three buckets far
// apart), ties on time_us at bucket boundaries, and late rows: a second
// batch whose rows land in old buckets (a long stream finishing late).
func zoneRows() (first, late []ledger.Record) {
	bucket := time.Duration(store.ZoneBucketUS) * time.Microsecond
	for i := range 600 {
		at := base().Add(time.Duration(i/2) * bucket) // two rows per bucket
		if i%2 == 1 {
			at = at.Add(bucket / 2)
		}
		if i%40 == 0 {
			at = base().Add(time.Duration(i/2) * bucket) // a tie with the next rows at the bucket start
		}
		r := Rec(fmt.Sprintf("z%04d", i), at)
		r.Model = "common"
		if i == 9 || i == 301 || i == 590 {
			r.Model = "rare"
		}
		r.KeyID = []string{"k-even", "k-odd"}[(i/2)%2] // alternate buckets
		r.User = fmt.Sprintf("u%d", i%7)
		if i%50 == 3 {
			r.Outcome, r.Status = ledger.OutcomeTimeout, 504
		}
		if i%97 == 0 {
			r.Status = 429
		}
		r.Upstream = "up-a"
		r.Stream = i%3 == 0
		first = append(first, r)
	}
	// Ties: same time_us, ids on both sides of the first batch's.
	for i, id := range []string{"z0100a", "z0099z", "late-3"} {
		r := Rec(id, first[100].Time)
		r.Model, r.KeyID, r.User, r.Upstream = "common", "k-even", fmt.Sprintf("u%d", i), "up-a"
		late = append(late, r)
	}
	for i, at := range []time.Duration{3 * bucket, 77 * bucket, 250*bucket + time.Second} {
		r := Rec(fmt.Sprintf("late-%d", i), base().Add(at))
		r.Model, r.KeyID, r.User, r.Upstream = "rare", "k-late", "u-late", "up-b"
		r.Status, r.Outcome, r.Stream = 418, ledger.OutcomeUpstreamError, true
		late = append(late, r)
	}
	return first, late
}

// testListLogsZones checks the zone planner against a plain filter of all
// rows: each filter alone and combined, rare and common values, paging
// across buckets with small and large pages, time bounds inside buckets.
func testListLogsZones(t *testing.T, s store.Store) {
	first, late := zoneRows()
	insert(t, s, first...)
	insert(t, s, late...)
	all := append(slices.Clone(first), late...)
	slices.SortFunc(all, func(a, b ledger.Record) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	yes, no := true, false
	bucket := time.Duration(store.ZoneBucketUS) * time.Microsecond
	mid := base().Add(100*bucket + bucket/3)
	tests := []struct {
		name string
		f    store.LogFilter
	}{
		{"none", store.LogFilter{}},
		{"common model", store.LogFilter{Model: "common"}},
		{"rare model", store.LogFilter{Model: "rare"}},
		{"absent model", store.LogFilter{Model: "absent"}},
		{"key every other bucket", store.LogFilter{KeyID: "k-odd"}},
		{"late key", store.LogFilter{KeyID: "k-late"}},
		{"user", store.LogFilter{User: "u3"}},
		{"outcome", store.LogFilter{Outcome: "timeout"}},
		{"status rare", store.LogFilter{Status: 429}},
		{"status late", store.LogFilter{Status: 418}},
		{"upstream late", store.LogFilter{Upstream: "up-b"}},
		{"streamed", store.LogFilter{Stream: &yes}},
		{"not streamed", store.LogFilter{Stream: &no}},
		{"rare model + key", store.LogFilter{Model: "rare", KeyID: "k-odd"}},
		{"key + user + stream", store.LogFilter{KeyID: "k-even", User: "u2", Stream: &yes}},
		{"disjoint key + status", store.LogFilter{KeyID: "k-odd", Status: 418}},
		{"since inside a bucket", store.LogFilter{Model: "common", Since: mid}},
		{"until inside a bucket", store.LogFilter{KeyID: "k-even", Until: mid}},
		{"since and until", store.LogFilter{User: "u1", Since: base().Add(40 * bucket), Until: mid}},
		{"rare since", store.LogFilter{Model: "rare", Since: base().Add(78 * bucket)}},
	}
	for _, tc := range tests {
		var want []string
		for _, r := range all {
			if matches(tc.f, r) {
				want = append(want, r.ID)
			}
		}
		for _, limit := range []int{1, 7, 100, 1000} {
			t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
				f := tc.f
				f.Limit = limit
				got := pageAll(t, s, f)
				if d := gocmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
					t.Errorf("ids (-want +got):\n%s", d)
				}
			})
		}
	}
	// Exact percentiles of one key read its raw rows through the zones.
	for _, key := range []string{"k-late", "k-odd"} {
		rep, err := s.Usage(t.Context(), store.UsageQuery{Since: base(), Until: base().Add(3 * 24 * time.Hour), KeyID: key})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Total.ExactPercentiles || rep.Total.Requests == 0 {
			t.Errorf("usage of %s: %d requests, exact percentiles %v; want exact", key, rep.Total.Requests, rep.Total.ExactPercentiles)
		}
	}
}

// matches is LogFilter's meaning, written plainly.
func matches(f store.LogFilter, r ledger.Record) bool {
	return (f.Since.IsZero() || !r.Time.Before(f.Since)) && (f.Until.IsZero() || r.Time.Before(f.Until)) &&
		(f.Model == "" || r.Model == f.Model) && (f.KeyID == "" || r.KeyID == f.KeyID) &&
		(f.User == "" || r.User == f.User) && (f.Outcome == "" || string(r.Outcome) == f.Outcome) &&
		(f.Upstream == "" || r.Upstream == f.Upstream) && (f.Status == 0 || r.Status == f.Status) &&
		(f.Stream == nil || r.Stream == *f.Stream)
}

// testDeleteLogsZones checks that retention leaves the zone map consistent:
// after a sweep, filtered pages still find exactly the rows left, and rows
// added to a swept bucket's time again are found.
func testDeleteLogsZones(t *testing.T, s store.Store) {
	first, _ := zoneRows()
	insert(t, s, first...)
	bucket := time.Duration(store.ZoneBucketUS) * time.Microsecond
	cut := base().Add(200*bucket + bucket/2)
	for {
		n, err := s.DeleteLogsBefore(t.Context(), cut, 64)
		if err != nil {
			t.Fatal(err)
		}
		if n < 64 {
			break
		}
	}
	back := Rec("back", base().Add(5*bucket))
	back.Model = "rare"
	insert(t, s, back)
	var want []string
	for i := len(first) - 1; i >= 0; i-- {
		if r := first[i]; r.Model == "rare" && !r.Time.Before(cut) {
			want = append(want, r.ID)
		}
	}
	want = append(want, "back")
	if d := gocmp.Diff(want, pageAll(t, s, store.LogFilter{Model: "rare", Limit: 2})); d != "" {
		t.Errorf("rare after retention (-want +got):\n%s", d)
	}
}

// MigrationRows are rows a test writes into a database at the schema before
// migration 00005 (requests with the filter indexes), to read back after.
func MigrationRows() []ledger.Record {
	first, late := zoneRows()
	return append(first[:120], late...)
}

// CheckMigrated checks that s, migrated from a database holding
// MigrationRows, pages, filters and finds them as if they had been inserted
// after the migration, and that new rows join them.
func CheckMigrated(t *testing.T, s store.Store) {
	t.Helper()
	recs := MigrationRows()
	all := slices.Clone(recs)
	slices.SortFunc(all, func(a, b ledger.Record) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	got, err := s.GetLog(t.Context(), recs[7].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := gocmp.Diff(recs[7], got); d != "" {
		t.Errorf("GetLog after migration (-want +got):\n%s", d)
	}
	late := Rec("after", recs[0].Time.Add(time.Second))
	late.Model = "rare"
	insert(t, s, recs[3], late) // recs[3] is a replay: skipped
	all = append(all, late)
	slices.SortFunc(all, func(a, b ledger.Record) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	yes := true
	for _, f := range []store.LogFilter{{}, {Model: "rare"}, {KeyID: "k-late"}, {Status: 429}, {Stream: &yes, User: "u1"}} {
		var want []string
		for _, r := range all {
			if matches(f, r) {
				want = append(want, r.ID)
			}
		}
		f.Limit = 5
		if d := gocmp.Diff(want, pageAll(t, s, f), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("filter %+v after migration (-want +got):\n%s", f, d)
		}
	}
}
