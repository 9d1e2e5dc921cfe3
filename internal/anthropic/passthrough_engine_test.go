package anthropic

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

const passKey = "sk-ant-upstream-SECRET"

// tee records the bytes an upstream handler writes, so a test can compare
// them with what the client received.
type tee struct {
	mu  sync.Mutex
	out []byte
	h   http.Handler
}

type teeWriter struct {
	http.ResponseWriter
	t *tee
}

func (w teeWriter) Write(b []byte) (int, error) {
	w.t.mu.Lock()
	w.t.out = append(w.t.out, b...)
	w.t.mu.Unlock()
	return w.ResponseWriter.Write(b)
}

func (w teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (t *tee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.h.ServeHTTP(teeWriter{w, t}, r)
}

// take returns and clears what was written.
func (t *tee) take() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.out
	t.out = nil
	return out
}

// passGateway runs the real engine with this dialect in front of the fake's
// Anthropic endpoints, configured as an `api: anthropic` upstream.
func passGateway(t *testing.T) (*httptest.Server, *fakeupstream.Server, *tee, recorder) {
	t.Helper()
	fake := fakeupstream.New(fakeupstream.Options{Chunks: 5, APIKey: passKey})
	tap := &tee{h: fake}
	up := httptest.NewServer(tap)
	t.Cleanup(up.Close)
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{
		{Name: "anthropic", API: upstream.APIAnthropic, BaseURL: up.URL + "/v1", APIKey: passKey},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := make(recorder, 16)
	px := &proxy.Proxy{
		Transport: proxy.NewTransport(),
		Recorder:  rec,
		Logger:    slog.New(slog.DiscardHandler),
		Pool:      func() proxy.Planner { return pool },
		Timeout:   10 * time.Second,
		MaxBody:   1 << 20,
		Estimate:  func(b []byte) int64 { return int64(len(b)+3) / 4 },
		// Every token class at its own rate, so a token counted in the
		// wrong class changes the cost.
		Cost: func(_, _ string, u proxy.Usage) (int64, bool) {
			return 3*(u.Prompt-u.Cached-u.CacheWrite) + u.Cached + 4*u.CacheWrite + 15*u.Completion, true
		},
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/messages", px.Handler(New(nil)))
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	return gw, fake, tap, rec
}

// TestPassthroughEngine sends requests through the engine to an
// `api: anthropic` upstream: the body reaches it byte for byte with the
// upstream key as x-api-key and the client's anthropic-* headers; the answer
// comes back byte for byte; the ledger row carries the upstream's usage with
// cache reads and writes apart, the same streamed or not.
func TestPassthroughEngine(t *testing.T) {
	gw, fake, tap, rec := passGateway(t)
	bodies := map[string]string{
		"text": `{"model":"claude-sonnet-4-6","max_tokens":100,"metadata":{"user_id":"u-7"},` +
			`"system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],` +
			`"messages":[{"role":"user","content":"hello there world"}],"top_k":5,"context_management":{"edits":[]}}`,
		"tool use": `{"model":"claude-sonnet-4-6","max_tokens":100,"tools":[{"name":"Read","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}],` +
			`"messages":[{"role":"user","content":"a.go"}]}`,
		"no cache, max_tokens stop": `{"model":"claude-sonnet-4-6","max_tokens":2,"messages":[{"role":"user","content":"hello there world"}]}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			var rows [2]ledger.Record
			for i, b := range []string{body, strings.Replace(body, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)} {
				fake.Reset()
				tap.take()
				req, _ := http.NewRequestWithContext(t.Context(), "POST", gw.URL+"/v1/messages?beta=true", strings.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Api-Key", "tg-gateway-key")
				req.Header.Set("Anthropic-Version", "2023-06-01")
				req.Header.Set("Anthropic-Beta", "context-management-2025-06-27,prompt-caching-2024-07-31")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, got)
				}
				if sent := tap.take(); !bytes.Equal(got, sent) {
					t.Errorf("answer changed on the way:\nupstream %s\nclient   %s", sent, got)
				}
				reqs := fake.Requests()
				if len(reqs) != 1 {
					t.Fatalf("%d upstream requests", len(reqs))
				}
				up := reqs[0]
				if string(up.Body) != b || up.Path != "/v1/messages" {
					t.Errorf("upstream got %s %s\nwant body %s", up.Path, up.Body, b)
				}
				h := up.Header
				if h.Get("X-Api-Key") != passKey || h.Get("Authorization") != "" ||
					h.Get("Anthropic-Version") != "2023-06-01" || h.Get("Anthropic-Beta") != req.Header.Get("Anthropic-Beta") {
					t.Errorf("upstream headers: x-api-key set %v, authorization %q, version %q, beta %q",
						h.Get("X-Api-Key") == passKey, h.Get("Authorization"), h.Get("Anthropic-Version"), h.Get("Anthropic-Beta"))
				}
				rows[i] = rec.next(t)
			}
			whole := rows[0]
			if whole.Stream || !rows[1].Stream || whole.Estimated || whole.Upstream != "anthropic" || whole.Status != 200 {
				t.Errorf("row %+v", whole)
			}
			// The fake reports bytes/4 of messages and system as the prompt;
			// with cache_control half of it as cache reads, a quarter as
			// cache writes, and the rest as input_tokens.
			cached := strings.Contains(body, "cache_control")
			if cached != (whole.CachedTokens > 0 && whole.CacheWriteTokens > 0) ||
				whole.CachedTokens < whole.CacheWriteTokens || whole.PromptTokens <= whole.CachedTokens+whole.CacheWriteTokens {
				t.Errorf("cache tokens: prompt %d, read %d, write %d", whole.PromptTokens, whole.CachedTokens, whole.CacheWriteTokens)
			}
			wantCost := 3*(whole.PromptTokens-whole.CachedTokens-whole.CacheWriteTokens) + whole.CachedTokens +
				4*whole.CacheWriteTokens + 15*whole.CompletionTokens
			if whole.CompletionTokens == 0 || whole.CostNanoUSD != wantCost || whole.TotalTokens != whole.PromptTokens+whole.CompletionTokens {
				t.Errorf("tokens and cost: %+v (want cost %d)", whole, wantCost)
			}
			ignore := cmpopts.IgnoreFields(ledger.Record{}, "ID", "Time", "Stream", "Duration", "TTFB", "ClientIP")
			if d := cmp.Diff(rows[0], rows[1], ignore); d != "" {
				t.Errorf("streamed and non-streamed rows differ (-whole +stream):\n%s", d)
			}
		})
	}
}

// TestPassthroughEngineError: an upstream error comes back unchanged (Claude
// Code matches on its wording) and is not billed.
func TestPassthroughEngineError(t *testing.T) {
	gw, _, tap, rec := passGateway(t)
	body := `{"model":"missing-model","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`
	resp, err := http.Post(gw.URL+"/v1/messages", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if sent := tap.take(); resp.StatusCode != 404 || !bytes.Equal(got, sent) {
		t.Errorf("%d %s; upstream sent %s", resp.StatusCode, got, sent)
	}
	if row := rec.next(t); row.Status != 404 || row.CostNanoUSD != 0 || row.PromptTokens != 0 {
		t.Errorf("row %+v", row)
	}
}
