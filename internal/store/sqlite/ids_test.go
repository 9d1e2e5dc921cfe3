package sqlite

import (
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// gwID is an id as server.newID makes it, for time t.
func gwID(t time.Time, rnd int) string {
	return fmt.Sprintf("req_%014x%016x", t.UnixMicro(), rnd)
}

// idCase is a row id, its row time and whether GetLog finds it by the id
// alone (no request_ids entry).
type idCase struct {
	id    string
	us    int64
	finds bool
}

func idCases() []idCase {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	us := at.UnixMicro()
	return []idCase{
		{gwID(at, 1), us, true},                           // id made in the same microsecond
		{gwID(at.Add(-40*time.Microsecond), 2), us, true}, // the usual: made just before
		{gwID(at.Add(-(idWindowUS-1)*time.Microsecond), 3), us, true},
		{gwID(at.Add(-idWindowUS*time.Microsecond), 4), us, false}, // recorded too late
		{gwID(at.Add(time.Microsecond), 5), us, false},             // clock stepped back
		{fmt.Sprintf("req_%014x", us-5), us, true},                 // nothing after the time digits
		{fmt.Sprintf("req_%014X%016x", us-5, 6), us, false},        // upper-case hex
		{fmt.Sprintf("req_%013x:%016x", us/16, 7), us, false},
		{fmt.Sprintf("req_%014x", us)[:17], us, false}, // too short
		{fmt.Sprintf("REQ_%014x%016x", us, 8), us, false},
		{"r1", us, false},
		{"3f2a9c1e-0d6b-4c55-9a4e-5b7f1e2d8c90", us, false},
		{"req_", us, false},
		{fmt.Sprintf("req_%014x", 0), 0, true},
		{fmt.Sprintf("req_%014x", 0), idWindowUS - 1, true},
		{fmt.Sprintf("req_%014x", 0), idWindowUS, false},
		{fmt.Sprintf("req_%014x", 0), -1, false},
		{"req_ffffffffffffff", 1<<56 - 1, true},
		{"req_ffffffffffffff", 1 << 56, false},
	}
}

// The migration fills request_ids with SQL; the insert path decides in Go.
// They must agree on every row, and the migration must hold idFindsSQL.
func TestIDFindsMatchesSQL(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "ids.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range idCases() {
		if got := idFinds(c.id, c.us); got != c.finds {
			t.Errorf("idFinds(%q, %d) = %v, want %v", c.id, c.us, got, c.finds)
		}
		var got bool
		q := `SELECT ` + idFindsSQL + ` FROM (SELECT ? AS id, ? AS time_us)`
		if err := db.QueryRowContext(t.Context(), q, c.id, c.us).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.finds {
			t.Errorf("idFindsSQL(%q, %d) = %v, want %v", c.id, c.us, got, c.finds)
		}
	}
	mig, err := fs.ReadFile(migrations, "migrations/00006_request_ids.sql")
	if err != nil {
		t.Fatal(err)
	}
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if cond := flat(idFindsSQL); !strings.Contains(flat(string(mig)), "WHERE NOT "+cond) {
		t.Errorf("migration 00006 does not hold idFindsSQL %s", cond)
	}
}

// idRows are rows of every kind of id, plus an id used twice (the newer
// row is GetLog's) and a gateway id whose retry was recorded much later.
func idRows() []ledger.Record {
	var out []ledger.Record
	for i, c := range idCases() {
		if c.us < 0 {
			continue
		}
		out = append(out, ledger.Record{ID: c.id, Time: time.UnixMicro(c.us).UTC(), KeyID: "k", Model: "m",
			Status: 200 + i, Outcome: ledger.OutcomeOK})
	}
	first := out[1]
	again := first
	again.Time = first.Time.Add(5 * time.Second)
	again.Status = 599
	return append(out, again)
}

// newestByID is what GetLog should return for each id of recs.
func newestByID(recs []ledger.Record) map[string]ledger.Record {
	want := map[string]ledger.Record{}
	for _, r := range recs {
		if w, ok := want[r.ID]; !ok || r.Time.After(w.Time) {
			want[r.ID] = r
		}
	}
	return want
}

func countIDs(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM request_ids`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantIDs(recs []ledger.Record) int {
	n := 0
	for _, r := range recs {
		if !idFinds(r.ID, r.Time.UnixMicro()) {
			n++
		}
	}
	return n
}

func checkGetLog(t *testing.T, s *Store, recs []ledger.Record) {
	t.Helper()
	for id, w := range newestByID(recs) {
		got, err := s.GetLog(t.Context(), id)
		if err != nil {
			t.Errorf("GetLog(%q): %v", id, err)
			continue
		}
		if !got.Time.Equal(w.Time) || got.Status != w.Status {
			t.Errorf("GetLog(%q) = %v status %d, want %v status %d", id, got.Time, got.Status, w.Time, w.Status)
		}
	}
}

// Every row is found by its id, whether through the key range its id
// bounds or through request_ids; replays add no entries; retention removes
// the entries with their rows.
func TestGetLogWithoutIDIndex(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "ids.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := idRows()
	if err := s.InsertRecords(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	checkGetLog(t, s, recs)
	if got, want := countIDs(t, s), wantIDs(recs); got != want || want < 5 {
		t.Errorf("request_ids holds %d rows, want %d (and at least 5)", got, want)
	}
	if err := s.InsertRecords(t.Context(), recs); err != nil { // a replay: the checked path
		t.Fatal(err)
	}
	if got, want := countIDs(t, s), wantIDs(recs); got != want {
		t.Errorf("after a replay request_ids holds %d rows, want %d", got, want)
	}
	checkGetLog(t, s, recs)
	// Retention in small steps: the entries go with their rows.
	for {
		n, err := s.DeleteLogsBefore(t.Context(), time.Unix(1<<40, 0), 3)
		if err != nil {
			t.Fatal(err)
		}
		if n < 3 {
			break
		}
	}
	if n := countIDs(t, s); n != 0 {
		t.Errorf("after retention request_ids holds %d rows", n)
	}
	if _, err := s.GetLog(t.Context(), recs[0].ID); err == nil {
		t.Errorf("GetLog found a deleted row")
	}
}

// Migration 00006 lists exactly the rows that need it and drops the id
// index; its Down puts the index back.
func TestMigrateRequestIDs(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v5.db")
	db, p := openAtVersion(t, path, 5)
	recs := idRows()
	q := `INSERT INTO requests (id, time_us, key_id, model, status, outcome) VALUES (?, ?, ?, ?, ?, ?)`
	for _, r := range recs {
		if _, err := db.ExecContext(ctx, q, r.ID, r.Time.UnixMicro(), r.KeyID, r.Model, r.Status, string(r.Outcome)); err != nil {
			t.Fatal(err)
		}
	}
	indexes := func() string {
		var names []string
		rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE tbl_name = 'requests' AND type = 'index'
			AND name NOT LIKE 'sqlite_autoindex%' ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			rows.Scan(&n)
			names = append(names, n)
		}
		return strings.Join(names, ",")
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if got := indexes(); got != "" {
		t.Errorf("indexes on requests after 00006: %q, want none", got)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM request_ids`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := wantIDs(recs); n != want {
		t.Errorf("request_ids after 00006 holds %d rows, want %d", n, want)
	}
	if _, err := p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if got := indexes(); got != "requests_id" {
		t.Errorf("indexes on requests after 00006 down: %q, want requests_id", got)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM request_ids`).Scan(&n); err == nil {
		t.Errorf("request_ids still there after 00006 down")
	}
	db.Close()
	s, err := Open(ctx, path) // up again, through Open
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkGetLog(t, s, recs)
	if got, want := countIDs(t, s), wantIDs(recs); got != want {
		t.Errorf("request_ids after Open holds %d rows, want %d", got, want)
	}
}
