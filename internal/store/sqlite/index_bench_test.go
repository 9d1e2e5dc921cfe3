package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

// BenchmarkInsertVaried prices varied rows (20 keys, 100 users, 8 models,
// 2 upstreams: about 135 zones per 10-minute bucket) in batches of 250 into
// a table already holding 300,000. Migration 00005 replaced the six
// log-filter indexes this benchmark used to price with the zone map
// (docs/perf.md); the zone upserts are part of the cost measured here.
func BenchmarkInsertVaried(b *testing.B) {
	for _, tc := range []struct{ name string }{{"zones"}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := Open(b.Context(), filepath.Join(b.TempDir(), "b.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			end := time.Now().Truncate(time.Hour)
			const pre, batch = 300_000, 250
			if err := storetest.Load(b.Context(), s, pre, 5000, end, 24*time.Hour); err != nil {
				b.Fatal(err)
			}
			recs := make([]ledger.Record, batch)
			i := 0
			rows := 0
			var cpu time.Duration
			for b.Loop() {
				for j := range recs {
					recs[j] = storetest.SyntheticRecord(i, 1<<30, end.Add(time.Hour), time.Hour)
					recs[j].ID = "x" + recs[j].ID
					i++
				}
				c0 := processCPU()
				if err := s.InsertRecords(b.Context(), recs); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU() - c0
				rows += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(rows), "cpu-ns/row")
		})
	}
}
