package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/fakeupstream"
)

// TestFailingModelSparesHealthyOne drives the pool over real HTTP against
// the fake upstream, the way the engine does: model "broken" fails in every
// way the fake can before headers (500, 429, reset), model "gpt-4o" on the
// same upstream must never be refused or fail.
func TestFailingModelSparesHealthyOne(t *testing.T) {
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{}))
	defer fake.Close()
	p := mustPool(t, Options{Upstreams: []Config{{Name: "one", BaseURL: fake.URL + "/v1"}}})
	client := fake.Client()

	faults := []map[string]string{
		{"X-Fake-Status": "500"},
		{"X-Fake-Status": "429", "X-Fake-Retry-After": "1"},
		{"X-Fake-Reset": "before"},
		{"X-Fake-Status": "503"},
	}
	healthyOK, brokenReal := 0, 0
	for i := range 60 {
		if i%3 == 0 {
			status, err := send(t, client, p, "gpt-4o", nil)
			if err != nil || status != 200 {
				t.Fatalf("request %d to the healthy model: status %d, %v", i, status, err)
			}
			healthyOK++
			continue
		}
		status, err := send(t, client, p, "broken", faults[i%len(faults)])
		if err == nil && status != 0 {
			brokenReal++ // the client got the upstream's real answer
		}
	}
	if healthyOK != 20 {
		t.Errorf("healthy successes = %d; want 20", healthyOK)
	}
	if brokenReal == 0 {
		t.Errorf("the broken model never reached the upstream: panic mode should let it through")
	}
	st := p.Status()[0]
	if st.State != StateClosed {
		t.Errorf("upstream State = %s; want closed (one model failing)", st.State)
	}
	if got := pairState(p, "one", "broken"); got == StateClosed {
		t.Errorf("broken pair State = %s; want open or cooling", got)
	}
	if got := pairStatus(p, "one", "gpt-4o"); got.State != StateClosed || got.Failures != 0 {
		t.Errorf("healthy pair = %+v; want closed without failures", got)
	}
}

// send runs one request through a one-plan attempt loop: one attempt per
// target in plan order, refusals skipped. It returns the status the client
// would get (0 when every attempt failed before headers).
func send(t *testing.T, client *http.Client, p *Pool, model string, hdr map[string]string) (int, error) {
	t.Helper()
	plan, err := p.Plan(model)
	if err != nil {
		return 0, err
	}
	var last error
	for _, tg := range plan {
		att, err := tg.Acquire(t.Context(), 0)
		if err != nil {
			last = err
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}]}`, tg.Model)
		req, _ := http.NewRequestWithContext(ctx, "POST", tg.Upstream.URL("/chat/completions"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			cancel()
			att.Done(Result{Err: err})
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cancel()
		var ra time.Duration
		if resp.StatusCode == 429 {
			ra = time.Second
		}
		att.Done(Result{Status: resp.StatusCode, TTFB: time.Since(start), RetryAfter: ra})
		return resp.StatusCode, nil
	}
	if last == nil {
		last = errors.New("empty plan")
	}
	return 0, last
}
