package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
)

// freshPostgres returns a URL of a new, empty schema on the test server, or
// skips when TOLLGATE_TEST_POSTGRES_URL is unset.
func freshPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("TOLLGATE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("set TOLLGATE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run PostgreSQL tests")
	}
	schema := "tg_e2e_" + strings.ToLower(rand.Text()[:10])
	conn, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("TOLLGATE_TEST_REDIS_URL")
	if u == "" {
		t.Skip("set TOLLGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run Redis tests")
	}
	return u
}

func openStore(t *testing.T, dbURL string) store.Store {
	t.Helper()
	st, err := storeopen.Open(t.Context(), dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestLedgerExactRowsAfterShutdown: 2000 concurrent requests of mixed
// outcomes leave exactly 2000 rows once the gateway has shut down.
func TestLedgerExactRowsAfterShutdown(t *testing.T) {
	backends := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "ledger.db") },
		"postgres": freshPostgres,
	}
	for name, dbURL := range backends {
		t.Run(name, func(t *testing.T) {
			db := dbURL(t)
			// The 5xx share of this run would open the only upstream's
			// circuit; this test is about the ledger, so the breaker is off.
			cfgFile := filepath.Join(t.TempDir(), "tollgate.yaml")
			if err := os.WriteFile(cfgFile, []byte("breaker: {consecutive_failures: -1, failure_ratio: -1}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
			defer fake.Close()
			addr, stop, _ := startGateway(t, map[string]string{
				"TAOTOKEN_BASE_URL":  fake.URL + "/v1",
				"TOLLGATE_DB":        db,
				"TOLLGATE_LOG_LEVEL": "error",
				"TOLLGATE_CONFIG":    cfgFile,
			})
			const total = 2000
			kinds := []string{"ok", "stream-ok", "bad-json", "not-found", "5xx", "cancel"}
			var wg sync.WaitGroup
			sem := make(chan struct{}, 128)
			var statusErr atomic.Int64
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
			for i := range total {
				wg.Add(1)
				sem <- struct{}{}
				go func(kind string) {
					defer wg.Done()
					defer func() { <-sem }()
					if !doKind(client, addr, kind) {
						statusErr.Add(1)
					}
				}(kinds[i%len(kinds)])
			}
			wg.Wait()
			if n := statusErr.Load(); n > 0 {
				t.Errorf("%d requests got an unexpected answer", n)
			}
			if err := stop(); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			st := openStore(t, db)
			rep, err := st.Usage(t.Context(), store.UsageQuery{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Total.Requests != total {
				t.Errorf("ledger holds %d requests; want exactly %d", rep.Total.Requests, total)
			}
			counts := map[ledger.Outcome]int{}
			cursor := ""
			for {
				rows, next, err := st.ListLogs(t.Context(), store.LogFilter{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour), Limit: 1000, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					counts[r.Outcome]++
				}
				if next == "" {
					break
				}
				cursor = next
			}
			sum := 0
			for _, n := range counts {
				sum += n
			}
			per := total / len(kinds)
			if sum != total || counts[ledger.OutcomeOK] < 2*per || counts[ledger.OutcomeClientError] < 2*per-1 ||
				counts[ledger.OutcomeUpstreamError] < per-1 || counts[ledger.OutcomeCancelled] == 0 {
				t.Errorf("raw rows by outcome = %v (sum %d); want %d rows of every kind", counts, sum, total)
			}
		})
	}
}

// doKind sends one request of a kind and reports whether the answer was
// the expected one.
func doKind(client *http.Client, addr, kind string) bool {
	url := "http://" + addr + "/v1/chat/completions"
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	want := 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hdr := http.Header{"Content-Type": {"application/json"}}
	switch kind {
	case "stream-ok":
		body = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	case "bad-json":
		body, want = `{"model":`, 400
	case "not-found":
		body, want = `{"model":"missing-model","messages":[{"role":"user","content":"hi"}]}`, 404
	case "5xx":
		hdr.Set("X-Fake-Status", "503")
		want = 503
	case "cancel":
		body = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		hdr.Set("X-Fake-Chunks", "40")
		hdr.Set("X-Fake-Chunk-Delay", "25ms")
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	req.Header = hdr
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if kind == "cancel" {
		_, err := bufio.NewReader(resp.Body).ReadString('\n')
		cancel()
		return err == nil && resp.StatusCode == 200
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == want
}

func post(t *testing.T, addr, key, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestAccessControlEndToEnd(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "keys.db")
	cfgFile := filepath.Join(dir, "tollgate.yaml")
	// A pricey model makes a $0.01 budget small enough to cross in two calls.
	if err := os.WriteFile(cfgFile, []byte("prices:\n  pricey: {input: 100, output: 1000}\nlimits:\n  default_max_tokens: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, db)
	mgr := auth.NewManager(st, time.Now)
	ctx := t.Context()
	good, _, err := mgr.Create(ctx, auth.CreateOptions{Name: "good", Models: []string{"gpt-4o*", "pricey"}})
	if err != nil {
		t.Fatal(err)
	}
	limited, _, _ := mgr.Create(ctx, auth.CreateOptions{Name: "limited", RPM: 2})
	budget, _, _ := mgr.Create(ctx, auth.CreateOptions{Name: "budget", Budget: "0.01USD/total"})
	revoked, rk, _ := mgr.Create(ctx, auth.CreateOptions{Name: "revoked"})
	if err := mgr.Revoke(ctx, rk.ID); err != nil {
		t.Fatal(err)
	}
	// A manager whose clock is an hour behind creates a key that expired 59 minutes ago.
	past := auth.NewManager(st, func() time.Time { return time.Now().Add(-time.Hour) })
	expired, _, err := past.Create(ctx, auth.CreateOptions{Name: "expired", Expires: "1m"})
	if err != nil {
		t.Fatal(err)
	}

	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
	defer fake.Close()
	addr, _, logs := startGateway(t, map[string]string{
		"TAOTOKEN_BASE_URL": fake.URL + "/v1", "TOLLGATE_DB": db, "TOLLGATE_AUTH": "enabled", "TOLLGATE_CONFIG": cfgFile,
	})
	chat := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
	}
	tests := []struct {
		name, key, body string
		want            int
		wantCode, inMsg string
	}{
		{"ok", good, chat("gpt-4o-mini"), 200, "", ""},
		{"missing key", "", chat("gpt-4o-mini"), 401, "invalid_api_key", "missing API key"},
		{"unknown key", "tg-NOTAREALKEY0000000000000", chat("gpt-4o-mini"), 401, "invalid_api_key", "invalid API key"},
		{"revoked", revoked, chat("gpt-4o-mini"), 401, "invalid_api_key", "revoked"},
		{"expired", expired, chat("gpt-4o-mini"), 401, "invalid_api_key", "expired"},
		{"model not allowed", good, chat("claude-sonnet-4-6"), 403, "model_not_allowed", "claude-sonnet-4-6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, addr, tt.key, tt.body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d; want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.wantCode != "" && (!strings.Contains(body, `"code":"`+tt.wantCode+`"`) || !strings.Contains(body, tt.inMsg)) {
				t.Errorf("body %s; want code %q and %q in the message", body, tt.wantCode, tt.inMsg)
			}
		})
	}

	t.Run("rate limited", func(t *testing.T) {
		var last *http.Response
		var body string
		for range 3 {
			last, body = post(t, addr, limited, chat("gpt-4o-mini"))
		}
		if last.StatusCode != 429 || !strings.Contains(body, "rate_limit_exceeded") {
			t.Fatalf("third request: %d %s; want 429 rate_limit_exceeded", last.StatusCode, body)
		}
		if last.Header.Get("Retry-After") == "" || last.Header.Get("X-Ratelimit-Limit-Requests") != "2" ||
			last.Header.Get("X-Ratelimit-Remaining-Requests") != "0" || last.Header.Get("X-Ratelimit-Reset-Requests") == "" {
			t.Errorf("headers %v; want Retry-After and x-ratelimit-*", last.Header)
		}
	})

	t.Run("budget stops the key after the request that crossed it", func(t *testing.T) {
		statuses := []int{}
		for range 4 {
			resp, body := post(t, addr, budget, chat("pricey"))
			statuses = append(statuses, resp.StatusCode)
			if resp.StatusCode == 429 && !strings.Contains(body, "insufficient_quota") {
				t.Errorf("429 body %s; want insufficient_quota", body)
			}
		}
		// Each call costs $0.008: the first stays under $0.01, the second
		// crosses it, every later one is refused.
		if fmt.Sprint(statuses) != "[200 200 429 429]" {
			t.Errorf("statuses %v; want [200 200 429 429]", statuses)
		}
	})
	if strings.Contains(logs.String(), good) || strings.Contains(logs.String(), budget) {
		t.Error("a gateway key appeared in the logs")
	}
}

// TestCrossReplicaLimits runs two gateway processes on one PostgreSQL and
// one Redis: a 60 rpm key admits exactly 60 of 150 requests spread over
// both, and a revocation made on the shared database is seen by the other
// replica within 5 s.
func TestCrossReplicaLimits(t *testing.T) {
	db := freshPostgres(t)
	rurl := redisURL(t)
	st := openStore(t, db)
	mgr := auth.NewManager(st, time.Now)
	key, k, err := mgr.Create(t.Context(), auth.CreateOptions{Name: "shared", RPM: 60})
	if err != nil {
		t.Fatal(err)
	}
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
	defer fake.Close()
	bin := buildBinary(t)
	vars := []string{
		"TAOTOKEN_API_KEY=sk-upstream-secret-123", "TAOTOKEN_BASE_URL=" + fake.URL + "/v1", "TOLLGATE_DB=" + db,
		"TOLLGATE_AUTH=enabled", "TOLLGATE_REDIS_URL=" + rurl, "TOLLGATE_LISTEN=127.0.0.1:0", "TOLLGATE_LOG_LEVEL=info",
	}
	a, b := startProcess(t, bin, vars), startProcess(t, bin, vars)
	replicas := []string{a, b}

	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 150 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, replicas[i%2], key, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 429:
				limited.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The bucket refills one request per second; within the first second
	// exactly 60 pass.
	maxOK := int64(60 + int(elapsed/time.Second))
	if ok.Load() < 60 || ok.Load() > maxOK || ok.Load()+limited.Load() != 150 {
		t.Errorf("%d admitted, %d limited in %v; want exactly 60 admitted (≤ %d counting refill)", ok.Load(), limited.Load(), elapsed, maxOK)
	}
	t.Logf("%d admitted, %d limited in %v across two processes", ok.Load(), limited.Load(), elapsed.Round(time.Millisecond))

	if err := mgr.Revoke(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	for {
		resp, body := post(t, b, key, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode == 401 && strings.Contains(body, "revoked") {
			break
		}
		if time.Since(revokedAt) > 5*time.Second {
			t.Fatalf("replica still accepts the revoked key after 5s (last %d)", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("revocation seen by the other replica after %v", time.Since(revokedAt).Round(time.Millisecond))
}

// buildBinary builds this command once per test into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tollgate")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess runs the gateway binary with env and returns its address once
// it listens. It is stopped with SIGTERM (by its PID) when the test ends.
func startProcess(t *testing.T, bin string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			if strings.Contains(line, `"msg":"tollgate listening"`) {
				if _, rest, ok := strings.Cut(line, `"addr":"`); ok {
					addr, _, _ := strings.Cut(rest, `"`)
					addrc <- addr
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway process exited with %v after SIGTERM\n%s", err, logs)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("gateway process did not stop within 30s of SIGTERM")
		}
		if strings.Contains(logs.String(), "sk-upstream-secret-123") {
			t.Error("the upstream key appeared in a gateway process's logs")
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway process did not start listening\n%s", logs)
		return ""
	}
}

// TestMetricsAndSecretFreeLogs scrapes /metrics after a scripted run and
// greps every log line of the run for secrets and message content.
func TestMetricsAndSecretFreeLogs(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "m.db")
	st := openStore(t, db)
	key, _, err := auth.NewManager(st, time.Now).Create(t.Context(), auth.CreateOptions{Name: "metrics-key"})
	if err != nil {
		t.Fatal(err)
	}
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
	defer fake.Close()
	addr, stop, logs := startGateway(t, map[string]string{
		"TAOTOKEN_BASE_URL": fake.URL + "/v1", "TOLLGATE_DB": db, "TOLLGATE_AUTH": "enabled",
		"TOLLGATE_LOG_LEVEL": "debug", "TOLLGATE_MAX_RETRIES": "1",
	})
	const secret = "my very private message 42"
	msg := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + secret + `"}]}`
	for range 3 {
		if resp, body := post(t, addr, key, msg); resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
	}
	if resp, _ := post(t, addr, key, `{"model":`); resp.StatusCode != 400 {
		t.Fatalf("bad json: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/chat/completions", strings.NewReader(msg))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Fake-Status", "500")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("scripted 500: got %d", resp.StatusCode)
	}
	if resp, _ := post(t, addr, "", msg); resp.StatusCode != 401 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	// The key is checked before the body is read: no key and a broken
	// body is 401, as OpenAI answers, not 400.
	if resp, body := post(t, addr, "", `{"model":`); resp.StatusCode != 401 || !strings.Contains(body, "invalid_api_key") {
		t.Fatalf("no key, bad json: %d %s", resp.StatusCode, body)
	}

	mresp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scrape, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	want := []string{
		`tollgate_requests_total{model="gpt-4o-mini",outcome="ok",route="/v1/chat/completions",upstream="taotoken"} 3`,
		`tollgate_requests_total{model="none",outcome="client_error",route="/v1/chat/completions",upstream="none"} 1`,
		`tollgate_requests_total{model="gpt-4o-mini",outcome="upstream_error",route="/v1/chat/completions",upstream="taotoken"} 1`,
		// A request without a valid key is refused before its body is
		// read: it names no model.
		`tollgate_requests_total{model="none",outcome="unauthorized",route="/v1/chat/completions",upstream="none"} 2`,
		`tollgate_upstream_attempts_total{status="2xx",upstream="taotoken"} 3`,
		`tollgate_upstream_attempts_total{status="5xx",upstream="taotoken"} 2`,
		`tollgate_time_to_first_token_seconds_bucket{`,
		`le="0.05"`,
		`le="300"`,
		`go_goroutines`,
	}
	for _, w := range want {
		if !strings.Contains(string(scrape), w) {
			t.Errorf("metrics lack %s", w)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(string(scrape), "\n") {
			if strings.HasPrefix(l, "tollgate_requests_total") || strings.HasPrefix(l, "tollgate_upstream_attempts_total") {
				t.Log(l)
			}
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"request"`) {
		t.Fatal("no access log lines captured")
	}
	for name, s := range map[string]string{"upstream key": "sk-upstream-secret-123", "gateway key": key, "message text": secret} {
		if strings.Contains(out, s) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}

// TestReloadKeepsServing: a broken config is refused with its error and the
// running one keeps serving; a good one takes effect without a restart.
func TestReloadKeepsServing(t *testing.T) {
	fakeA := fakeupstream.New(fakeupstream.Options{})
	fakeB := fakeupstream.New(fakeupstream.Options{})
	srvA, srvB := httptest.NewServer(fakeA), httptest.NewServer(fakeB)
	defer srvA.Close()
	defer srvB.Close()
	cfgFile := filepath.Join(t.TempDir(), "tollgate.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfgFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("upstreams:\n  - name: a\n    base_url: " + srvA.URL + "/v1\n")
	addr, _, _ := startGateway(t, map[string]string{"TOLLGATE_CONFIG": cfgFile, "TOLLGATE_ADMIN_TOKEN": "admin-secret"})
	reload := func() (int, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/admin/reload", nil)
		req.Header.Set("Authorization", "Bearer admin-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	chat := `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}`

	write("upstreams:\n  - name: a\n    base_url: not a url\n")
	if status, body := reload(); status != 400 || !strings.Contains(body, "base_url") {
		t.Errorf("broken reload: %d %s; want 400 naming base_url", status, body)
	}
	if resp, _ := post(t, addr, "", chat); resp.StatusCode != 200 || len(fakeA.Requests()) != 1 {
		t.Fatalf("after a refused reload: status %d, upstream a saw %d", resp.StatusCode, len(fakeA.Requests()))
	}

	write("upstreams:\n  - name: b\n    base_url: " + srvB.URL + "/v1\n")
	if status, body := reload(); status != 200 {
		t.Fatalf("good reload: %d %s", status, body)
	}
	if resp, _ := post(t, addr, "", chat); resp.StatusCode != 200 || len(fakeB.Requests()) != 1 {
		t.Errorf("after reload: status %d, upstream b saw %d requests; want 1", resp.StatusCode, len(fakeB.Requests()))
	}
}
