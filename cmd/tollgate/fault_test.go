package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/store"
)

// brokenModels fail in every way the fake can, each on every request. The
// healthy model shares their upstream.
var brokenModels = map[string]struct {
	header http.Header
	stream bool
}{
	"broken-500":       {header: http.Header{"X-Fake-Status": {"500"}}},
	"broken-503":       {header: http.Header{"X-Fake-Status": {"503"}}, stream: true},
	"broken-429":       {header: http.Header{"X-Fake-Status": {"429"}, "X-Fake-Retry-After": {"1"}}},
	"broken-reset":     {header: http.Header{"X-Fake-Reset": {"before"}}},
	"broken-midstream": {header: http.Header{"X-Fake-Reset": {"after:3"}}, stream: true},
	"broken-stall":     {header: http.Header{"X-Fake-Delay": {"3s"}}},                                                 // past the upstream's 1s header timeout
	"broken-slow":      {header: http.Header{"X-Fake-Chunk-Delay": {"1500ms"}, "X-Fake-Chunks": {"3"}}, stream: true}, // past the 1s idle timeout
}

// TestFaultsStayWhereTheyStart: over real HTTP, a healthy model stays at
// 100% success while other models on the same upstream fail in every way the
// fake can; after a graceful stop the ledger holds exactly one row per
// request, and no goroutine is left behind.
func TestFaultsStayWhereTheyStart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault soak takes ~15s")
	}
	before := runtime.NumGoroutine()
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true, Chunks: 5}))
	defer fake.Close()
	cfgFile := filepath.Join(t.TempDir(), "tollgate.yaml")
	cfg := fmt.Sprintf("upstreams:\n  - name: fake\n    base_url: %s/v1\n    api_key: sk-upstream-secret-123\n    timeout: 1s\n", fake.URL)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "ledger.db")
	addr, stop, logs := startGateway(t, map[string]string{
		"TOLLGATE_DB": db, "TOLLGATE_CONFIG": cfgFile, "TOLLGATE_LOG_LEVEL": "error",
		"TOLLGATE_IDLE_TIMEOUT": "1s", "TOLLGATE_TIMEOUT": "20s",
	})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	var sent, healthy, healthyOK atomic.Int64
	var failures sync.Map // healthy failures: status -> count
	deadline := time.Now().Add(12 * time.Second)
	var wg sync.WaitGroup
	names := []string{"broken-500", "broken-429", "broken-reset", "broken-503", "broken-midstream", "broken-stall", "broken-slow"}
	// Six workers hammer the broken models; four call the healthy one at a
	// gentle pace, so failures dominate what the upstream sees.
	for w := range 10 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				if w < 6 {
					m := names[(w+i)%len(names)]
					if i%4 != 0 { // mostly the fast failures
						m = names[0:3][i%3]
					}
					b := brokenModels[m]
					sent.Add(1)
					_, _ = call(client, addr, m, b.stream, b.header)
					continue
				}
				time.Sleep(20 * time.Millisecond)
				sent.Add(1)
				healthy.Add(1)
				status, err := call(client, addr, "gpt-4o-mini", i%2 == 0, nil)
				if status == 200 && err == nil {
					healthyOK.Add(1)
				} else {
					key := fmt.Sprintf("%d %v", status, err)
					n, _ := failures.LoadOrStore(key, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
				}
			}
		})
	}
	wg.Wait()
	if healthy.Load() == 0 || healthyOK.Load() != healthy.Load() {
		var why []string
		failures.Range(func(k, v any) bool {
			why = append(why, fmt.Sprintf("%s ×%d", k, v.(*atomic.Int64).Load()))
			return true
		})
		t.Errorf("healthy model: %d of %d succeeded; failures: %v", healthyOK.Load(), healthy.Load(), why)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, logs)
	}
	st := openStore(t, db)
	rep, err := st.Usage(t.Context(), store.UsageQuery{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Requests != sent.Load() {
		t.Errorf("ledger holds %d rows; want exactly one per request: %d", rep.Total.Requests, sent.Load())
	}
	st.Close()
	client.CloseIdleConnections()
	fake.CloseClientConnections()
	var after int
	for range 50 { // goroutines of closed connections wind down asynchronously
		if after = runtime.NumGoroutine(); after <= before+2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after > before+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after the gateway stopped:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("requests %d, healthy %d/%d ok", sent.Load(), healthyOK.Load(), healthy.Load())
}

// call sends one chat request and reads the whole answer. A stream counts as
// successful only if it ended with [DONE].
func call(client *http.Client, addr, model string, stream bool, h http.Header) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, model, stream)
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && stream && resp.StatusCode == 200 && !strings.Contains(string(b), "[DONE]") {
		err = fmt.Errorf("stream ended without [DONE]")
	}
	return resp.StatusCode, err
}
