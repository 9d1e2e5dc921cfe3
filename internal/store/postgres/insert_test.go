package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store/postgres"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

// mixedBatch is n synthetic rows over two days, with refused, failed,
// unpriced and keyless rows, so every summed column and day boundary is used.
func mixedBatch(n int) []ledger.Record {
	end := time.Unix(1768003200, 0).UTC().Add(36 * time.Hour) // mid-day, two calendar days back
	recs := make([]ledger.Record, n)
	for i := range recs {
		r := storetest.SyntheticRecord(i, n, end, 48*time.Hour)
		switch i % 7 {
		case 1:
			r.Outcome, r.Status, r.PromptTokens, r.CompletionTokens, r.TotalTokens = ledger.OutcomeRateLimited, 429, 0, 0, 0
		case 2:
			r.CacheWriteTokens, r.ReasoningTokens = int64(i%300), int64(i%50)
		case 3:
			r.KeyID = ""
		case 4:
			r.TTFB = time.Duration(i) * time.Millisecond
		case 5:
			r.TTFB = 0
		}
		recs[i] = r
	}
	return recs
}

// The fast path (COPY into requests, groups summed in Go) must leave the
// aggregate tables exactly as the staged path (GROUP BY in PostgreSQL) does,
// whether a batch holds stored rows or not.
func TestInsertPathsAgree(t *testing.T) {
	recs := mixedBatch(3000)
	tests := []struct {
		name    string
		batches [][]ledger.Record
	}{
		{"new rows", [][]ledger.Record{recs[:1000], recs[1000:]}},
		{"replayed rows", [][]ledger.Record{recs[:1000], recs[500:2000], recs[:3000]}},
		{"duplicate within a batch", [][]ledger.Record{append(recs[:10:10], recs...)}},
	}
	tables := []string{
		"SELECT * FROM usage_hourly ORDER BY hour, key_id, model, upstream, end_user",
		"SELECT * FROM usage_daily ORDER BY day, key_id, model, upstream, end_user",
		"SELECT * FROM key_last_used ORDER BY key_id",
		"SELECT * FROM request_zones ORDER BY dim, value, bucket",
		"SELECT count(*), count(DISTINCT (id, time)) FROM requests",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fast, staged := openPG(t), openPG(t)
			for _, b := range tc.batches {
				if err := fast.InsertRecords(t.Context(), b); err != nil {
					t.Fatalf("fast path: %v", err)
				}
				if err := staged.InsertStaged(t.Context(), b); err != nil {
					t.Fatalf("staged path: %v", err)
				}
			}
			for _, q := range tables {
				got, err := fast.Query(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				want, err := staged.Query(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == 0 {
					t.Errorf("%s: no rows", q)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%s: fast path differs from staged path (-staged +fast):\n%s", q, d)
				}
			}
			n, err := fast.Query(t.Context(), "SELECT count(*) FROM requests")
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(n[0][0]); got != "3000" {
				t.Errorf("requests holds %s rows, want 3000", got)
			}
		})
	}
}

func openPG(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
