package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// BenchmarkInsertRealistic inserts batches shaped like a busy gateway's
// 250 ms flush: 250 rows of one hour, a few keys and models, so the cost is
// the rows themselves rather than thousands of aggregate groups.
func BenchmarkInsertRealistic(b *testing.B) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 250
	recs := make([]ledger.Record, batch)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		for i := range recs {
			n++
			recs[i] = ledger.Record{
				ID: fmt.Sprintf("req_%024x", n), Time: now, KeyID: fmt.Sprintf("k%d", i%3), KeyName: "web",
				Endpoint: "/v1/chat/completions", Model: "gpt-4o-mini", ModelUsed: "gpt-4o-mini", Upstream: "taotoken",
				Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1, PromptTokens: 20, CompletionTokens: 8, TotalTokens: 28,
				CostNanoUSD: 7800, Priced: true, Duration: 3 * time.Millisecond, TTFB: 2 * time.Millisecond, ClientIP: "127.0.0.1",
			}
		}
		if err := s.InsertRecords(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/row")
}
