package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/admin"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
	"github.com/tollgate/tollgate/internal/upstream"
)

const testToken = "admin-token-for-tests"

// now is the fixed clock of every test: relative ranges ("24h", "7d") are
// computed from it.
func now() time.Time { return time.Date(2026, 11, 2, 12, 30, 0, 0, time.UTC) }

type fixture struct {
	t     *testing.T
	url   string
	store store.Store
	keys  *auth.Manager
}

// newFixture serves the admin API over a fresh SQLite file; edit may adjust
// the options before New.
func newFixture(t *testing.T, edit func(*admin.Options)) *fixture {
	t.Helper()
	ctx := t.Context()
	logger := slog.New(slog.DiscardHandler)
	st, err := storeopen.Open(ctx, filepath.Join(t.TempDir(), "admin.db"), logger)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	keys := auth.NewManager(st, now)
	opts := admin.Options{Token: testToken, Store: st, Keys: keys, Now: now, Logger: logger}
	if edit != nil {
		edit(&opts)
	}
	srv := httptest.NewServer(admin.New(opts))
	t.Cleanup(srv.Close)
	return &fixture{t: t, url: srv.URL, store: st, keys: keys}
}

// do sends a request with the admin token and returns status and body.
func (f *fixture) do(method, path, body string) (int, string) {
	f.t.Helper()
	return f.doAuth(method, path, body, "Bearer "+testToken)
}

func (f *fixture) doAuth(method, path, body, authz string) (int, string) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.url+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// decode parses body into v or fails the test.
func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

type errEnvelope struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// wantError checks an OpenAI-shaped error with the given status and, when
// param is not empty, the param it names.
func wantError(t *testing.T, status int, body string, wantStatus int, param string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status = %d, want %d; body %s", status, wantStatus, body)
	}
	e := decode[errEnvelope](t, body)
	if e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error envelope: %s", body)
	}
	if param != "" && (e.Error.Param == nil || *e.Error.Param != param) {
		t.Fatalf("param = %v, want %q; body %s", e.Error.Param, param, body)
	}
}

func rec(id string, age time.Duration, mutate func(*ledger.Record)) ledger.Record {
	r := ledger.Record{
		ID: id, Time: now().Add(-age), KeyID: "key_a", KeyName: "alpha", User: "u1",
		Endpoint: "/v1/chat/completions", Model: "gpt-4o", ModelUsed: "gpt-4o", Upstream: "main",
		Outcome: ledger.OutcomeOK, Status: 200, Attempts: 1,
		PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150,
		CostNanoUSD: 1_500_000, Priced: true, Duration: 250 * time.Millisecond, TTFB: 40 * time.Millisecond,
		ClientIP: "127.0.0.1",
	}
	if mutate != nil {
		mutate(&r)
	}
	return r
}

func (f *fixture) insert(recs ...ledger.Record) {
	f.t.Helper()
	if err := f.store.InsertRecords(f.t.Context(), recs); err != nil {
		f.t.Fatalf("insert records: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, nil)
	off := newFixture(t, func(o *admin.Options) { o.Token = "" })
	tests := []struct {
		name   string
		f      *fixture
		authz  string
		path   string
		status int
	}{
		{"missing token", f, "", "/admin/keys", http.StatusUnauthorized},
		{"wrong token", f, "Bearer nope", "/admin/keys", http.StatusUnauthorized},
		{"token as basic", f, "Basic " + testToken, "/admin/keys", http.StatusUnauthorized},
		{"token with suffix", f, "Bearer " + testToken + "x", "/admin/usage", http.StatusUnauthorized},
		{"right token", f, "Bearer " + testToken, "/admin/keys", http.StatusOK},
		{"scheme is case-insensitive", f, "bearer " + testToken, "/admin/usage", http.StatusOK},
		{"unknown route", f, "Bearer " + testToken, "/admin/nope", http.StatusNotFound},
		{"unknown route needs the token too", f, "", "/admin/nope", http.StatusUnauthorized},
		{"disabled without token", off, "", "/admin/keys", http.StatusNotFound},
		{"disabled even with a bearer", off, "Bearer " + testToken, "/admin/keys", http.StatusNotFound},
		{"disabled with empty bearer", off, "Bearer ", "/admin/logs", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tt.f.doAuth(http.MethodGet, tt.path, "", tt.authz)
			if tt.status == http.StatusOK {
				if status != http.StatusOK {
					t.Fatalf("status = %d, want 200; body %s", status, body)
				}
				return
			}
			wantError(t, status, body, tt.status, "")
			if strings.Contains(body, testToken) {
				t.Fatalf("error body echoes the admin token: %s", body)
			}
		})
	}
}

func TestCrossOriginRejected(t *testing.T) {
	f := newFixture(t, nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/admin/keys", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, resp.StatusCode, string(b), http.StatusForbidden, "")
	keys, err := f.keys.List(t.Context())
	if err != nil || len(keys) != 0 {
		t.Fatalf("cross-origin request created a key: %v %v", keys, err)
	}
}

type logPage struct {
	Data       []admin.LogRow `json:"data"`
	NextCursor *string        `json:"next_cursor"`
}

func ids(rows []admin.LogRow) string {
	var s []string
	for _, r := range rows {
		s = append(s, r.ID)
	}
	return strings.Join(s, ",")
}

func TestLogsFilters(t *testing.T) {
	f := newFixture(t, nil)
	f.insert(
		rec("r1", time.Hour, nil),
		rec("r2", 2*time.Hour, func(r *ledger.Record) { r.Model = "claude-3"; r.KeyID = "key_b"; r.User = "u2" }),
		rec("r3", 3*time.Hour, func(r *ledger.Record) { r.Outcome = ledger.OutcomeUpstreamError; r.Status = 502 }),
		rec("r4", 48*time.Hour, nil),
		rec("r5", 8*24*time.Hour, nil),
	)
	tests := []struct {
		query string
		want  string
	}{
		{"", "r1,r2,r3"}, // default: last 24h
		{"?since=7d", "r1,r2,r3,r4"},
		{"?since=30d", "r1,r2,r3,r4,r5"},
		{"?since=" + now().Add(-150*time.Minute).Format(time.RFC3339), "r1,r2"},
		{"?since=30d&until=24h", "r4,r5"},
		{"?since=30d&until=" + now().Add(-90*time.Minute).Format(time.RFC3339), "r2,r3,r4,r5"},
		{"?model=claude-3", "r2"},
		{"?key=key_b", "r2"},
		{"?user=u1", "r1,r3"},
		{"?outcome=upstream_error", "r3"},
		{"?outcome=ok&model=gpt-4o", "r1"},
		{"?model=none", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, body := f.do(http.MethodGet, "/admin/logs"+tt.query, "")
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			page := decode[logPage](t, body)
			if got := ids(page.Data); got != tt.want {
				t.Fatalf("ids = %q, want %q", got, tt.want)
			}
			if page.Data == nil || !strings.Contains(body, `"data":[`) {
				t.Fatalf("data must be an array: %s", body)
			}
			if page.NextCursor != nil {
				t.Fatalf("next_cursor = %q on a single page", *page.NextCursor)
			}
		})
	}
}

func TestLogsPaging(t *testing.T) {
	f := newFixture(t, nil)
	var recs []ledger.Record
	for i := range 25 {
		// Every third pair shares a timestamp, so the cursor's id tiebreak counts.
		recs = append(recs, rec(fmt.Sprintf("p%02d", i), time.Duration(i/2)*time.Minute, nil))
	}
	f.insert(recs...)
	seen := map[string]bool{}
	var order []admin.LogRow
	path := "/admin/logs?limit=10"
	var sizes []int
	for range 10 { // bounded: 3 pages expected
		status, body := f.do(http.MethodGet, path, "")
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		page := decode[logPage](t, body)
		sizes = append(sizes, len(page.Data))
		for _, r := range page.Data {
			if seen[r.ID] {
				t.Fatalf("row %s on two pages", r.ID)
			}
			seen[r.ID] = true
		}
		order = append(order, page.Data...)
		if page.NextCursor == nil {
			break
		}
		path = "/admin/logs?limit=10&cursor=" + *page.NextCursor
	}
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Fatalf("page sizes = %v, want [10 10 5]", sizes)
	}
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if a.Time.Before(b.Time) || (a.Time.Equal(b.Time) && a.ID < b.ID) {
			t.Fatalf("not newest first at %d: %s %v then %s %v", i, a.ID, a.Time, b.ID, b.Time)
		}
	}
}

func TestBadParams(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		path  string
		param string
	}{
		{"/admin/logs?limit=1001", "limit"},
		{"/admin/logs?limit=0", "limit"},
		{"/admin/logs?limit=ten", "limit"},
		{"/admin/logs?since=yesterday", "since"},
		{"/admin/logs?until=2026-13-45T00:00:00Z", "until"},
		{"/admin/logs?since=1h&until=2h", "until"},
		{"/admin/logs?cursor=%21%21%21", "cursor"},
		{"/admin/logs?outcome=great", "outcome"},
		{"/admin/usage?group_by=week", "group_by"},
		{"/admin/usage?since=-5h", "since"},
		{"/admin/usage?format=xml", "format"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := f.do(http.MethodGet, tt.path, "")
			wantError(t, status, body, http.StatusBadRequest, tt.param)
		})
	}
	status, body := f.do(http.MethodGet, "/admin/logs?limit=1000", "")
	if status != http.StatusOK {
		t.Fatalf("limit=1000 must be allowed: %d %s", status, body)
	}
}

func TestGetLog(t *testing.T) {
	f := newFixture(t, nil)
	f.insert(rec("one", time.Minute, func(r *ledger.Record) {
		r.RequestBody = []byte(`{"model":"gpt-4o"}`)
		r.ResponseBody = []byte(`{"trunc`)
		r.Stream, r.Estimated = true, true
	}))
	status, body := f.do(http.MethodGet, "/admin/logs/one", "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	row := decode[map[string]any](t, body)
	want := map[string]any{
		"id": "one", "time": now().Add(-time.Minute).Format(time.RFC3339), "key_id": "key_a", "model": "gpt-4o",
		"stream": true, "estimated": true, "outcome": "ok", "status": 200.0, "cost_usd": 0.0015,
		"cost_nano_usd": 1_500_000.0, "priced": true, "duration_ms": 250.0, "ttfb_ms": 40.0,
		"total_tokens": 150.0, "response_body": `{"trunc`,
	}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("%s = %#v, want %#v", k, row[k], v)
		}
	}
	if rb, ok := row["request_body"].(map[string]any); !ok || rb["model"] != "gpt-4o" {
		t.Errorf("request_body = %#v, want the JSON object", row["request_body"])
	}

	status, body = f.do(http.MethodGet, "/admin/logs/missing", "")
	wantError(t, status, body, http.StatusNotFound, "")
}

func TestUsage(t *testing.T) {
	f := newFixture(t, nil)
	f.insert(
		rec("u1", time.Hour, nil),
		rec("u2", 2*time.Hour, func(r *ledger.Record) { r.TTFB = 60 * time.Millisecond }),
		rec("u3", 3*time.Hour, func(r *ledger.Record) {
			r.Model, r.KeyID, r.CostNanoUSD = "claude-3", "key_b", 4_000_000
			r.Outcome, r.Status, r.TTFB = ledger.OutcomeUpstreamError, 502, 0
		}),
		rec("old", 10*24*time.Hour, nil),
	)
	status, body := f.do(http.MethodGet, "/admin/usage?group_by=model", "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	rep := decode[store.UsageReport](t, body)
	tot := rep.Total
	if tot.Requests != 3 || tot.Errors != 1 || tot.PromptTokens != 300 || tot.CompletionTokens != 150 || tot.CostNanoUSD != 7_000_000 {
		t.Fatalf("total = %+v", tot)
	}
	if tot.CostUSD != 0.007 {
		t.Fatalf("cost_usd = %v, want 0.007", tot.CostUSD)
	}
	if len(rep.Groups) != 2 || rep.Groups[0].Group != "claude-3" || rep.Groups[1].Group != "gpt-4o" || rep.Groups[1].Requests != 2 {
		t.Fatalf("groups = %+v", rep.Groups)
	}
	// Time to first token: the mean over the requests that have one (40
	// and 60 ms; the failed one has none), null for a group without any.
	raw := decode[struct {
		Total  map[string]any   `json:"total"`
		Groups []map[string]any `json:"groups"`
	}](t, body)
	if raw.Total["ttft_ms_avg"] != 50.0 || raw.Total["ttft_requests"] != 2.0 {
		t.Errorf("total ttft_ms_avg %v over %v, want 50 over 2", raw.Total["ttft_ms_avg"], raw.Total["ttft_requests"])
	}
	if v, ok := raw.Groups[0]["ttft_ms_avg"]; !ok || v != nil {
		t.Errorf("claude-3 ttft_ms_avg = %v (present %v), want null", v, ok)
	}

	tests := []struct {
		query    string
		requests int64
		groups   int
	}{
		{"", 3, 0},
		{"?since=30d", 4, 0},
		{"?since=30d&group_by=day", 4, 2},
		{"?group_by=hour", 3, 3},
		{"?group_by=key", 3, 2},
		{"?key=key_b", 1, 0},
		{"?group_by=upstream&key=key_a", 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, body := f.do(http.MethodGet, "/admin/usage"+tt.query, "")
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			rep := decode[store.UsageReport](t, body)
			if rep.Total.Requests != tt.requests || len(rep.Groups) != tt.groups {
				t.Fatalf("requests %d groups %d, want %d %d: %s", rep.Total.Requests, len(rep.Groups), tt.requests, tt.groups, body)
			}
			if !strings.Contains(body, `"groups":[`) {
				t.Fatalf("groups must be an array: %s", body)
			}
		})
	}

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.url+"/admin/usage?group_by=model&format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("content type %q", ct)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "group,requests,errors,prompt_tokens,completion_tokens") {
		t.Fatalf("csv = %q", b)
	}
	if !strings.HasPrefix(lines[1], "claude-3,1,1,100,50,") || !strings.HasPrefix(lines[3], "TOTAL,3,1,300,150,0,0,0.007,7000000,0,") {
		t.Fatalf("csv rows = %q", lines)
	}
}

func TestUpstreamsNeverShowKeys(t *testing.T) {
	const secret = "sk-upstream-secret-0123456789"
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{
		{Name: "main", BaseURL: "https://api.example.com/v1", APIKey: secret, Models: []string{"gpt-4o"}},
		{Name: "local", BaseURL: "http://127.0.0.1:9/v1"},
	}}, nil)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	f := newFixture(t, func(o *admin.Options) { o.Upstreams = pool.Status })
	status, body := f.do(http.MethodGet, "/admin/upstreams", "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	if strings.Contains(body, secret) || strings.Contains(body, "sk-") {
		t.Fatalf("upstreams reveal the api key: %s", body)
	}
	got := decode[struct{ Data []upstream.Status }](t, body)
	if len(got.Data) != 2 || got.Data[0].Name != "main" || got.Data[1].Name != "local" {
		t.Fatalf("data = %+v", got.Data)
	}

	empty := newFixture(t, nil)
	if status, body := empty.do(http.MethodGet, "/admin/upstreams", ""); status != 200 || strings.TrimSpace(body) != `{"data":[]}` {
		t.Fatalf("no upstreams: %d %s", status, body)
	}
}

func TestReload(t *testing.T) {
	var calls int
	var fail error
	f := newFixture(t, func(o *admin.Options) {
		o.Reload = func(ctx context.Context) error { calls++; return fail }
	})
	status, body := f.do(http.MethodPost, "/admin/reload", "")
	if status != http.StatusOK || strings.TrimSpace(body) != `{"reloaded":true}` || calls != 1 {
		t.Fatalf("reload: %d %s (calls %d)", status, body, calls)
	}
	fail = errors.New("config file tollgate.yaml: unknown field \"upstreamz\"")
	status, body = f.do(http.MethodPost, "/admin/reload", "")
	wantError(t, status, body, http.StatusBadRequest, "")
	if !strings.Contains(body, "upstreamz") {
		t.Fatalf("reload error does not carry the config error: %s", body)
	}
	status, body = f.do(http.MethodGet, "/admin/reload", "")
	wantError(t, status, body, http.StatusNotFound, "")

	off := newFixture(t, nil)
	status, body = off.do(http.MethodPost, "/admin/reload", "")
	wantError(t, status, body, http.StatusNotFound, "")
}

func TestRecent(t *testing.T) {
	ring := ledger.NewRing(10)
	for i := range 5 {
		ring.Record(rec(fmt.Sprintf("live%d", i), 0, nil))
	}
	f := newFixture(t, func(o *admin.Options) { o.Recent = ring.Recent })
	status, body := f.do(http.MethodGet, "/admin/recent?limit=3", "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	if got := ids(decode[logPage](t, body).Data); got != "live4,live3,live2" {
		t.Fatalf("recent = %q", got)
	}
	status, body = f.do(http.MethodGet, "/admin/recent?limit=1001", "")
	wantError(t, status, body, http.StatusBadRequest, "limit")

	off := newFixture(t, nil)
	status, body = off.do(http.MethodGet, "/admin/recent", "")
	wantError(t, status, body, http.StatusNotFound, "")
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"24h", now().Add(-24 * time.Hour), false},
		{"7d", now().Add(-7 * 24 * time.Hour), false},
		{"1d12h", now().Add(-36 * time.Hour), false},
		{"2026-10-01T08:00:00Z", time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC), false},
		{"2026-10-01T10:00:00+02:00", time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC), false},
		{"2026-10-01", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), false},
		{"", time.Time{}, true},
		{"-1h", time.Time{}, true},
		{"last week", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := admin.ParseTime(tt.in, now())
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !tt.err && !got.Equal(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
