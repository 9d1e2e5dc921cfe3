package storetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// Synthetic traffic shape for benchmarks: 20 keys with 5 end users each, 8
// models on 2 upstreams, 5% errors, 1 model in 8 unpriced. That is at most
// 20*5*8 = 800 usage_hourly rows per hour, whatever the row count.
func benchModels() []string {
	return []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4-6", "qwen-plus", "deepseek-chat", "gemini-2.5-flash", "o3-mini", "mystery"}
}

// SyntheticRecord returns row i of n spread evenly over [end-span, end).
func SyntheticRecord(i, n int, end time.Time, span time.Duration) ledger.Record {
	h := uint64(i)*0x9E3779B97F4A7C15 + 1 // cheap deterministic scatter
	h ^= h >> 29
	r := Rec(fmt.Sprintf("b%09d", i), end.Add(-span+time.Duration(int64(span)/int64(n)*int64(i))))
	key := int(h % 20)
	r.KeyID, r.KeyName = fmt.Sprintf("key%02d", key), fmt.Sprintf("key %d", key)
	r.User = fmt.Sprintf("user%d-%d", key, (h>>8)%5)
	models := benchModels()
	m := int((h >> 16) % uint64(len(models)))
	r.Model, r.ModelUsed, r.Upstream = models[m], models[m], []string{"taotoken", "openrouter"}[m%2]
	r.PromptTokens = int64(100 + (h>>24)%4000)
	r.CompletionTokens = int64(10 + (h>>32)%800)
	r.CachedTokens = r.PromptTokens / 4
	r.TotalTokens = r.PromptTokens + r.CompletionTokens
	r.CostNanoUSD, r.Priced = r.PromptTokens*2500+r.CompletionTokens*10000, m != len(models)-1
	if !r.Priced {
		r.CostNanoUSD = 0
	}
	if (h>>40)%20 == 0 {
		r.Outcome, r.Status = ledger.OutcomeUpstreamError, 502
	}
	r.Duration = time.Duration(50+(h>>44)%20000) * time.Millisecond
	// Time to first token: 150 ms to 1.4 s, never past the end; failed
	// requests wrote nothing, so they have none.
	r.TTFB = min(r.Duration, time.Duration(150+(h>>50)%1250)*time.Millisecond)
	if r.Outcome != ledger.OutcomeOK {
		r.TTFB = 0
	}
	return r
}

// Load inserts n synthetic rows ending at end over span, in batches of
// batch rows through InsertRecords (so aggregates are built the real way).
func Load(ctx context.Context, s store.Store, n, batch int, end time.Time, span time.Duration) error {
	recs := make([]ledger.Record, 0, batch)
	for i := range n {
		recs = append(recs, SyntheticRecord(i, n, end, span))
		if len(recs) == batch || i == n-1 {
			if err := s.InsertRecords(ctx, recs); err != nil {
				return fmt.Errorf("load rows up to %d: %w", i, err)
			}
			recs = recs[:0]
		}
	}
	return nil
}

// BenchWriter measures sink throughput through a real ledger.Writer with
// batches of 1000: each iteration records 1000 rows; the clock stops after
// Close has flushed them all. Reports rows/s.
func BenchWriter(b *testing.B, s store.Store, spillPath string) {
	w := ledger.NewWriter(s, ledger.WriterOptions{BatchSize: 1000, QueueSize: 200_000, SpillPath: spillPath})
	end := time.Now()
	i := 0
	start := time.Now()
	for b.Loop() {
		for range 1000 {
			w.Record(SyntheticRecord(i, 1<<30, end, time.Hour))
			i++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	st := w.Stats()
	if st.Written < int64(i) || st.Lost != 0 {
		b.Fatalf("writer stats %+v, want %d written", st, i)
	}
	b.ReportMetric(float64(i)/elapsed.Seconds(), "rows/s")
}

// BenchUsage30Days loads TOLLGATE_BENCH_ROWS rows over 30 days (skipping
// when unset) and measures /admin/usage-style queries over the whole range.
func BenchUsage30Days(b *testing.B, s store.Store) {
	n, _ := strconv.Atoi(os.Getenv("TOLLGATE_BENCH_ROWS"))
	if n <= 0 {
		b.Skip("TOLLGATE_BENCH_ROWS not set (e.g. 5000000); skipping the 30-day usage benchmark")
	}
	ctx := context.Background()
	end := time.Now().UTC().Truncate(time.Hour)
	span := 30 * 24 * time.Hour
	start := time.Now()
	if err := Load(ctx, s, n, 10_000, end, span); err != nil {
		b.Fatal(err)
	}
	load := time.Since(start)
	b.Logf("loaded %d rows in %v (%.0f rows/s)", n, load.Round(time.Millisecond), float64(n)/load.Seconds())
	for _, g := range []string{"", "model", "key", "user", "day"} {
		b.Run("group="+g, func(b *testing.B) {
			q := store.UsageQuery{Since: end.Add(-span), Until: end, GroupBy: g}
			var rep store.UsageReport
			for b.Loop() {
				var err error
				if rep, err = s.Usage(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			if rep.Total.Requests != int64(n) {
				b.Fatalf("usage counted %d requests, want %d", rep.Total.Requests, n)
			}
		})
	}
}
