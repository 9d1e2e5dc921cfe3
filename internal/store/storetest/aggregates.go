package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// hourlyOnly builds q's report from usage_hourly alone, bypassing
// usage_daily and the usage cache: the reference the composed answer must
// equal.
func hourlyOnly(t *testing.T, s store.Store, q store.UsageQuery) store.UsageReport {
	t.Helper()
	src, ok := s.(store.AggSource)
	if !ok {
		t.Fatalf("%T does not implement store.AggSource", s)
	}
	col, err := store.UsageGroupColumn(store.SQLGroupBy(q))
	if err != nil {
		t.Fatal(err)
	}
	dim := col
	if col == "hour" {
		dim = ""
	}
	lo, hi := int64(-1<<40), int64(1<<40)
	if !q.Since.IsZero() {
		lo = store.HourFloor(q.Since)
	}
	if !q.Until.IsZero() {
		hi = store.HourCeil(q.Until)
	}
	brs, err := src.BucketRows(t.Context(), store.Span{Table: "usage_hourly", Col: "hour", From: lo, To: hi}, dim, q.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	var rows []store.UsageRow
	for _, br := range brs {
		r := br.UsageRow
		switch store.SQLGroupBy(q) {
		case "day":
			r.Group = fmt.Sprint(br.Bucket - br.Bucket%86400)
		case "hour":
			r.Group = fmt.Sprint(br.Bucket)
		case "":
			r.Group = ""
		}
		rows = append(rows, r)
	}
	return store.BuildReportFor(q, store.MergeRows(rows))
}

// usageQueries are ranges that split into partial days read hour by hour
// and whole days read from usage_daily, in every grouping.
func usageQueries(t *testing.T) []store.UsageQuery {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	var qs []store.UsageQuery
	for _, g := range []string{"", "model", "key", "user", "upstream", "day", "hour"} {
		for _, r := range []struct{ since, until time.Time }{
			{base().Add(5*time.Hour + 10*time.Minute), base().Add(70 * time.Hour)}, // partial, 2 whole days, partial
			{base(), base().Add(72 * time.Hour)},                                   // whole days only
			{base().Add(30 * time.Hour), base().Add(40 * time.Hour)},               // within one day
			{},
		} {
			qs = append(qs, store.UsageQuery{Since: r.since, Until: r.until, GroupBy: g, EstimatePercentiles: true})
		}
		qs = append(qs, store.UsageQuery{GroupBy: g, KeyID: "k1", EstimatePercentiles: true},
			store.UsageQuery{Since: base().Add(3 * time.Hour), GroupBy: g, Location: sh, EstimatePercentiles: true})
	}
	return qs
}

// testUsageDailyEqualsHourly: a report composed of daily aggregates, hourly
// ones and the usage cache equals the same report summed from hourly rows
// only, to the nano-unit and the histogram bucket, asked cold and warm.
func testUsageDailyEqualsHourly(t *testing.T, s store.Store) {
	recs := randomRecords(600, 11)
	for i := range recs {
		recs[i].User = fmt.Sprintf("u%d", i%7)
		recs[i].Upstream = []string{"a", "b", "c"}[i%3]
	}
	for lo := 0; lo < len(recs); lo += 50 {
		insert(t, s, recs[lo:min(lo+50, len(recs))]...)
	}
	for _, q := range usageQueries(t) {
		want := hourlyOnly(t, s, q)
		for _, pass := range []string{"cold", "warm"} {
			got, err := s.Usage(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %+v: composed report differs from the hourly sum (-hourly +composed):\n%s", pass, q, diff)
			}
		}
	}
}

// testUsageCacheLateRows: rows that land in hours and days already read
// (a long stream, a replayed spill file) and in new ones show up in the
// next report, which equals the uncached answer.
func testUsageCacheLateRows(t *testing.T, s store.Store) {
	insert(t, s, randomRecords(300, 5)...)
	qs := usageQueries(t)
	for _, q := range qs {
		if _, err := s.Usage(t.Context(), q); err != nil { // fill the cache
			t.Fatal(err)
		}
	}
	before, err := s.Usage(t.Context(), store.UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	late := []ledger.Record{
		Rec("late-whole-day", base().Add(30*time.Hour+5*time.Minute)), // inside a whole day (usage_daily)
		Rec("late-partial", base().Add(6*time.Hour)),                  // a partial day's hour
		Rec("late-new-hour", base().Add(71*time.Hour+59*time.Minute)), // the last hour
		Rec("late-new-day", base().Add(80*time.Hour)),                 // a day nothing was in
	}
	for i := range late {
		late[i].KeyID, late[i].Model, late[i].User, late[i].CostNanoUSD = "k1", "gpt-4o", "u-late", 123_456_789
	}
	insert(t, s, late...)
	after, err := s.Usage(t.Context(), store.UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Total.Requests != before.Total.Requests+4 || after.Total.CostNanoUSD != before.Total.CostNanoUSD+4*123_456_789 {
		t.Fatalf("after 4 late rows: %d requests, cost %d; want %d, %d", after.Total.Requests, after.Total.CostNanoUSD,
			before.Total.Requests+4, before.Total.CostNanoUSD+4*123_456_789)
	}
	for _, q := range qs {
		got, err := s.Usage(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(hourlyOnly(t, s, q), got); diff != "" {
			t.Errorf("%+v after late rows (-hourly +cached):\n%s", q, diff)
		}
	}
}
