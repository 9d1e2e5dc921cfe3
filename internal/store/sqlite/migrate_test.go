package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/tollgate/tollgate/internal/store/storetest"
)

// TestMigrateRequestsRebuild writes rows into a database at migration 00003
// (the schema of the releases before the zone map), as those releases did,
// then opens it, which rebuilds requests (00005) and splits it into
// request_rows and request_shapes (00007), and reads them back.
func TestMigrateRequestsRebuild(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	db, _ := openAtVersion(t, path, 3)
	names := make([]string, len(reqCols))
	for i, c := range reqCols {
		names[i] = c.name
	}
	q := `INSERT INTO requests (` + strings.Join(names, ", ") + `) VALUES ` + placeholders(1, len(reqCols))
	for _, r := range storetest.MigrationRows() {
		args := make([]any, len(reqCols))
		for i, c := range reqCols {
			args[i] = c.val(&r)
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckMigrated(t, s)
	s.Close()

	// 00007's Down puts the rows back into one table; up again, they read
	// the same.
	db, p := openAtVersion(t, path, 7)
	if _, err := p.Down(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM requests WHERE key_id <> ''`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("requests after 00007 down: %d rows with a key, %v", n, err)
	}
	db.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckMigrated(t, s)
}

// openAtVersion creates a database at path migrated up to version only, as
// an earlier release left it, and returns it with its migration provider.
func openAtVersion(t *testing.T, path string, version int64) (*sql.DB, *goose.Provider) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+pragmas+writerOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), version); err != nil {
		t.Fatal(err)
	}
	return db, p
}
