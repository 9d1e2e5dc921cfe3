package postgres

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

// TestMigrateRequestsZones writes rows into a database at migration 00003
// (the schema before the zone map), then opens it, which applies 00005, and
// reads them back through the zones.
func TestMigrateRequestsZones(t *testing.T) {
	base := os.Getenv("TOLLGATE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("TOLLGATE_TEST_POSTGRES_URL not set; skipping PostgreSQL tests")
	}
	ctx := t.Context()
	schema := "tg_test_" + strings.ToLower(rand.Text()[:12])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	p, err := newPool(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	db := p.sqlDB()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	prov, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	cols := strings.Split(selectCols, ",")
	ph := make([]string, len(cols))
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	ins := `INSERT INTO requests (` + selectCols + `, dur_bucket) VALUES (` + strings.Join(ph, ", ") + fmt.Sprintf(", $%d)", len(cols)+1)
	for _, r := range storetest.MigrationRows() {
		if _, err := db.ExecContext(ctx, ins, r.ID, r.Time.UTC(), r.KeyID, r.KeyName, r.User, r.Endpoint, r.Model, r.ModelUsed,
			r.Upstream, r.Stream, string(r.Outcome), r.Status, r.Attempts, r.PromptTokens, r.CompletionTokens, r.CachedTokens,
			r.ReasoningTokens, r.TotalTokens, r.Estimated, r.CostNanoUSD, r.Priced, int64(r.Duration), int64(r.TTFB),
			r.ClientIP, r.Error, r.RequestBody, r.ResponseBody, r.CacheWriteTokens, int16(store.HistBucket(r.Duration))); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	p.close()
	s, err := Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckMigrated(t, s)
}
