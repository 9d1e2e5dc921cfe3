package openai_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/metrics"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

type canned []byte

func (c canned) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(c)), ContentLength: int64(len(c)), Request: r}, nil
}

type discardRecorder struct{}

func (discardRecorder) Record(ledger.Record) {}

// BenchmarkForwardChatObserved prices "metrics and logs on": the proxy's own
// work for a non-stream call with and without the JSON access log and the
// Prometheus observer. (An external test package: metrics imports proxy.)
func BenchmarkForwardChatObserved(b *testing.B) {
	resp := canned(`{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27}}`)
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in five words please."}]}`)
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{Name: "u", BaseURL: "http://upstream.invalid/v1"}}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			p := &proxy.Proxy{
				Pool: func() proxy.Planner { return pool }, Transport: resp, Recorder: discardRecorder{},
				DefaultModel: "m", Timeout: time.Minute, MaxBody: 1 << 20, Estimate: ledger.EstimateTokens,
			}
			if on {
				p.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
				p.Observer = metrics.New(prometheus.NewRegistry(), metrics.Options{KnownModels: []string{"gpt-4o-mini"}})
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				p.Handler(openai.Dialect{}).ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", bytes.NewReader(body)))
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
