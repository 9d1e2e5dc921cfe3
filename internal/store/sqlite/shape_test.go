package sqlite

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// Shaped statements must store exactly what the plain statement stores:
// every column, its SQLite type, NULL bodies, empty strings, and the same
// aggregates and zones, whichever family (wide, narrow, plain) a chunk
// takes.
func TestShapedInsertStoresWhatPlainStores(t *testing.T) {
	base := time.Date(2026, 3, 1, 10, 59, 0, 0, time.UTC)
	rec := func(i int) ledger.Record {
		return ledger.Record{ID: fmt.Sprintf("r%04d", i), Time: base.Add(time.Duration(i) * 7 * time.Second),
			KeyID: "k1", KeyName: "web", Endpoint: "/v1/chat/completions", Model: "m", ModelUsed: "m-2024",
			Upstream: "u", Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1, PromptTokens: int64(10 + i),
			CompletionTokens: 3, TotalTokens: int64(13 + i), CostNanoUSD: int64(1000 * i), Priced: true,
			Duration: time.Duration(i) * time.Millisecond, TTFB: time.Millisecond, ClientIP: "10.0.0.1"}
	}
	batch := func(n int, vary func(i int, r *ledger.Record)) []ledger.Record {
		out := make([]ledger.Record, n)
		for i := range out {
			out[i] = rec(i)
			vary(i, &out[i])
		}
		return out
	}
	tests := []struct {
		name string
		recs []ledger.Record
		// the family of the first 32-row chunk: 0 wide with the usually
		// unset columns left out, 1 wide, 2 narrow without them, 3 narrow,
		// -1 plain
		fam int
	}{
		{"one shape", batch(70, func(int, *ledger.Record) {}), 0},
		{"empty strings and bodies", batch(40, func(i int, r *ledger.Record) {
			r.KeyID, r.KeyName, r.ClientIP, r.User, r.Error = "", "", "", "", ""
			switch i % 3 {
			case 0:
				r.RequestBody, r.ResponseBody = []byte(`{"a":1}`), []byte{}
			case 1:
				r.ResponseBody = []byte("x")
			}
		}), 1},
		{"four shapes (wide)", batch(64, func(i int, r *ledger.Record) {
			r.KeyID = fmt.Sprintf("k%d", i%2)
			r.Stream = i%4 >= 2
		}), 0},
		{"many users (narrow)", batch(64, func(i int, r *ledger.Record) {
			r.User = fmt.Sprintf("user%d", i)
			r.ClientIP = fmt.Sprintf("10.0.0.%d", i%9)
			r.Outcome, r.Status, r.Error = ledger.OutcomeUpstreamError, 502, "bad gateway"
			r.CachedTokens, r.ReasoningTokens, r.CacheWriteTokens, r.Estimated = 5, 2, 1, true
		}), 3},
		{"many users, usually unset columns unset", batch(64, func(i int, r *ledger.Record) {
			r.User = fmt.Sprintf("user%d", i)
		}), 2},
		{"one row with cached tokens (wide)", batch(40, func(i int, r *ledger.Record) {
			if i == 31 {
				r.CachedTokens = 7
			}
		}), 1},
		{"one row with an empty, not absent, body (wide)", batch(40, func(i int, r *ledger.Record) {
			if i == 5 {
				r.RequestBody = []byte{}
			}
		}), 1},
		{"many models (plain)", batch(64, func(i int, r *ledger.Record) {
			r.Model = fmt.Sprintf("m%d", i%7)
		}), -1},
		{"a new key every 16 rows (too many shapes for 128)", batch(300, func(i int, r *ledger.Record) {
			r.KeyID = fmt.Sprintf("k%d", i/16)
		}), 0},
		{"families mixed by chunk", batch(100, func(i int, r *ledger.Record) {
			if i >= 32 && i < 48 {
				r.Model = fmt.Sprintf("m%d", i)
			}
			if i >= 48 {
				r.User = fmt.Sprintf("u%d", i)
			}
		}), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// plain, shaped, and shaped as a writer process does (longer
			// statements, cut down when they have too many shapes)
			var got [3][]string
			for k, opts := range []Options{{}, {}, {InWriterProcess: true}} {
				s, err := OpenWith(t.Context(), filepath.Join(t.TempDir(), "t.db"), opts)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if k == 1 {
					sh, _ := s.ins.shaped(tc.recs[:32], false)
					if fam := slices.Index(s.ins.shapers, sh); fam != tc.fam {
						t.Errorf("first chunk takes family %d, want %d", fam, tc.fam)
					}
				} else if k == 0 {
					s.ins.shapers = nil
				}
				if err := s.InsertRecords(t.Context(), tc.recs); err != nil {
					t.Fatal(err)
				}
				for _, q := range []string{
					`SELECT * FROM requests ORDER BY time_us, id`,
					`SELECT * FROM usage_hourly ORDER BY 1, 2, 3, 4, 5`,
					`SELECT * FROM usage_daily ORDER BY 1, 2, 3, 4, 5`,
					`SELECT * FROM request_zones ORDER BY 1, 2, 3`,
					`SELECT * FROM key_last_used ORDER BY 1`,
				} {
					got[k] = append(got[k], dumpTyped(t, s, q)...)
				}
			}
			if len(got[0]) < len(tc.recs) {
				t.Fatalf("plain insert dumped %d rows for %d records", len(got[0]), len(tc.recs))
			}
			for k, name := range []string{"shaped", "process"} {
				g := got[k+1]
				if !reflect.DeepEqual(got[0], g) {
					for i := range min(len(got[0]), len(g)) {
						if got[0][i] != g[i] {
							t.Fatalf("row %d differs:\nplain   %s\n%-7s %s", i, got[0][i], name, g[i])
						}
					}
					t.Fatalf("plain dumped %d rows, %s %d", len(got[0]), name, len(g))
				}
			}
		})
	}
}

// dumpTyped returns each row of q as text, every value with its SQLite type.
func dumpTyped(t *testing.T, s *Store, q string) []string {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT * FROM (`+q+`) LIMIT 100000`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		line := q[:30]
		for i, v := range vals {
			line += fmt.Sprintf(" %s=%T(%v)", cols[i], v, v)
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A writer process's 128-row chunk with more shapes than a statement holds
// is cut down to a length that a shaped family fits.
func TestWriterProcessChunksCutToShapes(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	recs := make([]ledger.Record, 300)
	for i := range recs {
		recs[i] = ledger.Record{ID: fmt.Sprintf("r%d", i), Time: at, KeyID: fmt.Sprintf("k%d", i/16), Model: "m"}
	}
	every8 := slices.Clone(recs)
	for i := range every8 {
		every8[i].KeyID = fmt.Sprintf("k%d", i/8)
	}
	tests := []struct {
		name    string
		recs    []ledger.Record
		checked bool
		want    int  // rows in the first statement
		shaped  bool // it is a shaped one
	}{
		{"one shape", recs[:16], false, 16, true},
		{"4 shapes", recs[:64], false, 64, true},
		{"8 keys in 128 rows, 4 in 64", recs, false, 64, true},
		{"8 keys in 64 rows, 4 in 32", every8, false, 32, true},
		{"checked", recs, true, 128, false},
	}
	in := newInserter()
	in.sizes = procChunkSizes
	for _, tc := range tests {
		n, sh, _ := in.nextChunk(tc.recs, tc.checked)
		if n != tc.want || (sh != nil) != tc.shaped {
			t.Errorf("%s: first statement takes %d rows, shaped %v; want %d, %v", tc.name, n, sh != nil, tc.want, tc.shaped)
		}
	}
	many := slices.Clone(recs[:128])
	for i := range many {
		many[i].Model = fmt.Sprintf("m%d", i) // a shape a row: no family fits
	}
	if n, sh, _ := in.nextChunk(many, false); n != chunkSizes[0] || sh != nil {
		t.Errorf("shapeless chunk: %d rows, shaped %v; want %d rows, plain", n, sh != nil, chunkSizes[0])
	}
}
