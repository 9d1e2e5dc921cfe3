package responses

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
	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

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

func (t *tee) ServeHTTP(w http.ResponseWriter, r *http.Request) { t.h.ServeHTTP(teeWriter{w, t}, r) }

func (t *tee) take() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.out
	t.out = nil
	return out
}

// nativeGateway runs the real engine with this dialect in front of the
// fake's own Responses API, configured as `responses: native`.
func nativeGateway(t *testing.T) (string, *fakeupstream.Server, *tee, *ledgerRecorder) {
	t.Helper()
	fake := fakeupstream.New(fakeupstream.Options{Chunks: 4, APIKey: upstreamKey, NativeResponses: true})
	tap := &tee{h: fake}
	up := httptest.NewServer(tap)
	t.Cleanup(up.Close)
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{
		Name: "native", BaseURL: up.URL + "/v1", APIKey: upstreamKey, Responses: "native",
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &ledgerRecorder{ch: make(chan ledger.Record, 100)}
	px := &proxy.Proxy{
		Transport: proxy.NewTransport(), Recorder: rec, Logger: slog.New(slog.DiscardHandler),
		Timeout: 10 * time.Second, MaxBody: 1 << 20,
		Estimate: func(b []byte) int64 { return int64(len(b)+3) / 4 },
		Pool:     func() proxy.Planner { return pool },
		// Every token class at its own rate, so a token counted in the
		// wrong class changes the cost.
		Cost: func(_, _ string, u proxy.Usage) (int64, bool) {
			return 3*(u.Prompt-u.Cached) + u.Cached + 15*(u.Completion-u.Reasoning) + 17*u.Reasoning, true
		},
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/responses", px.Handler(New(Options{})))
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	return gw.URL, fake, tap, rec
}

// TestNativeEngine: to a `responses: native` upstream the request passes
// through the engine byte for byte (stateful fields included: the upstream
// keeps the state), the answer comes back byte for byte, and the ledger row
// carries the usage of the Response (cached and reasoning tokens apart), the
// same streamed or not.
func TestNativeEngine(t *testing.T) {
	bodies := map[string]string{
		"text, cached, reasoning": `{"model":"gpt-4o","store":true,"prompt_cache_key":"sess-1","reasoning":{"effort":"low"},` +
			`"instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"hello there"}]}],"future_field":{"x":1}}`,
		"function call": `{"model":"gpt-4o","input":"weather in Paris?","tools":[{"type":"web_search"},{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}`,
		"incomplete":    `{"model":"gpt-4o","input":"hello big wide world","max_output_tokens":2,"previous_response_id":"resp_1"}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			url, fake, tap, rec := nativeGateway(t)
			var rows [2]ledger.Record
			var usage [2]gjson.Result
			for i, b := range []string{body, strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1)} {
				fake.Reset()
				tap.take()
				req, _ := http.NewRequestWithContext(t.Context(), "POST", url+"/v1/responses", strings.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Session-Id", "sess-1")
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
				if len(reqs) != 1 || string(reqs[0].Body) != b || reqs[0].Path != "/v1/responses" ||
					reqs[0].Header.Get("Session-Id") != "sess-1" || reqs[0].Header.Get("Authorization") != "Bearer "+upstreamKey {
					t.Fatalf("upstream requests: %d; want the body unchanged at /v1/responses", len(reqs))
				}
				if i == 1 {
					if err := checkTranscript(got); err != nil {
						t.Errorf("the fake's native stream breaks the protocol: %v\n%s", err, got)
					}
					evs := bytes.Split(bytes.TrimSpace(got), []byte("\n\n"))
					_, data, _ := bytes.Cut(evs[len(evs)-1], []byte("data: "))
					usage[i] = gjson.GetBytes(data, "response.usage")
				} else {
					usage[i] = gjson.GetBytes(got, "usage")
				}
				rows[i] = rec.next(t)
			}
			for i, u := range usage {
				r := rows[i]
				got := [4]int64{r.PromptTokens, r.CachedTokens, r.CompletionTokens, r.ReasoningTokens}
				want := [4]int64{u.Get("input_tokens").Int(), u.Get("input_tokens_details.cached_tokens").Int(),
					u.Get("output_tokens").Int(), u.Get("output_tokens_details.reasoning_tokens").Int()}
				if got != want || r.Estimated || r.Upstream != "native" || r.Endpoint != "/v1/responses" {
					t.Errorf("row %d: tokens %v, the Response says %v: %+v", i, got, want, r)
				}
				wantCost := 3*(r.PromptTokens-r.CachedTokens) + r.CachedTokens + 15*(r.CompletionTokens-r.ReasoningTokens) + 17*r.ReasoningTokens
				if r.CostNanoUSD != wantCost || r.TotalTokens != r.PromptTokens+r.CompletionTokens {
					t.Errorf("row %d: cost %d, want %d", i, r.CostNanoUSD, wantCost)
				}
			}
			if strings.Contains(name, "cached") && (rows[0].CachedTokens == 0 || rows[0].ReasoningTokens == 0) {
				t.Errorf("no cached or reasoning tokens metered: %+v", rows[0])
			}
			ignore := cmpopts.IgnoreFields(ledger.Record{}, "ID", "Time", "Stream", "Duration", "TTFB", "ClientIP")
			if d := cmp.Diff(rows[0], rows[1], ignore); d != "" {
				t.Errorf("streamed and non-streamed rows differ (-whole +stream):\n%s", d)
			}
		})
	}
}

// TestNativeEngineBroken: a native stream cut before its terminal event
// reaches the client unchanged up to the cut, then gets a response.failed.
func TestNativeEngineBroken(t *testing.T) {
	url, fake, tap, rec := nativeGateway(t)
	fake.Enqueue(fakeupstream.Fault{ResetAfterChunks: 4})
	resp, err := http.Post(url+"/v1/responses", "application/json", strings.NewReader(`{"model":"gpt-4o","stream":true,"input":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sent := tap.take()
	if !bytes.HasPrefix(got, sent) || !bytes.Contains(got[len(sent):], []byte("event: response.failed\n")) {
		t.Errorf("upstream sent\n%s\nclient got\n%s", sent, got)
	}
	// The failure continues the upstream's numbering. (It cannot repeat the
	// output items: a native stream is passed through, not followed.)
	evs := bytes.Split(bytes.TrimSpace(got), []byte("\n\n"))
	seq := func(ev []byte) gjson.Result {
		_, data, _ := bytes.Cut(ev, []byte("data: "))
		return gjson.ParseBytes(data)
	}
	last, prev := seq(evs[len(evs)-1]), seq(evs[len(evs)-2])
	if last.Get("sequence_number").Int() != prev.Get("sequence_number").Int()+1 || last.Get("response.error.message").Str == "" ||
		last.Get("response.status").Str != "failed" {
		t.Errorf("terminal event %s after %s", last.Raw, prev.Raw)
	}
	if row := rec.next(t); row.Stream != true || row.Outcome == ledger.OutcomeOK {
		t.Errorf("row %+v", row)
	}
}
