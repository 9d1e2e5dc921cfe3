package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

func openTemp(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tollgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, openTemp)
}

func BenchmarkWriter(b *testing.B) {
	dir := b.TempDir()
	s, err := sqlite.Open(b.Context(), filepath.Join(dir, "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchWriter(b, s, filepath.Join(dir, "spill.jsonl"))
}

// BenchmarkUsage30Days needs TOLLGATE_BENCH_ROWS (e.g. 5000000).
func BenchmarkUsage30Days(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchUsage30Days(b, s)
}

// TestTTFBBackfill: migration 00004 fills the time-to-first-token sums of
// rows stored before it.
func TestTTFBBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	open := func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.TTFBBackfill(t, open, func(t *testing.T) {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(t.Context(), 3); err != nil {
			t.Fatal(err)
		}
	})
}
