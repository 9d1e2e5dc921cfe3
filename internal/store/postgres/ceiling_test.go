package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store/postgres"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

// Past the ceiling on PostgreSQL: while another session holds a lock on
// requests, every sink call waits, as behind a database slower than the
// traffic. Rows pile up in memory, then in the spill file; once the lock
// goes, Close writes every row exactly once, aggregates included.
func TestWriterPastCeiling(t *testing.T) {
	tests := []struct {
		name         string
		rows, maxMem int
	}{
		{"memory absorbs the burst", 1500, 5000},
		{"spill file beyond MaxMemoryRows", 1500, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := testURL(t)
			s, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			locker, err := pgx.Connect(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Close(context.Background())
			lock, err := locker.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lock.Exec(t.Context(), "LOCK TABLE requests IN SHARE MODE"); err != nil {
				t.Fatal(err)
			}
			w := ledger.NewWriter(s, ledger.WriterOptions{BatchSize: 100, QueueSize: 50, MaxMemoryRows: tc.maxMem,
				SpillPath: t.TempDir() + "/spill.jsonl", RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
			end := time.Now()
			for i := range tc.rows {
				w.Record(storetest.SyntheticRecord(i, tc.rows, end, time.Hour))
			}
			st := w.Stats()
			if st.Written != 0 || st.Overflowed == 0 || st.Lost != 0 {
				t.Errorf("while locked: stats %+v, want nothing written, rows overflowed, none lost", st)
			}
			spilledWhileLocked := st.Spilled
			if err := lock.Rollback(t.Context()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			st = w.Stats()
			if st.Lost != 0 || st.Written != int64(tc.rows) || st.Replayed != st.Spilled {
				t.Errorf("after: stats %+v, want %d written, spilled rows replayed, none lost", st, tc.rows)
			}
			if wantSpill := tc.rows > tc.maxMem; (spilledWhileLocked > 0) != wantSpill {
				t.Errorf("spilled %d rows while locked; want some: %v", spilledWhileLocked, wantSpill)
			}
			got, err := s.Query(t.Context(), `SELECT (SELECT count(DISTINCT id) FROM requests), (SELECT count(*) FROM requests),
				(SELECT sum(requests)::bigint FROM usage_hourly), (SELECT sum(requests)::bigint FROM usage_daily)`)
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprint([]any{int64(tc.rows), int64(tc.rows), int64(tc.rows), int64(tc.rows)})
			if fmt.Sprint(got[0]) != want {
				t.Errorf("distinct ids, rows, hourly and daily requests = %v, want %s", got[0], want)
			}
		})
	}
}
