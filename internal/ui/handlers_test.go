package ui_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ui"
)

// TestSecurityHeaders: every answer, page, asset, API or error, carries
// the security headers.
func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/ui/", "/ui/assets/" + f.h.AssetVersion() + "/js/app.js", "/ui/api/session",
		"/ui/api/admin/logs", "/ui/nope", "/ui/assets/old/app.css"} {
		r := f.do(req{path: path})
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := r.header.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", path, name, got, want)
			}
		}
		csp := r.header.Get("Content-Security-Policy")
		for _, part := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, part) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, part)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline or eval", path, csp)
		}
	}
}

func TestAssets(t *testing.T) {
	f := newFixture(t)
	idx := f.do(req{path: "/ui/"})
	if idx.status != 200 || idx.header.Get("Cache-Control") != "no-cache" || !strings.Contains(idx.body, "/ui/assets/"+f.h.AssetVersion()+"/js/app.js") {
		t.Fatalf("index: %d %q\n%s", idx.status, idx.header.Get("Cache-Control"), idx.body)
	}
	if strings.Contains(idx.body, "<script>") || strings.Contains(idx.body, "style=") {
		t.Error("index.html has inline script or style")
	}
	tests := []struct {
		path, enc string
		status    int
		cache     string
		gzip      bool
	}{
		{"/ui/assets/" + f.h.AssetVersion() + "/js/app.js", "gzip", 200, "public, max-age=31536000, immutable", true},
		{"/ui/assets/" + f.h.AssetVersion() + "/vendor/uPlot.iife.min.js", "", 200, "public, max-age=31536000, immutable", false},
		{"/ui/assets/" + f.h.AssetVersion() + "/vendor/uPlot.LICENSE", "", 200, "public, max-age=31536000, immutable", false},
		{"/ui/assets/0123456789ab/js/app.js", "gzip", 404, "no-store", false},
		{"/ui/assets/" + f.h.AssetVersion() + "/nope.js", "", 404, "no-store", false},
	}
	for _, tt := range tests {
		r := f.do(req{path: tt.path, header: map[string]string{"Accept-Encoding": tt.enc}})
		if r.status != tt.status || r.header.Get("Cache-Control") != tt.cache {
			t.Errorf("%s: %d %q, want %d %q", tt.path, r.status, r.header.Get("Cache-Control"), tt.status, tt.cache)
		}
		if got := r.header.Get("Content-Encoding") == "gzip"; got != tt.gzip {
			t.Errorf("%s: gzip %v, want %v", tt.path, got, tt.gzip)
		}
	}
	etag := f.do(req{path: "/ui/"}).header.Get("ETag")
	if r := f.do(req{path: "/ui/", header: map[string]string{"If-None-Match": etag}}); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", r.status)
	}
	if r := f.do(req{path: "/ui"}); r.status != http.StatusMovedPermanently || r.header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestAssetBudget: everything a first visit downloads is under 250 KB
// gzip-compressed.
func TestAssetBudget(t *testing.T) {
	n, err := ui.GzipSize()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all dashboard assets: %d bytes gzip-compressed", n)
	if n >= 250_000 {
		t.Errorf("assets are %d bytes compressed, budget 250000", n)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	r := f.do(req{method: "POST", path: "/ui/api/login", body: `{"token":"` + adminToken + `"}`})
	if r.status != 200 || r.cookie == nil {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	c := r.cookie
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui" || c.Secure {
		t.Errorf("cookie over plain HTTP: %+v, want HttpOnly, SameSite=Strict, Path=/ui, not Secure", c)
	}
	if strings.Contains(r.body, adminToken) {
		t.Error("the login answer repeats the token")
	}
	// Behind a TLS-terminating proxy on loopback, the cookie is Secure.
	r = f.do(req{method: "POST", path: "/ui/api/login", body: `{"token":"` + adminToken + `"}`,
		header: map[string]string{"X-Forwarded-Proto": "https"}})
	if r.cookie == nil || !r.cookie.Secure {
		t.Errorf("cookie behind https proxy: %+v, want Secure", r.cookie)
	}
	for _, body := range []string{`{}`, `{"token":"a","key":"b"}`, `not json`, `{"password":"x"}`} {
		if r := f.do(req{method: "POST", path: "/ui/api/login", body: body}); r.status != http.StatusBadRequest {
			t.Errorf("login %s: %d, want 400", body, r.status)
		}
	}
	// A key sign-in with an unknown key is a failure like a wrong token.
	if r := f.do(req{method: "POST", path: "/ui/api/login", body: `{"key":"tg-NOPE"}`}); r.status != http.StatusUnauthorized {
		t.Errorf("unknown key: %d, want 401", r.status)
	}
}

// TestLoginRateLimit: five wrong tokens a minute per client, then 429
// (even for the right token) until the minute is over.
func TestLoginRateLimit(t *testing.T) {
	f := newFixture(t)
	for i := range ui.LoginFailures {
		if r := f.do(req{method: "POST", path: "/ui/api/login", body: `{"token":"wrong"}`}); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, r.status)
		}
	}
	r := f.do(req{method: "POST", path: "/ui/api/login", body: `{"token":"` + adminToken + `"}`})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d (Retry-After %q), want 429", ui.LoginFailures, r.status, r.header.Get("Retry-After"))
	}
	f.clock.Add(61 * time.Second)
	f.admin() // fails the test unless it works again
}

func TestSessionRequired(t *testing.T) {
	f := newFixture(t)
	cookie, csrf := f.admin()
	paths := []string{"/ui/api/admin/logs", "/ui/api/admin/usage", "/ui/api/admin/keys", "/ui/api/admin/upstreams", "/ui/api/admin/recent"}
	for _, p := range paths {
		if r := f.do(req{path: p}); r.status != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d, want 401", p, r.status)
		}
		if r := f.do(req{path: p, cookie: "forged"}); r.status != http.StatusUnauthorized {
			t.Errorf("%s with a forged cookie: %d, want 401", p, r.status)
		}
		if r := f.do(req{path: p, cookie: cookie}); r.status != http.StatusOK {
			t.Errorf("%s as admin: %d %s", p, r.status, r.body)
		}
	}
	// The session probe says "not signed in" with a 200.
	if r := f.do(req{path: "/ui/api/session"}); r.status != 200 || strings.Contains(r.body, "csrf") {
		t.Errorf("session without cookie: %d %s", r.status, r.body)
	}
	if r := f.do(req{path: "/ui/api/session", cookie: cookie}); !strings.Contains(r.body, csrf) || !strings.Contains(r.body, `"admin"`) {
		t.Errorf("session: %s", r.body)
	}
	// Expired.
	f.clock.Add(time.Hour + time.Second)
	for _, p := range paths {
		if r := f.do(req{path: p, cookie: cookie}); r.status != http.StatusUnauthorized {
			t.Errorf("%s with an expired session: %d, want 401", p, r.status)
		}
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	cookie, csrf := f.admin()
	body := `{"name":"new"}`
	if r := f.do(req{method: "POST", path: "/ui/api/admin/keys", body: body, cookie: cookie}); r.status != http.StatusForbidden {
		t.Errorf("create without CSRF token: %d, want 403", r.status)
	}
	if r := f.do(req{method: "POST", path: "/ui/api/admin/keys", body: body, cookie: cookie, csrf: "wrong"}); r.status != http.StatusForbidden {
		t.Errorf("create with a wrong CSRF token: %d, want 403", r.status)
	}
	// Another session's token does not do either.
	_, other := f.admin()
	if r := f.do(req{method: "POST", path: "/ui/api/admin/keys", body: body, cookie: cookie, csrf: other}); r.status != http.StatusForbidden {
		t.Errorf("create with another session's CSRF token: %d, want 403", r.status)
	}
	// A cross-site request is refused before anything else.
	if r := f.do(req{method: "POST", path: "/ui/api/admin/keys", body: body, cookie: cookie, csrf: csrf,
		header: map[string]string{"Sec-Fetch-Site": "cross-site"}}); r.status != http.StatusForbidden {
		t.Errorf("cross-site create: %d, want 403", r.status)
	}
	r := f.do(req{method: "POST", path: "/ui/api/admin/keys", body: body, cookie: cookie, csrf: csrf})
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"key":"tg-`) {
		t.Fatalf("create with CSRF token: %d %s", r.status, r.body)
	}
	if r := f.do(req{method: "POST", path: "/ui/api/logout", cookie: cookie}); r.status != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %d, want 403", r.status)
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t)
	cookie, csrf := f.admin()
	r := f.do(req{method: "POST", path: "/ui/api/logout", cookie: cookie, csrf: csrf})
	if r.status != 200 || r.cookie == nil || r.cookie.MaxAge >= 0 {
		t.Fatalf("logout: %d %+v", r.status, r.cookie)
	}
	if r := f.do(req{path: "/ui/api/admin/keys", cookie: cookie}); r.status != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", r.status)
	}
}

func TestOneTimeLogin(t *testing.T) {
	f := newFixture(t)
	link := f.h.OneTimeLogin(time.Minute)
	r := f.do(req{path: link})
	if r.status != http.StatusSeeOther || r.cookie == nil || r.header.Get("Location") != "/ui/" {
		t.Fatalf("one-time link: %d %+v", r.status, r.cookie)
	}
	if s := f.do(req{path: "/ui/api/session", cookie: r.cookie.Value}); !strings.Contains(s.body, `"admin"`) {
		t.Errorf("session from the link: %s", s.body)
	}
	if r := f.do(req{path: link}); r.status != http.StatusUnauthorized {
		t.Errorf("second use: %d, want 401", r.status)
	}
	expired := f.h.OneTimeLogin(time.Minute)
	f.clock.Add(2 * time.Minute)
	if r := f.do(req{path: expired}); r.status != http.StatusUnauthorized {
		t.Errorf("expired link: %d, want 401", r.status)
	}
}

// TestKeyHolder: a key holder sees its own key's rows, usage and entry,
// gets 404 for another key's, and 403 on everything that is not its own
// read-only view.
func TestKeyHolder(t *testing.T) {
	f := newFixture(t)
	cookie, csrf := f.login(`{"key":"` + f.keyA + `"}`)
	get := func(p string) resp { return f.do(req{path: p, cookie: cookie}) }

	var logs struct {
		Data []struct {
			KeyID string `json:"key_id"`
			ID    string `json:"id"`
		} `json:"data"`
	}
	// Asking for key B's logs still answers only A's.
	r := get("/ui/api/admin/logs?key=" + f.keyBID)
	if err := json.Unmarshal([]byte(r.body), &logs); err != nil || len(logs.Data) != 2 {
		t.Fatalf("logs: %d %s", r.status, r.body)
	}
	for _, l := range logs.Data {
		if l.KeyID != f.keyAID {
			t.Errorf("key holder A sees a row of %s", l.KeyID)
		}
	}
	if r := get("/ui/api/admin/logs/" + logs.Data[0].ID); r.status != 200 {
		t.Errorf("own row: %d", r.status)
	}
	for _, p := range []string{"/ui/api/admin/logs/req_B2", "/ui/api/admin/keys/" + f.keyBID} {
		if r := get(p); r.status != http.StatusNotFound {
			t.Errorf("%s (key B's) as A: %d, want 404", p, r.status)
		}
	}
	var usage struct {
		Total struct {
			Requests int `json:"requests"`
		} `json:"total"`
	}
	r = get("/ui/api/admin/usage?since=1h&key=" + f.keyBID)
	if err := json.Unmarshal([]byte(r.body), &usage); err != nil || usage.Total.Requests != 2 {
		t.Errorf("usage as A: %s, want A's 2 requests", r.body)
	}
	if r := get("/ui/api/admin/keys"); !strings.Contains(r.body, f.keyAID) || strings.Contains(r.body, f.keyBID) {
		t.Errorf("key list as A: %s", r.body)
	}
	if r := get("/ui/api/admin/recent"); strings.Contains(r.body, f.keyBID) || !strings.Contains(r.body, f.keyAID) {
		t.Errorf("recent as A: %s", r.body)
	}
	if r := get("/ui/api/admin/upstreams"); r.status != http.StatusForbidden {
		t.Errorf("upstreams as A: %d, want 403", r.status)
	}
	for _, w := range []req{
		{method: "POST", path: "/ui/api/admin/keys", body: `{"name":"x"}`},
		{method: "PATCH", path: "/ui/api/admin/keys/" + f.keyAID, body: `{"rpm":1}`},
		{method: "POST", path: "/ui/api/admin/keys/" + f.keyAID + "/rotate"},
		{method: "POST", path: "/ui/api/admin/keys/" + f.keyBID + "/revoke"},
		{method: "POST", path: "/ui/api/admin/reload"},
	} {
		w.cookie, w.csrf = cookie, csrf
		if r := f.do(w); r.status != http.StatusForbidden {
			t.Errorf("%s %s as A: %d, want 403", w.method, w.path, r.status)
		}
	}
	// Revoking the key ends its sessions.
	if err := f.keys.Revoke(t.Context(), f.keyAID); err != nil {
		t.Fatal(err)
	}
	if r := get("/ui/api/admin/logs"); r.status != http.StatusUnauthorized {
		t.Errorf("after revocation: %d, want 401", r.status)
	}
	if r := f.do(req{method: "POST", path: "/ui/api/login", body: `{"key":"` + f.keyA + `"}`}); r.status != http.StatusUnauthorized {
		t.Errorf("sign-in with a revoked key: %d, want 401", r.status)
	}
}

// TestAdminRoutes: every admin route the pages use answers through the
// session.
func TestAdminRoutes(t *testing.T) {
	f := newFixture(t)
	cookie, csrf := f.admin()
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/ui/api/admin/usage?since=1h&group_by=hour", "", 200, `"requests":4`},
		{"GET", "/ui/api/admin/usage?since=1h&group_by=key", "", 200, f.keyBID},
		{"GET", "/ui/api/admin/logs?limit=1", "", 200, `"next_cursor":"`},
		{"GET", "/ui/api/admin/logs?status=200&stream=false&upstream=up&model=gpt-4o-mini&outcome=ok", "", 200, `"req_A0"`},
		{"GET", "/ui/api/admin/logs?status=abc", "", 400, "status"},
		{"GET", "/ui/api/admin/logs?format=csv", "", 200, "id,time,key_id"},
		{"GET", "/ui/api/admin/logs/req_B2", "", 200, `"key_name":"B"`},
		{"GET", "/ui/api/admin/recent?id=req_B3", "", 200, `"req_B3"`},
		{"GET", "/ui/api/admin/keys", "", 200, `"spend_this_period_nano_usd":2468`},
		{"PATCH", "/ui/api/admin/keys/" + f.keyBID, `{"rpm":7}`, 200, `"rpm":7`},
		{"POST", "/ui/api/admin/keys/" + f.keyBID + "/rotate", "", 200, `"key":"tg-`},
		{"POST", "/ui/api/admin/keys/" + f.keyBID + "/revoke", "", 200, `"status":"revoked"`},
		{"GET", "/ui/api/admin/upstreams", "", 200, `"data":[]`},
		{"POST", "/ui/api/admin/reload", "", 200, `"reloaded":true`},
		{"GET", "/ui/api/admin/nope", "", 404, "no admin route"},
	}
	for _, tt := range tests {
		r := f.do(req{method: tt.method, path: tt.path, body: tt.body, cookie: cookie, csrf: csrf})
		if r.status != tt.status || !strings.Contains(r.body, tt.want) {
			t.Errorf("%s %s: %d %.300s; want %d with %q", tt.method, tt.path, r.status, r.body, tt.status, tt.want)
		}
	}
	if r := f.do(req{path: "/ui/api/admin/logs?format=csv", cookie: cookie}); strings.Count(r.body, "\n") != 5 {
		t.Errorf("csv has %d lines, want header + 4:\n%s", strings.Count(r.body, "\n"), r.body)
	}
}
