package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// BenchmarkGetLog looks rows up by id in a ledger written at 5000 rows/s
// (200,000 rows): gateway-made ids, found through the key range their time
// bounds (at most 100 ms of rows, ~500, is scanned), and client-sent
// ids, found through request_ids (ids.go).
func BenchmarkGetLog(b *testing.B) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const rows, every = 200_000, 200 * time.Microsecond
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	gw := func(i int) string {
		return fmt.Sprintf("req_%014x%016x", start.Add(time.Duration(i)*every).UnixMicro()-40, i)
	}
	client := func(i int) string { return fmt.Sprintf("client-%08x", i*2654435761%(1<<32)) }
	recs := make([]ledger.Record, 0, 1000)
	for i := 0; i < rows; i++ {
		id := gw(i)
		if i%10 == 0 {
			id = client(i)
		}
		recs = append(recs, ledger.Record{ID: id, Time: start.Add(time.Duration(i) * every), KeyID: "k", Model: "m",
			Status: 200, Outcome: ledger.OutcomeOK, PromptTokens: 20, TotalTokens: 28})
		if len(recs) == cap(recs) {
			if err := s.InsertRecords(b.Context(), recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	for _, tc := range []struct {
		name string
		id   func(k int) string
	}{
		{"gateway", func(k int) string { return gw(k*7919%rows | 1) }},
		{"client", func(k int) string { return client(k * 7919 % rows / 10 * 10) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			k := 0
			for b.Loop() {
				k++
				id := tc.id(k)
				if r, err := s.GetLog(b.Context(), id); err != nil || r.ID != id {
					b.Fatalf("GetLog(%q) = %q, %v", id, r.ID, err)
				}
			}
		})
	}
}
