package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// BenchmarkInsertRealistic inserts batches shaped like a busy gateway's
// flush: rows of one hour, a few keys and models, so the cost is the rows
// themselves rather than thousands of aggregate groups. 250 rows is a 250 ms
// tick at 1000 rows/s; 1000 rows (the writer's BatchSize) is what a flush
// holds at 5000 rows/s, where a full batch triggers it first. Ids are the
// gateway's (server.newID), made a little before the row's time.
func BenchmarkInsertRealistic(b *testing.B) {
	for _, batch := range []int{250, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchInsert(b, batch, Options{}, gatewayID)
		})
	}
}

// BenchmarkInsertWriterProcess is InsertRealistic as the writer process
// runs it (Options.InWriterProcess).
func BenchmarkInsertWriterProcess(b *testing.B) {
	for _, batch := range []int{250, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchInsert(b, batch, Options{InWriterProcess: true}, gatewayID)
		})
	}
}

func gatewayID(now time.Time, n int) string {
	return fmt.Sprintf("req_%014x%016x", now.UnixMicro()-40, n)
}

// BenchmarkInsertClientIDs is InsertRealistic/batch=1000 with ids a client
// sent (X-Request-Id, here UUID-like and in random order), which GetLog
// finds through request_ids (ids.go): the worst case of that table.
func BenchmarkInsertClientIDs(b *testing.B) {
	benchInsert(b, 1000, Options{}, func(_ time.Time, n int) string {
		h := uint64(n) * 0x9e3779b97f4a7c15 // scattered, as random ids are
		return fmt.Sprintf("%08x-%04x-4%03x-%016x", h>>32, h>>16&0xffff, h&0xfff, uint64(n))
	})
}

func benchInsert(b *testing.B, batch int, opts Options, id func(now time.Time, n int) string) {
	s, err := OpenWith(b.Context(), filepath.Join(b.TempDir(), "b.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recs := make([]ledger.Record, batch)
	n := 0
	var cpu time.Duration
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		for i := range recs {
			n++
			recs[i] = ledger.Record{
				ID: id(now, n), Time: now, KeyID: fmt.Sprintf("k%d", i%3), KeyName: "web",
				Endpoint: "/v1/chat/completions", Model: "gpt-4o-mini", ModelUsed: "gpt-4o-mini", Upstream: "taotoken",
				Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1, PromptTokens: 20, CompletionTokens: 8, TotalTokens: 28,
				CostNanoUSD: 7800, Priced: true, Duration: 3 * time.Millisecond, TTFB: 2 * time.Millisecond, ClientIP: "127.0.0.1",
			}
		}
		c0 := processCPU()
		if err := s.InsertRecords(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU() - c0
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/row")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/row")
}
