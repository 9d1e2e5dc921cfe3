package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

// BenchmarkInsertFilterIndexes prices the log-filter indexes of migration
// 00003 per inserted row: batches of 250 varied rows (20 keys, 100 users,
// 8 models, 2 upstreams) into a table already holding 300,000, with every
// index, and with the filter indexes dropped.
func BenchmarkInsertFilterIndexes(b *testing.B) {
	for _, tc := range []struct {
		name string
		drop []string
	}{
		{"all", nil},
		{"without-model", []string{"requests_model_time"}},
		{"without-user", []string{"requests_user_time"}},
		{"without-outcome", []string{"requests_outcome_time"}},
		{"without-upstream", []string{"requests_upstream_time"}},
		{"without-status", []string{"requests_status_time"}},
		{"without-stream", []string{"requests_stream_time"}},
		{"none-of-00003", []string{"requests_model_time", "requests_user_time", "requests_outcome_time",
			"requests_upstream_time", "requests_status_time", "requests_stream_time"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := Open(b.Context(), filepath.Join(b.TempDir(), "b.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for _, ix := range tc.drop {
				if _, err := s.w.ExecContext(b.Context(), "DROP INDEX IF EXISTS "+ix); err != nil {
					b.Fatal(err)
				}
			}
			end := time.Now().Truncate(time.Hour)
			const pre, batch = 300_000, 250
			if err := storetest.Load(b.Context(), s, pre, 5000, end, 24*time.Hour); err != nil {
				b.Fatal(err)
			}
			recs := make([]ledger.Record, batch)
			i := 0
			rows := 0
			for b.Loop() {
				for j := range recs {
					recs[j] = storetest.SyntheticRecord(i, 1<<30, end.Add(time.Hour), time.Hour)
					recs[j].ID = "x" + recs[j].ID
					i++
				}
				if err := s.InsertRecords(b.Context(), recs); err != nil {
					b.Fatal(err)
				}
				rows += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
		})
	}
}
