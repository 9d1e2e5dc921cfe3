package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store/storeopen"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

const chromiumPath = "/usr/bin/chromium"

// seedLedger fills a fresh SQLite file with n synthetic rows over the last
// week, a quarter of them on a budgeted key "team-a", and returns the path.
func seedLedger(t *testing.T, n int) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "ui.db")
	st, err := storeopen.Open(t.Context(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mgr := auth.NewManager(st, time.Now)
	_, k, err := mgr.Create(t.Context(), auth.CreateOptions{Name: "team-a", Budget: "50USD/month"})
	if err != nil {
		t.Fatal(err)
	}
	// The rows span a little less than a week: the overview's "last 7
	// days" starts at the hour, so a row 7 days and a minute old counted
	// or not depending on the minute the test ran (1,999 in the first
	// minute of an hour).
	end := time.Now().Add(-time.Minute)
	recs := make([]ledger.Record, 0, n)
	for i := range n {
		r := storetest.SyntheticRecord(i, n, end, 7*24*time.Hour-2*time.Hour)
		if i%4 == 0 {
			r.KeyID, r.KeyName = k.ID, k.Name
		}
		recs = append(recs, r)
	}
	if err := st.InsertRecords(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	return db
}

// consoleErrors collects console errors, uncaught exceptions and browser
// log errors (CSP violations land there).
type consoleErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (c *consoleErrors) listen(ctx context.Context) {
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				c.mu.Lock()
				c.msgs = append(c.msgs, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
				c.mu.Unlock()
			}
		}
	}()
}

func (c *consoleErrors) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs
	c.msgs = nil
	return m
}

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// a real gateway (in-process serve) in front of the fake upstream.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("Debian's chromium is not installed at %s (apt-get install -y chromium); skipping the browser test", chromiumPath)
	}
	const adminToken = "ui-admin-token-for-tests"
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
	defer fake.Close()
	addr, _, logs := startGateway(t, map[string]string{
		"TAOTOKEN_BASE_URL":    fake.URL + "/v1",
		"TOLLGATE_DB":          seedLedger(t, 2000),
		"TOLLGATE_AUTH":        "enabled",
		"TOLLGATE_ADMIN_TOKEN": adminToken,
		"TOLLGATE_LOG_LEVEL":   "warn",
	})
	base := "http://" + addr

	alloc, cancel := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("lang", "en-US"), chromedp.WindowSize(1280, 820))
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var console consoleErrors
	console.listen(ctx)
	b := &browser{t: t, ctx: ctx, shots: os.Getenv("TOLLGATE_SCREENSHOTS")}
	defer func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	}()

	// Sign in as the admin; the overview shows the seeded ledger.
	b.run("open", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("login-secret")))
	b.run("sign in", chromedp.SendKeys(chromedp.ID("login-secret"), adminToken), chromedp.Click(chromedp.ID("login-submit")))
	b.waitText("#ov-cards", "Cached tokens")
	b.run("7 days", chromedp.SetValue(chromedp.ID("ov-range"), "7d"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('ov-range').dispatchEvent(new Event('change'))`))
	b.waitText("#ov-cards", "2,000") // every seeded row is in the last 7 days
	b.waitText("#page-overview", "team-a")
	// Time to first token over time: the latency chart's third series has
	// points (the seeded rows have one, except the failed ones), and the
	// card shows the mean.
	b.waitText("#ov-cards", "Time to first token (mean)")
	b.waitJS("the TTFT series has points", `(() => {
		const c = document.getElementById('ov-chart-latency');
		if (!c || !c.querySelector('canvas')) return false;
		const n = (c.dataset.points || '').split(',').map(Number);
		return n.length === 3 && n[2] > 0 && n[2] * 2 >= n[0];
	})()`)
	if got := b.text("#ov-chart-latency"); !strings.Contains(got, "Time to first token") {
		t.Errorf("the latency chart's legend has no time to first token: %q", got)
	}
	// A taller viewport for this one, so the shot shows all four charts.
	b.run("tall", chromedp.EmulateViewport(1280, 880))
	b.shot("overview")
	if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
		t.Fatalf("back to the window's size: %v", err)
	}

	// Logs: the seeded rows, then a request made with a key created here.
	b.run("logs", chromedp.Click(chromedp.ID("nav-logs")), chromedp.WaitVisible(chromedp.CSS(`#logs-rows tr[data-id]`)))
	b.waitText("#logs-rows", "gpt-4o")
	b.open(`#logs-rows tr[data-id]`)
	b.waitText("#log-drawer", "Request body")
	b.shot("logs")
	b.run("close detail", chromedp.Click(chromedp.ID("log-close")))

	key := b.createKey("browser-key")
	if code := chatStatus(t, base, key); code != http.StatusOK {
		t.Fatalf("a request with the new key answered %d, want 200", code)
	}
	b.run("logs again", chromedp.Click(chromedp.ID("nav-logs")), chromedp.WaitVisible(chromedp.ID("logs-tail")),
		chromedp.Click(chromedp.ID("logs-tail")))
	b.waitText("#logs-rows", "browser-key") // live tail picks it up

	// Revoke it and see it refused.
	b.run("keys", chromedp.Click(chromedp.ID("nav-keys")), chromedp.WaitVisible(chromedp.CSS(`button[data-act="revoke"][data-key="browser-key"]`)))
	b.run("revoke", chromedp.Click(chromedp.CSS(`button[data-act="revoke"][data-key="browser-key"]`)),
		chromedp.Click(chromedp.CSS(`button[data-act="revoke"][data-key="browser-key"]`)))
	b.waitGone(`button[data-act="revoke"][data-key="browser-key"]`)
	if code := chatStatus(t, base, key); code != http.StatusUnauthorized {
		t.Fatalf("a request with the revoked key answered %d, want 401", code)
	}

	// Upstreams.
	b.run("upstreams", chromedp.Click(chromedp.ID("nav-upstreams")), chromedp.WaitVisible(chromedp.CSS(`tr[data-upstream]`)))
	b.waitText("#upstreams-list", "healthy")
	b.run("reload", chromedp.Click(chromedp.ID("reload")))
	b.waitText("#reload-msg", "reloaded")
	b.shot("upstreams")

	// Playground: a streamed answer with tokens and cost.
	playKey := b.createKey("playground")
	b.shot("keys")
	b.run("playground", chromedp.Click(chromedp.ID("nav-playground")), chromedp.WaitVisible(chromedp.ID("pg-key")),
		chromedp.SendKeys(chromedp.ID("pg-key"), playKey+"\t"))
	b.waitText("#pg-model", "gpt-4o-mini")
	b.run("choose model", chromedp.SetValue(chromedp.ID("pg-model"), "gpt-4o-mini"),
		chromedp.SendKeys(chromedp.ID("pg-input"), "Hello there"), chromedp.Click(chromedp.ID("pg-send")))
	b.waitText("#pg-stats", "$0.")
	answer := b.text(`#pg-chat .answer`)
	if strings.TrimSpace(answer) == "" {
		t.Error("the playground shows no streamed answer")
	}
	b.shot("playground")

	// Chinese.
	b.run("zh-CN", chromedp.Click(chromedp.ID("nav-overview")), chromedp.WaitVisible(chromedp.ID("ov-cards")),
		chromedp.SetValue(chromedp.ID("lang"), "zh-CN"), chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`))
	b.waitText("header", "概览")
	b.waitText("#ov-cards", "请求数")
	b.shot("overview-zh-CN")

	// A key holder sees its own key, no key management, and cannot reach
	// admin routes.
	b.run("en", chromedp.SetValue(chromedp.ID("lang"), "en"), chromedp.Evaluate[chromedp.Void](`document.getElementById('lang').dispatchEvent(new Event('change'))`))
	b.run("sign out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-as-key")),
		chromedp.Click(chromedp.ID("login-as-key")), chromedp.SendKeys(chromedp.ID("login-secret"), playKey),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitText("#ov-mykey", "playground")
	navKeys, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#nav-keys').length`))
	if err != nil {
		t.Fatal(err)
	}
	if navKeys != 0 {
		t.Error("a key holder sees the Keys page")
	}
	b.shot("key-holder")

	if errs := console.take(); len(errs) > 0 {
		t.Errorf("browser console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// browser wraps a chromedp context with failing helpers.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string // directory for screenshots; "" keeps none
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitText waits until the element's text contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.innerText.includes(%q); })()`, sel, want)
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		got := b.text(sel)
		b.t.Fatalf("%s never showed %q (got %.300q): %v", sel, want, got, err)
	}
}

// waitJS waits until the expression js is true.
func (b *browser) waitJS(what, js string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		b.t.Fatalf("%s: never true: %v", what, err)
	}
}

func (b *browser) waitGone(sel string) {
	b.t.Helper()
	js := fmt.Sprintf(`document.querySelector(%q) === null`, sel)
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		b.t.Fatalf("%s still present: %v", sel, err)
	}
}

func (b *browser) open(sel string) {
	b.t.Helper()
	b.run("open "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// text returns the innerText of the first element sel matches ("" if none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q)||{}).innerText||''`, sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// createKey creates a key on the Keys page and returns the plaintext the
// page shows once.
func (b *browser) createKey(name string) string {
	b.t.Helper()
	b.run("create "+name, chromedp.Click(chromedp.ID("nav-keys")), chromedp.WaitVisible(chromedp.ID("key-new")),
		chromedp.Click(chromedp.ID("key-new")), chromedp.WaitVisible(chromedp.ID("kf-name")),
		chromedp.SendKeys(chromedp.ID("kf-name"), name), chromedp.SendKeys(chromedp.ID("kf-budget"), "5"),
		chromedp.Click(chromedp.ID("kf-save")), chromedp.WaitVisible(chromedp.ID("new-key")))
	key := strings.TrimSpace(b.text("#new-key"))
	if !strings.HasPrefix(key, auth.KeyPrefix) {
		b.t.Fatalf("the page showed %q as the new key", key)
	}
	return key
}

// shot saves a viewport screenshot as <shots>/<name>.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	b.run("settle", chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// chatStatus sends one chat completion with key and returns the status.
func chatStatus(t *testing.T, base, key string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
