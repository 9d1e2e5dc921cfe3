package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`

func TestSDKNonStreamAndStream(t *testing.T) {
	h := newHarness(t)
	client := oai.NewClient(option.WithBaseURL(h.gw.URL+"/v1/"), option.WithAPIKey("tg-client-key"),
		option.WithMaxRetries(0))
	ctx := t.Context()
	params := oai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hello sdk")},
	}
	resp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("non-stream: %v", err)
	}
	if got := resp.Choices[0].Message.Content; !strings.Contains(got, "hello sdk") {
		t.Errorf("non-stream content = %q; want the echo of the prompt", got)
	}
	if resp.Usage.TotalTokens == 0 {
		t.Error("non-stream usage missing")
	}
	rec := h.rec.next(t)
	if rec.Outcome != ledger.OutcomeOK || rec.Status != 200 || rec.Stream || rec.TotalTokens != resp.Usage.TotalTokens {
		t.Errorf("record = %+v; want ok/200/non-stream with %d tokens", rec, resp.Usage.TotalTokens)
	}

	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc oai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if got := acc.Choices[0].Message.Content; !strings.Contains(got, "hello sdk") {
		t.Errorf("stream content = %q", got)
	}
	if acc.Usage.TotalTokens != 0 {
		t.Errorf("client did not ask for usage but received it: %+v", acc.Usage)
	}
	rec = h.rec.next(t)
	if !rec.Stream || rec.CompletionTokens == 0 || rec.Estimated {
		t.Errorf("stream record = %+v; want metered from the injected usage chunk", rec)
	}
	// The upstream was asked for usage although the client was not.
	reqs := h.fake.Requests()
	last := reqs[len(reqs)-1]
	if !gjson.GetBytes(last.Body, "stream_options.include_usage").Bool() {
		t.Errorf("upstream body %s lacks include_usage", last.Body)
	}
	if got := last.Header.Get("Authorization"); got != "Bearer "+upstreamKey {
		t.Errorf("upstream Authorization not replaced by the upstream key")
	}
}

// readEvents returns the data payloads of an SSE body.
func readEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	for ev := range strings.SplitSeq(string(body), "\n\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(ev), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func TestUsageChunkHiddenUnlessAsked(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name      string
		body      string
		wantUsage bool
	}{
		{"not asked", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`, false},
		{"asked", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := h.post(t, "/v1/chat/completions", tt.body)
			if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("status %d, content-type %q", status, hdr.Get("Content-Type"))
			}
			events := readEvents(t, body)
			if events[len(events)-1] != "[DONE]" {
				t.Errorf("stream does not end with [DONE]: %q", events[len(events)-1])
			}
			sawUsage := false
			for _, e := range events {
				if gjson.Get(e, "usage.total_tokens").Int() > 0 {
					sawUsage = true
				}
			}
			if sawUsage != tt.wantUsage {
				t.Errorf("usage chunk seen = %v; want %v", sawUsage, tt.wantUsage)
			}
			if !tt.wantUsage && bytes.Contains(body, []byte(`"usage"`)) {
				t.Errorf("the client did not ask for usage but its stream mentions it:\n%s", body)
			}
			rec := h.rec.next(t)
			if rec.TotalTokens == 0 || rec.Estimated {
				t.Errorf("record tokens = %d estimated=%v; want real usage", rec.TotalTokens, rec.Estimated)
			}
		})
	}
}

func TestStreamIsIncremental(t *testing.T) {
	h := newHarness(t)
	h.fake.Enqueue(fakeupstream.Fault{Chunks: 6, ChunkDelay: 150 * time.Millisecond})
	req, _ := http.NewRequest("POST", h.gw.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	first := time.Since(start)
	rest, _ := io.ReadAll(br)
	total := time.Since(start)
	// 6 chunks 150ms apart take ≥ 750ms; the first must arrive long before.
	if total < 700*time.Millisecond || first > total/2 {
		t.Errorf("first event after %v of %v total; want incremental delivery", first, total)
	}
	if !bytes.Contains(rest, []byte("[DONE]")) {
		t.Error("stream did not finish")
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		faults       []fakeupstream.Fault
		wantStatus   int
		wantAttempts int
		minElapsed   time.Duration
	}{
		{"503 then success", []fakeupstream.Fault{{Status: 503}}, 200, 2, 0},
		{"retry-after honoured", []fakeupstream.Fault{{Status: 429, RetryAfter: "1"}}, 200, 2, time.Second},
		{"reset before headers", []fakeupstream.Fault{{ResetBeforeHeaders: true}}, 200, 2, 0},
		{"502 exhausts retries", []fakeupstream.Fault{{Status: 502}, {Status: 502}, {Status: 502}}, 502, 3, 0},
		{"400 is not retried", []fakeupstream.Fault{{Status: 400}}, 400, 1, 0},
		{"retry-after too long passes through", []fakeupstream.Fault{{Status: 429, RetryAfter: "3600"}}, 429, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.Enqueue(tt.faults...)
			start := time.Now()
			status, _, body := h.post(t, "/v1/chat/completions", chatBody)
			elapsed := time.Since(start)
			if status != tt.wantStatus {
				t.Fatalf("status = %d; want %d (body %s)", status, tt.wantStatus, body)
			}
			if elapsed < tt.minElapsed {
				t.Errorf("answered after %v; want at least %v (Retry-After)", elapsed, tt.minElapsed)
			}
			rec := h.rec.next(t)
			if rec.Attempts != tt.wantAttempts {
				t.Errorf("attempts = %d; want %d", rec.Attempts, tt.wantAttempts)
			}
			if got := len(h.fake.Requests()); got != tt.wantAttempts {
				t.Errorf("upstream saw %d requests; want %d", got, tt.wantAttempts)
			}
		})
	}
}

func TestUpstreamErrorPassesThroughUnchanged(t *testing.T) {
	h := newHarness(t)
	const body = `{"error":{"message":"bad thing","type":"invalid_request_error","param":"x","code":"weird"}}`
	h.fake.Enqueue(fakeupstream.Fault{Status: 422, Body: body, Header: http.Header{"X-Custom": {"kept"}}})
	status, hdr, got := h.post(t, "/v1/chat/completions", chatBody)
	if status != 422 || string(got) != body || hdr.Get("X-Custom") != "kept" {
		t.Errorf("got %d %q (X-Custom %q); want the upstream's 422 verbatim", status, got, hdr.Get("X-Custom"))
	}
	if rec := h.rec.next(t); rec.Outcome != ledger.OutcomeClientError || rec.Status != 422 {
		t.Errorf("record outcome %q status %d", rec.Outcome, rec.Status)
	}
}

// TestNonJSONUpstreamErrorsAreWrapped: SDKs cannot parse a text/plain 404
// or a CDN's HTML 502; clients get the envelope with the status kept, and
// never an internal socket address.
func TestNonJSONUpstreamErrorsAreWrapped(t *testing.T) {
	tests := []struct {
		name   string
		fault  fakeupstream.Fault
		status int
		want   string
	}{
		{"text 404", fakeupstream.Fault{Status: 404, Body: "404 page not found",
			Header: http.Header{"Content-Type": {"text/plain"}}}, 404, "404 page not found"},
		{"html 502", fakeupstream.Fault{Status: 502,
			Body:   "<html><head><title>502 Bad Gateway</title></head><body><center>cloudflare</center></body></html>",
			Header: http.Header{"Content-Type": {"text/html"}}}, 502, "502 Bad Gateway"},
		{"reset", fakeupstream.Fault{ResetBeforeHeaders: true}, 502, "connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.Enqueue(tt.fault, tt.fault, tt.fault)
			status, hdr, got := h.post(t, "/v1/chat/completions", chatBody)
			msg := gjson.GetBytes(got, "error.message").Str
			if status != tt.status || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") ||
				!strings.Contains(msg, tt.want) || strings.Contains(string(got), "127.0.0.1") || strings.Contains(string(got), "<") {
				t.Errorf("got %d %s %q; want %d with an envelope saying %q", status, hdr.Get("Content-Type"), got, tt.status, tt.want)
			}
		})
	}
}

func TestMidStreamResetEndsWithErrorEvent(t *testing.T) {
	h := newHarness(t)
	h.fake.Enqueue(fakeupstream.Fault{ResetAfterChunks: 2})
	req, _ := http.NewRequest("POST", h.gw.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // the connection is aborted: an error here is expected
	resp.Body.Close()
	events := readEvents(t, body)
	if len(events) == 0 {
		t.Fatal("no events")
	}
	last := events[len(events)-1]
	if gjson.Get(last, "error.code").String() != "stream_interrupted" {
		t.Errorf("last event %q; want an OpenAI error event", last)
	}
	rec := h.rec.next(t)
	if rec.Attempts != 1 || rec.Outcome != ledger.OutcomeUpstreamError {
		t.Errorf("record attempts=%d outcome=%s; want 1 attempt (no retry after first byte), upstream_error", rec.Attempts, rec.Outcome)
	}
	if got := len(h.fake.Requests()); got != 1 {
		t.Errorf("upstream saw %d requests; want 1", got)
	}
}

func TestClientCancelReachesUpstream(t *testing.T) {
	h := newHarness(t)
	h.fake.Enqueue(fakeupstream.Fault{Chunks: 50, ChunkDelay: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", h.gw.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for range 3 { // read a few events
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	cancelled := time.Now()
	cancel()
	resp.Body.Close()
	select {
	case <-h.fake.Cancelled():
		if d := time.Since(cancelled); d > 100*time.Millisecond {
			t.Errorf("upstream saw the cancel after %v; want ≤ 100ms", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	rec := h.rec.next(t)
	if rec.Outcome != ledger.OutcomeCancelled || rec.Status != 499 {
		t.Errorf("record outcome=%s status=%d; want cancelled/499", rec.Outcome, rec.Status)
	}
	if rec.CompletionTokens == 0 || !rec.Estimated {
		t.Errorf("record completion tokens %d estimated=%v; want the tokens seen so far, estimated", rec.CompletionTokens, rec.Estimated)
	}
}

func TestGatewayErrors(t *testing.T) {
	h := newHarness(t)
	big := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 2<<20) + `"}]}`
	tests := []struct {
		name, path, body string
		wantStatus       int
		wantCode         string
	}{
		{"invalid json", "/v1/chat/completions", `{"model":`, 400, "invalid_json"},
		{"not an object", "/v1/chat/completions", `[1,2]`, 400, "invalid_json"},
		{"missing messages", "/v1/chat/completions", `{"model":"gpt-4o"}`, 400, "missing_messages"},
		{"empty messages", "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, 400, "missing_messages"},
		{"oversize", "/v1/chat/completions", big, 413, "request_too_large"},
		{"unknown model", "/v1/chat/completions", `{"model":"missing-model","messages":[{"role":"user","content":"x"}]}`, 404, "model_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := h.post(t, tt.path, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("status = %d; want %d (%s)", status, tt.wantStatus, body)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Errorf("content-type %q; want JSON", hdr.Get("Content-Type"))
			}
			if got := gjson.GetBytes(body, "error.code").String(); got != tt.wantCode {
				t.Errorf("error.code = %q; want %q (%s)", got, tt.wantCode, body)
			}
			id := hdr.Get("X-Request-Id")
			if tt.wantCode != "model_not_found" && !strings.Contains(gjson.GetBytes(body, "error.message").String(), id) {
				t.Errorf("error message lacks the request id %q: %s", id, body)
			}
			if rec := h.rec.next(t); rec.Status != tt.wantStatus {
				t.Errorf("record status %d; want %d", rec.Status, tt.wantStatus)
			}
		})
	}
}

func TestUnreachableAndDeadline(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		h := newHarness(t, func(p *proxy.Proxy, o *upstream.Options) {
			o.Upstreams[0].BaseURL = "http://127.0.0.1:1/v1" // nothing listens on port 1
		})
		status, _, body := h.post(t, "/v1/chat/completions", chatBody)
		if status != 502 || gjson.GetBytes(body, "error.code").String() != "upstream_unreachable" {
			t.Errorf("got %d %s; want 502 upstream_unreachable", status, body)
		}
		if rec := h.rec.next(t); rec.Attempts != 3 || rec.Outcome != ledger.OutcomeUpstreamError {
			t.Errorf("record attempts=%d outcome=%s", rec.Attempts, rec.Outcome)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		h := newHarness(t, func(p *proxy.Proxy, o *upstream.Options) { p.Timeout = 300 * time.Millisecond })
		h.fake.Enqueue(fakeupstream.Fault{DelayHeaders: 5 * time.Second})
		status, _, body := h.post(t, "/v1/chat/completions", chatBody)
		if status != 504 {
			t.Errorf("got %d %s; want 504", status, body)
		}
		if rec := h.rec.next(t); rec.Outcome != ledger.OutcomeTimeout {
			t.Errorf("record outcome=%s; want timeout", rec.Outcome)
		}
	})
}

func TestBodyBytesReachUpstreamUnchanged(t *testing.T) {
	h := newHarness(t)
	// Unknown fields, Chinese and emoji, odd spacing: all must arrive as sent.
	body := `{"model": "gpt-4o",  "messages":[{"role":"user","content":"你好，世界 🌏🚀 \u00e9"}],"x_future_field":{"a":[1,2,3]},"temperature":0.5}`
	status, _, resp := h.post(t, "/v1/chat/completions", body)
	if status != 200 {
		t.Fatalf("status %d: %s", status, resp)
	}
	got := h.fake.Requests()[0].Body
	if !bytes.Equal(got, []byte(body)) {
		t.Errorf("upstream body differs:\n got %s\nwant %s", got, body)
	}
	if !strings.Contains(string(resp), "你好，世界 🌏🚀") {
		t.Errorf("reply lost the characters: %s", resp)
	}
}

func TestDefaultModelApplied(t *testing.T) {
	h := newHarness(t)
	status, _, _ := h.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	if got := gjson.GetBytes(h.fake.Requests()[0].Body, "model").String(); got != "claude-sonnet-4-6" {
		t.Errorf("upstream model = %q; want the default", got)
	}
}

func TestUnknownEndpointForwardedVerbatim(t *testing.T) {
	h := newHarness(t)
	status, _, body := h.post(t, "/v1/responses?x=1", `{"model":"gpt-4o","input":"hi"}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var echo struct {
		Path   string `json:"path"`
		Method string `json:"method"`
	}
	if err := json.Unmarshal(body, &echo); err != nil || echo.Method != "POST" || !strings.HasSuffix(echo.Path, "/v1/responses") {
		t.Errorf("echo = %+v (%v); want POST .../v1/responses", echo, err)
	}
	r := h.fake.Requests()[0]
	if r.Header.Get("Authorization") != "Bearer "+upstreamKey {
		t.Error("upstream key not applied to a passthrough request")
	}
	if rec := h.rec.next(t); rec.Endpoint != "/v1/responses" || rec.Model != "gpt-4o" {
		t.Errorf("record endpoint=%q model=%q", rec.Endpoint, rec.Model)
	}
}

func TestGatewayKeyNotForwarded(t *testing.T) {
	h := newHarness(t)
	h.post(t, "/v1/chat/completions", chatBody, "Authorization", "Bearer tg-gateway-key", "X-Api-Key", "tg-gateway-key", "Cookie", "a=b")
	hdr := h.fake.Requests()[0].Header
	for _, k := range []string{"X-Api-Key", "Cookie"} {
		if hdr.Get(k) != "" {
			t.Errorf("%s forwarded upstream", k)
		}
	}
	if strings.Contains(hdr.Get("Authorization"), "tg-gateway-key") {
		t.Error("gateway key forwarded upstream")
	}
}

func TestLogBodies(t *testing.T) {
	tests := []struct {
		name               string
		bodies, content    bool
		wantReq, wantNoMsg bool
	}{
		{"off", false, false, false, true},
		{"bodies without content", true, false, true, true},
		{"bodies with content", true, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(p *proxy.Proxy, _ *upstream.Options) { p.LogBodies, p.LogContent = tt.bodies, tt.content })
			h.post(t, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"secret plans"}]}`)
			rec := h.rec.next(t)
			if (len(rec.RequestBody) > 0) != tt.wantReq {
				t.Fatalf("request body kept = %q; want kept=%v", rec.RequestBody, tt.wantReq)
			}
			all := string(rec.RequestBody) + string(rec.ResponseBody)
			if strings.Contains(all, "secret plans") == tt.wantNoMsg {
				t.Errorf("bodies %q; want message content present=%v", all, !tt.wantNoMsg)
			}
			if tt.wantReq && gjson.GetBytes(rec.RequestBody, "model").String() != "gpt-4o" {
				t.Errorf("kept request body lost its model: %s", rec.RequestBody)
			}
		})
	}
}

// TestSlowStreamOutlivesIdleTimeout: a stream whose chunks come more often
// than the idle timeout runs to its end, however long it lasts in all.
func TestSlowStreamOutlivesIdleTimeout(t *testing.T) {
	h := newHarness(t, func(p *proxy.Proxy, _ *upstream.Options) { p.IdleTimeout = 300 * time.Millisecond })
	h.fake.Enqueue(fakeupstream.Fault{Chunks: 12, ChunkDelay: 100 * time.Millisecond})
	req, _ := http.NewRequest("POST", h.gw.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	events := readEvents(t, body)
	if last := events[len(events)-1]; last != "[DONE]" {
		t.Errorf("last event %q; want [DONE] (the stream was cut)", last)
	}
	if rec := h.rec.next(t); rec.Outcome != ledger.OutcomeOK {
		t.Errorf("record outcome=%s error=%q; want ok", rec.Outcome, rec.Error)
	}
}

func TestStalledStreamEndsAfterIdleTimeout(t *testing.T) {
	h := newHarness(t, func(p *proxy.Proxy, _ *upstream.Options) { p.IdleTimeout = 300 * time.Millisecond })
	h.fake.Enqueue(fakeupstream.Fault{Chunks: 4, ChunkDelay: 5 * time.Second})
	start := time.Now()
	req, _ := http.NewRequest("POST", h.gw.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // the connection is aborted after the error event
	resp.Body.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stalled stream ended after %v; want about the 300ms idle timeout", d)
	}
	events := readEvents(t, body)
	if last := events[len(events)-1]; gjson.Get(last, "error.code").String() != "stream_interrupted" {
		t.Errorf("last event %q; want an OpenAI error event", last)
	}
	rec := h.rec.next(t)
	if rec.Outcome != ledger.OutcomeUpstreamError || !strings.Contains(rec.Error, "sent nothing") {
		t.Errorf("record outcome=%s error=%q; want upstream_error naming the idle timeout", rec.Outcome, rec.Error)
	}
}
