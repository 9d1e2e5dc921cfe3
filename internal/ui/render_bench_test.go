package ui_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/store/storeopen"
)

const chromiumPath = "/usr/bin/chromium"

// BenchmarkDashboardFirstRender measures issue 12's "first page rendered
// in the browser": a signed-in admin opens /ui/ in headless Chromium, and
// the clock runs from navigation until the Overview (its default view, the
// last 24 hours) has every panel's data and its charts drawn (the page sets
// data-ready on #ov-body). The browser cache is off, so every load fetches
// index.html and all assets again, as a first visit does.
//
// Over TOLLGATE_BENCH_ROWS rows (see BenchmarkDashboard for the stores):
//
//   - warm: the server ran admin.WarmOverview at start, as the gateway does,
//     so the usage cache is filled (what anyone opening the page sees);
//   - cold: a fresh store and server for every load, never warmed (the
//     worst case: the page opened within the first seconds after a start).
//
// ns/op includes chromedp's polling; render-ms is the page's own figure
// (performance.mark at data-ready, milliseconds since navigation start).
// Skipped without TOLLGATE_BENCH_ROWS or without Debian's chromium.
func BenchmarkDashboardFirstRender(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("TOLLGATE_BENCH_ROWS"))
	if n <= 0 {
		b.Skip("TOLLGATE_BENCH_ROWS not set (e.g. 5000000); skipping the first-render benchmark")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		b.Skipf("Debian's chromium is not installed at %s; skipping", chromiumPath)
	}
	b.Run("sqlite", func(b *testing.B) {
		path := os.Getenv("TOLLGATE_BENCH_SQLITE")
		if path == "" {
			path = b.TempDir() + "/bench.db"
		}
		benchFirstRender(b, path, n)
	})
	b.Run("postgres", func(b *testing.B) {
		base := os.Getenv("TOLLGATE_TEST_POSTGRES_URL")
		if base == "" {
			b.Skip("TOLLGATE_TEST_POSTGRES_URL not set")
		}
		url, drop := pgSchema(b, base)
		defer drop()
		benchFirstRender(b, url, n)
	})
}

func benchFirstRender(b *testing.B, dbURL string, n int) {
	st := openBench(b, dbURL, n)
	defer st.Close()
	tab := newTab(b)

	b.Run("warm", func(b *testing.B) {
		if err := admin.WarmOverview(context.Background(), st, time.UTC); err != nil {
			b.Fatal(err)
		}
		srv := serveBench(b, st)
		defer srv.Close()
		tab.signIn(b, srv.URL)
		tab.load(b, srv.URL) // untimed: the browser's own first start (a user's browser runs already)
		var renderMs float64
		for b.Loop() {
			renderMs += tab.load(b, srv.URL)
		}
		b.ReportMetric(renderMs/float64(b.N), "render-ms")
	})
	b.Run("cold", func(b *testing.B) {
		var renderMs float64
		for b.Loop() {
			b.StopTimer()
			// Not openBench: its row count check would read usage first.
			fresh, err := storeopen.Open(context.Background(), dbURL, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			srv := serveBench(b, fresh)
			tab.signIn(b, srv.URL)
			b.StartTimer()
			renderMs += tab.load(b, srv.URL)
			b.StopTimer()
			srv.Close()
			fresh.Close()
			b.StartTimer()
		}
		b.ReportMetric(renderMs/float64(b.N), "render-ms")
	})
}

// tab is one headless Chromium tab with its cache disabled.
type tab struct{ ctx context.Context }

func newTab(b *testing.B) *tab {
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(b.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("lang", "en-US"), chromedp.WindowSize(1280, 820))
	ctx, cancel := chromedp.NewContext(alloc)
	b.Cleanup(func() { cancel(); cancelAlloc() })
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		b.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		b.Fatal(err)
	}
	return &tab{ctx: ctx}
}

// signIn signs in as the admin over HTTP (each server has its own
// sessions) and hands the browser the session cookie, so that no overview
// is loaded, and no cache warmed, before the measured load.
func (t *tab) signIn(b *testing.B, base string) {
	c := benchLogin(b, base)
	if _, err := chromedp.Call(t.ctx, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value,
		URL: base + "/ui/", Path: "/ui", HTTPOnly: &[]bool{true}[0], SameSite: network.CookieSameSiteStrict}); err != nil {
		b.Fatalf("set the session cookie: %v", err)
	}
}

// load navigates to the dashboard and waits for the overview's data-ready;
// it returns the page's render time in milliseconds.
func (t *tab) load(b *testing.B, base string) float64 {
	ctx, cancel := context.WithTimeout(t.ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#ov-body[data-ready]') !== null`)); err != nil {
		b.Fatalf("load: %v", err)
	}
	ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByName('ov-ready')[0].startTime`))
	if err != nil {
		b.Fatalf("render time: %v", err)
	}
	return ms
}
