package ui_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
	"github.com/tollgate/tollgate/internal/ui"
)

const adminToken = "ui-test-admin-token"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t              *testing.T
	srv            *httptest.Server
	h              *ui.Handler
	clock          *clock
	keys           *auth.Manager
	cache          *auth.Cache
	keyA, keyB     string // plaintexts
	keyAID, keyBID string
}

// newFixture serves the dashboard over a SQLite ledger with two keys, A and
// B, each with two rows.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	st, err := storeopen.Open(ctx, filepath.Join(t.TempDir(), "ui.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	mgr := auth.NewManager(st, clk.Now)
	cache := auth.NewCache(st, time.Hour, logger)
	mgr.OnChange = func() { _ = cache.Reload(ctx) }
	f := &fixture{t: t, clock: clk, keys: mgr, cache: cache}
	var ka, kb store.Key
	f.keyA, ka, err = mgr.Create(ctx, auth.CreateOptions{Name: "A", Budget: "10USD/month"})
	if err != nil {
		t.Fatal(err)
	}
	f.keyB, kb, err = mgr.Create(ctx, auth.CreateOptions{Name: "B"})
	if err != nil {
		t.Fatal(err)
	}
	f.keyAID, f.keyBID = ka.ID, kb.ID
	var recs []ledger.Record
	for i, k := range []store.Key{ka, ka, kb, kb} {
		recs = append(recs, ledger.Record{ID: "req_" + k.Name + string(rune('0'+i)), Time: clk.Now().Add(-time.Duration(i+1) * time.Minute),
			KeyID: k.ID, KeyName: k.Name, Model: "gpt-4o-mini", Upstream: "up", Outcome: ledger.OutcomeOK, Status: 200,
			PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, CostNanoUSD: 1234, Priced: true, Endpoint: "/v1/chat/completions"})
	}
	if err := st.InsertRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := cache.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	api := admin.NewAPI(admin.Options{Store: st, Keys: mgr, Now: clk.Now, Logger: logger,
		Recent: func(n int) []ledger.Record { return recs[:min(n, len(recs))] },
		Reload: func(context.Context) error { return nil },
	})
	f.h, err = ui.New(ui.Options{AdminToken: adminToken, API: api, LookupKey: cache.Lookup, GetKey: st.GetKey,
		Now: clk.Now, Logger: logger, SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	return f
}

// resp is a finished response.
type resp struct {
	status int
	header http.Header
	body   string
	cookie *http.Cookie
}

// req is one request: method, path, JSON body, session cookie, CSRF token
// and extra headers.
type req struct {
	method, path, body string
	cookie             string
	csrf               string
	header             map[string]string
}

func (f *fixture) do(r req) resp {
	f.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequestWithContext(f.t.Context(), r.method, f.srv.URL+r.path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: ui.CookieName, Value: r.cookie})
	}
	if r.csrf != "" {
		hr.Header.Set("X-CSRF-Token", r.csrf)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(hr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, body: string(b)}
	for _, c := range res.Cookies() {
		if c.Name == ui.CookieName {
			out.cookie = c
		}
	}
	return out
}

// login signs in with body and returns the cookie value and CSRF token.
func (f *fixture) login(body string) (cookie, csrf string) {
	f.t.Helper()
	r := f.do(req{method: "POST", path: "/ui/api/login", body: body})
	if r.status != http.StatusOK || r.cookie == nil {
		f.t.Fatalf("login %s: %d %s", body, r.status, r.body)
	}
	var v struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil || v.CSRF == "" {
		f.t.Fatalf("login answer %s: %v", r.body, err)
	}
	return r.cookie.Value, v.CSRF
}

func (f *fixture) admin() (string, string) { return f.login(`{"token":"` + adminToken + `"}`) }
