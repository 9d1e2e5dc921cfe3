package ui_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
	"github.com/tollgate/tollgate/internal/store/storetest"
	"github.com/tollgate/tollgate/internal/ui"
)

// BenchmarkDashboard measures what the dashboard's pages ask for, through
// the real handlers (session check, admin API, JSON), over
// TOLLGATE_BENCH_ROWS synthetic rows spread over 30 days:
//
//   - overview/<range>: the four calls the Overview page makes in parallel
//     (time series, breakdown by model, key list with spend, spend by key),
//     run one after another here, so the figure is their sum;
//   - logs/<filter>: one page of 100 rows with one filter (last 24 hours).
//
// SQLite runs in TOLLGATE_BENCH_SQLITE (a file reused between runs when it
// holds the rows already) or a temporary file; PostgreSQL runs when
// TOLLGATE_TEST_POSTGRES_URL is set, in a fresh schema.
func BenchmarkDashboard(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("TOLLGATE_BENCH_ROWS"))
	if n <= 0 {
		b.Skip("TOLLGATE_BENCH_ROWS not set (e.g. 5000000); skipping the dashboard benchmark")
	}
	b.Run("sqlite", func(b *testing.B) {
		path := os.Getenv("TOLLGATE_BENCH_SQLITE")
		if path == "" {
			path = b.TempDir() + "/bench.db"
		}
		benchDashboard(b, path, n)
	})
	b.Run("postgres", func(b *testing.B) {
		base := os.Getenv("TOLLGATE_TEST_POSTGRES_URL")
		if base == "" {
			b.Skip("TOLLGATE_TEST_POSTGRES_URL not set")
		}
		url, drop := pgSchema(b, base)
		defer drop()
		benchDashboard(b, url, n)
	})
}

// pgSchema makes a fresh schema (kept when TOLLGATE_BENCH_PG_SCHEMA names
// one, so a loaded ledger can be reused) and returns its URL.
func pgSchema(b *testing.B, base string) (string, func()) {
	ctx := context.Background()
	schema := os.Getenv("TOLLGATE_BENCH_PG_SCHEMA")
	keep := schema != ""
	if !keep {
		schema = "tg_uibench_" + strings.ToLower(rand.Text()[:8])
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		b.Fatal(err)
	}
	conn.Close(ctx)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, func() {
		if keep {
			return
		}
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	}
}

// openBench opens the store at dbURL, loading n synthetic rows over the
// last 30 days and 20 budgeted keys unless it holds them already.
func openBench(b *testing.B, dbURL string, n int) store.Store {
	ctx := context.Background()
	st, err := storeopen.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	end := time.Now().UTC().Truncate(time.Hour)
	if have, _ := st.Usage(ctx, store.UsageQuery{}); have.Total.Requests < int64(n) {
		start := time.Now()
		if err := storetest.Load(ctx, st, n, 10_000, end, 30*24*time.Hour); err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d rows in %v", n, time.Since(start).Round(time.Second))
	}
	mgr := auth.NewManager(st, time.Now)
	if keys, _ := mgr.List(ctx); len(keys) == 0 {
		for i := range 20 {
			if _, _, err := mgr.Create(ctx, auth.CreateOptions{Name: "bench " + strconv.Itoa(i), Budget: "100USD/month"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st
}

// serveBench serves the dashboard over st with admin token "bench".
func serveBench(b *testing.B, st store.Store) *httptest.Server {
	logger := slog.New(slog.DiscardHandler)
	api := admin.NewAPI(admin.Options{Store: st, Keys: auth.NewManager(st, time.Now), Logger: logger})
	h, err := ui.New(ui.Options{AdminToken: "bench", API: api, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	return httptest.NewServer(h)
}

func benchDashboard(b *testing.B, dbURL string, n int) {
	st := openBench(b, dbURL, n)
	defer st.Close()
	srv := serveBench(b, st)
	defer srv.Close()
	cookie := benchLogin(b, srv.URL)
	get := func(b *testing.B, path string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/api/admin/"+path, nil)
		req.AddCookie(cookie)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("%s: %d %s", path, res.StatusCode, body)
		}
	}
	// The page asks for estimated percentiles (aggregates only).
	const est = "&percentiles=estimate"
	for _, r := range []struct{ since, bucket string }{{"24h", "hour"}, {"7d", "hour"}, {"30d", "day"}} {
		b.Run("overview/"+r.since, func(b *testing.B) {
			for b.Loop() {
				get(b, "usage?since="+r.since+"&group_by="+r.bucket+est)
				get(b, "usage?since="+r.since+"&group_by=model"+est)
				get(b, "keys")
				get(b, "usage?since="+r.since+"&group_by=key"+est)
			}
		})
		if os.Getenv("TOLLGATE_BENCH_SPLIT") != "" {
			for _, p := range []string{"usage?since=" + r.since + "&group_by=" + r.bucket + est, "usage?since=" + r.since + "&group_by=model" + est,
				"keys", "usage?since=" + r.since + "&group_by=key" + est} {
				b.Run("part/"+strings.ReplaceAll(p, "/", "_"), func(b *testing.B) {
					for b.Loop() {
						get(b, p)
					}
				})
			}
		}
	}
	for _, f := range []string{"none", "model=gpt-4o", "key=key07", "user=user3-2", "outcome=upstream_error",
		"status=502", "status=429", "upstream=openrouter", "stream=true", "stream=false", "model=absent"} {
		q := "logs?limit=100&since=24h"
		if f != "none" {
			q += "&" + f
		}
		b.Run("logs/"+f, func(b *testing.B) {
			for b.Loop() {
				get(b, q)
			}
		})
	}
	b.Run("logs/page3-model", func(b *testing.B) {
		// A deep page: the cursor keeps it as cheap as the first.
		next := ""
		for range 3 {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/api/admin/logs?limit=100&since=24h&model=gpt-4o&cursor="+next, nil)
			req.AddCookie(cookie)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			i := strings.Index(string(body), `"next_cursor":"`)
			if i < 0 {
				b.Fatal("no next cursor")
			}
			next = string(body)[i+len(`"next_cursor":"`):]
			next = next[:strings.IndexByte(next, '"')]
		}
		for b.Loop() {
			get(b, "logs?limit=100&since=24h&model=gpt-4o&cursor="+next)
		}
	})
}

func benchLogin(b *testing.B, base string) *http.Cookie {
	res, err := http.Post(base+"/ui/api/login", "application/json", strings.NewReader(`{"token":"bench"}`))
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == ui.CookieName {
			return c
		}
	}
	b.Fatal("no session cookie")
	return nil
}
