package sqlite

import (
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// Every insert path must store exactly the record: every column with its
// SQLite type, NULL bodies apart from empty ones, empty strings, whichever
// statement family a chunk takes (which usually unset columns it leaves
// out), in-process or with a writer process's longer statements, and on
// the careful RETURNING path of a partly replayed batch; and the same
// aggregates and zones on every path.
func TestInsertStoresTheRecord(t *testing.T) {
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
	}{
		{"one shape", batch(70, func(int, *ledger.Record) {})},
		{"empty strings and bodies", batch(40, func(i int, r *ledger.Record) {
			r.KeyID, r.KeyName, r.ClientIP, r.User, r.Error = "", "", "", "", ""
			switch i % 3 {
			case 0:
				r.RequestBody, r.ResponseBody = []byte(`{"a":1}`), []byte{}
			case 1:
				r.ResponseBody = []byte("x")
			}
		})},
		{"four shapes", batch(64, func(i int, r *ledger.Record) {
			r.KeyID = fmt.Sprintf("k%d", i%2)
			r.Stream = i%4 >= 2
		})},
		{"many users, errors, every column set", batch(64, func(i int, r *ledger.Record) {
			r.User = fmt.Sprintf("user%d", i)
			r.ClientIP = fmt.Sprintf("10.0.0.%d", i%9)
			r.Outcome, r.Status, r.Error = ledger.OutcomeUpstreamError, 502, "bad gateway"
			r.CachedTokens, r.ReasoningTokens, r.CacheWriteTokens, r.Estimated = 5, 2, 1, true
		})},
		{"one row with cached tokens", batch(40, func(i int, r *ledger.Record) {
			if i == 31 {
				r.CachedTokens = 7
			}
		})},
		{"one row with an empty, not absent, body", batch(40, func(i int, r *ledger.Record) {
			if i == 5 {
				r.RequestBody = []byte{}
			}
		})},
		{"columns unset in some chunks only", batch(200, func(i int, r *ledger.Record) {
			if i >= 40 {
				r.User = fmt.Sprintf("u%d", i%5)
			}
			if i == 70 || i == 150 {
				r.Error = "upstream said no"
			}
			if i%50 == 0 {
				r.CacheWriteTokens = 2
			}
		})},
		{"a shape a row", batch(300, func(i int, r *ledger.Record) {
			r.Model = fmt.Sprintf("m%d", i)
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := wantRows(tc.recs)
			var aggs [3][]string
			for k, mode := range []struct {
				name   string
				opts   Options
				replay bool
			}{{"in-process", Options{}, false}, {"writer process", Options{InWriterProcess: true}, false},
				{"replayed", Options{}, true}} {
				s, err := OpenWith(t.Context(), filepath.Join(t.TempDir(), "t.db"), mode.opts)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if mode.replay {
					// One row stored already: the batch takes the
					// RETURNING path, which stores the others.
					last := len(tc.recs) - 1
					if err := s.InsertRecords(t.Context(), tc.recs[last:]); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.InsertRecords(t.Context(), tc.recs); err != nil {
					t.Fatal(err)
				}
				got := dumpTyped(t, s, `SELECT `+recordColNames()+` FROM requests ORDER BY time_us, id`)
				if !reflect.DeepEqual(got, want) {
					for i := range min(len(got), len(want)) {
						if got[i] != want[i] {
							t.Fatalf("%s: row %d:\ngot  %s\nwant %s", mode.name, i, got[i], want[i])
						}
					}
					t.Fatalf("%s: %d rows, want %d", mode.name, len(got), len(want))
				}
				for _, q := range []string{
					`SELECT * FROM usage_hourly ORDER BY 1, 2, 3, 4, 5`,
					`SELECT * FROM usage_daily ORDER BY 1, 2, 3, 4, 5`,
					`SELECT * FROM request_zones ORDER BY 1, 2, 3`,
					`SELECT * FROM key_last_used ORDER BY 1`,
				} {
					aggs[k] = append(aggs[k], dumpTyped(t, s, q)...)
				}
			}
			if len(aggs[0]) == 0 || !reflect.DeepEqual(aggs[0], aggs[1]) || !reflect.DeepEqual(aggs[0], aggs[2]) {
				t.Fatalf("aggregates differ:\nin-process %v\nprocess    %v\nreplayed   %v", aggs[0], aggs[1], aggs[2])
			}
		})
	}
}

func recordColNames() string {
	out := ""
	for i, c := range reqCols {
		if i > 0 {
			out += ", "
		}
		out += c.name
	}
	return out
}

// wantRows is what dumpTyped prints for recs stored, in key order.
func wantRows(recs []ledger.Record) []string {
	sorted := slices.Clone(recs)
	slices.SortFunc(sorted, func(a, b ledger.Record) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	q := `SELECT ` + recordColNames() + ` FROM requests ORDER BY time_us, id`
	out := make([]string, len(sorted))
	for k := range sorted {
		line := q[:30]
		for _, c := range reqCols {
			v := c.val(&sorted[k])
			if b, ok := v.(bool); ok { // SQLite has no booleans
				v = int64(0)
				if b {
					v = int64(1)
				}
			}
			line += fmt.Sprintf(" %s=%T(%v)", c.name, v, v)
		}
		out[k] = line
	}
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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

// A shape added in a transaction that is rolled back is forgotten with
// it: a row stored later with the id it had would point at no shape and
// drop out of the requests view.
func TestShapeOfRolledBackTransactionForgotten(t *testing.T) {
	ctx := t.Context()
	s, err := OpenWith(ctx, filepath.Join(t.TempDir(), "t.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	recs := []ledger.Record{{ID: "a", Time: at, KeyID: "k", Model: "m1"}, {ID: "b", Time: at, KeyID: "k", Model: "m2"}}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		if err := s.ins.prepare(ctx, dc); err != nil {
			return err
		}
		tx, err := dc.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		s.ins.fresh = s.ins.fresh[:0]
		if err := s.ins.shapeIDs(ctx, recs); err != nil {
			return err
		}
		if len(s.ins.fresh) != 2 || len(s.ins.shapes) != 2 {
			t.Errorf("after adding 2 shapes: %d fresh, %d known", len(s.ins.fresh), len(s.ins.shapes))
		}
		if err := tx.Rollback(); err != nil {
			return err
		}
		s.ins.forgetFresh()
		return nil
	})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ins.shapes) != 0 {
		t.Fatalf("%d shapes still known after the rollback", len(s.ins.shapes))
	}
	if err := s.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	var n, shapes int
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM request_shapes)`).Scan(&n, &shapes); err != nil {
		t.Fatal(err)
	}
	if n != 2 || shapes != 2 {
		t.Fatalf("requests has %d rows and %d shapes, want 2 and 2", n, shapes)
	}
}

// A shape is stored once however many rows, batches and restarts use it,
// and the map of known ids is cleared when full without losing a row.
func TestShapesStoredOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "t.db")
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	recs := make([]ledger.Record, maxShapes+100)
	for i := range recs {
		recs[i] = ledger.Record{ID: fmt.Sprintf("r%05d", i), Time: at, KeyID: fmt.Sprintf("k%d", i%3), Model: "m"}
	}
	for i := range recs[:maxShapes+50] {
		recs[i].Model = fmt.Sprintf("m%d", i) // one shape each, past maxShapes
	}
	for round := range 2 {
		s, err := OpenWith(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := round*len(recs)/2, (round+1)*len(recs)/2
		if err := s.InsertRecords(ctx, recs[lo:hi]); err != nil {
			t.Fatal(err)
		}
		if len(s.ins.shapes) > maxShapes {
			t.Errorf("%d shape ids known, the bound is %d", len(s.ins.shapes), maxShapes)
		}
		s.Close()
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n, shapes, wrong int
	q := `SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM request_shapes),
		(SELECT count(*) FROM requests WHERE key_id <> 'k' || (CAST(substr(id, 2) AS INTEGER) % 3))`
	if err := s.r.QueryRowContext(ctx, q).Scan(&n, &shapes, &wrong); err != nil {
		t.Fatal(err)
	}
	if want := maxShapes + 50 + 3; n != len(recs) || shapes != want || wrong != 0 {
		t.Fatalf("%d rows (want %d), %d shapes (want %d), %d with the wrong key", n, len(recs), shapes, want, wrong)
	}
}
