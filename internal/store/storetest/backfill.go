package storetest

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// TTFBBackfill checks migration 00004's backfill: rows stored before it
// (simulated by downTo3, which migrates the database down to version 3 and
// so drops the ttfb columns) get the same time-to-first-token sums, per
// hour, per UTC day and per model, as rows inserted after it. open opens
// the store (migrating up); it is called twice.
func TTFBBackfill(t *testing.T, open func(t *testing.T) store.Store, downTo3 func(t *testing.T)) {
	end := base().Add(72 * time.Hour)
	recs := make([]ledger.Record, 0, 600)
	for i := range cap(recs) {
		recs = append(recs, SyntheticRecord(i, cap(recs), end, 72*time.Hour))
	}
	queries := []store.UsageQuery{{GroupBy: "hour"}, {GroupBy: "day"}, {GroupBy: "model"}}
	s := open(t)
	insert(t, s, recs...)
	want := make([]store.UsageReport, len(queries))
	for i, q := range queries {
		var err error
		if want[i], err = s.Usage(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	if want[0].Total.TTFBCount == 0 || want[0].Total.TTFBCount == want[0].Total.Requests {
		t.Fatalf("the rows should mix requests with and without a time to first token: %+v", want[0].Total)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	downTo3(t)
	s = open(t)
	defer s.Close()
	for i, q := range queries {
		got, err := s.Usage(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Groups) != len(want[i].Groups) {
			t.Fatalf("%+v: %d groups after the backfill, want %d", q, len(got.Groups), len(want[i].Groups))
		}
		for j, g := range got.Groups {
			w := want[i].Groups[j]
			if g.Group != w.Group || g.TTFBNanos != w.TTFBNanos || g.TTFBCount != w.TTFBCount {
				t.Errorf("%+v group %s: backfilled ttfb %d ns / %d; want %s %d / %d",
					q, g.Group, g.TTFBNanos, g.TTFBCount, w.Group, w.TTFBNanos, w.TTFBCount)
			}
		}
	}
}
