package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
)

// The insert path names its columns in reqCols; the read path in
// recordCols. A column added to one but not the other must fail here.
func TestInsertColumnsMatchReadColumns(t *testing.T) {
	var read []string
	for _, c := range strings.Split(recordCols, ",") {
		read = append(read, strings.TrimSpace(c))
	}
	var ins []string
	for _, c := range reqCols {
		ins = append(ins, c.name)
	}
	if strings.Join(read, ",") != strings.Join(ins, ",") {
		t.Errorf("insert columns %v\ndiffer from read columns %v", ins, read)
	}
}

// A batch in which some rows are already stored (a spill replay) or repeat
// within the batch takes the checked path: only new rows are aggregated,
// also when the first stored row sits in a later statement chunk than rows
// the fast path had already inserted and rolled back.
func TestInsertReplayAggregatesOnlyNewRows(t *testing.T) {
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	mk := func(i int) ledger.Record {
		return ledger.Record{ID: fmt.Sprintf("r%04d", i), Time: base.Add(time.Duration(i) * time.Millisecond),
			KeyID: "k1", Model: "m", Upstream: "u", Outcome: ledger.OutcomeOK, Status: 200, PromptTokens: 10,
			Priced: true, CostNanoUSD: 5}
	}
	batch := func(lo, hi int) []ledger.Record {
		var out []ledger.Record
		for i := lo; i < hi; i++ {
			out = append(out, mk(i))
		}
		return out
	}
	tests := []struct {
		name    string
		batches [][]ledger.Record
		want    int64
	}{
		{"fresh", [][]ledger.Record{batch(0, 200)}, 200},
		{"replay in a later chunk", [][]ledger.Record{batch(100, 101), batch(0, 200)}, 200},
		{"full replay", [][]ledger.Record{batch(0, 130), batch(0, 130)}, 130},
		{"duplicate within a batch", [][]ledger.Record{append(batch(0, 70), mk(3))}, 70},
	}
	for _, tc := range tests {
		for _, opts := range []Options{{}, {InWriterProcess: true}} {
			t.Run(fmt.Sprintf("%s/process=%v", tc.name, opts.InWriterProcess), func(t *testing.T) {
				testReplay(t, opts, base, tc.batches, tc.want)
			})
		}
	}
}

// testReplay inserts batches into a new store and checks that want rows
// are stored and aggregated.
func testReplay(t *testing.T, opts Options, base time.Time, batches [][]ledger.Record, want int64) {
	s, err := OpenWith(t.Context(), filepath.Join(t.TempDir(), "t.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, b := range batches {
		if err := s.InsertRecords(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	var rows int64
	if err := s.r.QueryRow(`SELECT count(*) FROM requests`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Usage(t.Context(), store.UsageQuery{Since: base, Until: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rows != want || rep.Total.Requests != want || rep.Total.PromptTokens != 10*want {
		t.Errorf("rows %d, aggregated requests %d, prompt %d; want %d rows and requests",
			rows, rep.Total.Requests, rep.Total.PromptTokens, want)
	}
}

// The writer's page cache is small (see writerOpts); readers keep 32 MB.
func TestCacheSizes(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name string
		db   interface {
			QueryRow(string, ...any) *sql.Row
		}
		want int
	}{{"writer", s.w, -4000}, {"reader", s.r, -32000}} {
		var got int
		if err := tc.db.QueryRow("PRAGMA cache_size").Scan(&got); err != nil || got != tc.want {
			t.Errorf("%s cache_size = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}
