package openai

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/streamconn"
	"github.com/tollgate/tollgate/internal/upstream"
)

// cannedTransport answers every request from memory, so a benchmark measures
// the proxy's own work and not the network or the fake.
type cannedTransport struct {
	body        []byte
	contentType string
}

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close() // as a RoundTripper must; it lets a pooled body buffer go back

	return &http.Response{
		StatusCode:    200,
		Header:        http.Header{"Content-Type": {c.contentType}},
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: -1,
		Request:       r,
	}, nil
}

type nopRecorder struct{}

func (nopRecorder) Record(ledger.Record) {}

func benchProxy(b *testing.B, rt http.RoundTripper) *proxy.Proxy {
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{Name: "u", BaseURL: "http://upstream.invalid/v1", APIKey: "sk"}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return &proxy.Proxy{
		Pool: func() proxy.Planner { return pool }, Transport: rt, Recorder: nopRecorder{},
		DefaultModel: "m", MaxRetries: 2, Timeout: time.Minute, MaxBody: 1 << 20,
		Estimate: ledger.EstimateTokens,
	}
}

const benchChat = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in five words please."}],"temperature":0.2}`

func chatResponse() []byte {
	return []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how are you?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":7,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`)
}

func streamResponse(chunks int, usage bool) []byte {
	var b strings.Builder
	for i := range chunks {
		b.WriteString(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" word`)
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(`"},"finish_reason":null}]}` + "\n\n")
	}
	if usage {
		b.WriteString(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":50,"total_tokens":70}}` + "\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

// BenchmarkForwardChat is the proxy's own cost for a non-stream chat call.
func BenchmarkForwardChat(b *testing.B) {
	p := benchProxy(b, cannedTransport{body: chatResponse(), contentType: "application/json"})
	body := []byte(benchChat)
	forwardLoop(b, p, body)
}

// BenchmarkForwardStream is the proxy's own cost for a 50-chunk stream with
// usage injected and the usage chunk hidden.
func BenchmarkForwardStream(b *testing.B) {
	p := benchProxy(b, cannedTransport{body: streamResponse(50, true), contentType: "text/event-stream"})
	body := []byte(strings.Replace(benchChat, `"temperature"`, `"stream":true,"temperature"`, 1))
	forwardLoop(b, p, body)
}

// BenchmarkLoopbackChat is a whole call over loopback HTTP: client, gateway
// and fake upstream in one process. streams=on serves it as tollgate serve
// does, with event streams' connections taken off net/http (streamconn).
func BenchmarkLoopbackChat(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("streams=%v", on), func(b *testing.B) { loopbackChat(b, on) })
	}
}

func loopbackChat(b *testing.B, streams bool) {
	fake := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
	defer fake.Close()
	pool, _ := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{Name: "u", BaseURL: fake.URL + "/v1"}}}, nil)
	p := benchProxy(b, proxy.NewTransport())
	p.Pool = func() proxy.Planner { return pool }
	gw := httptest.NewUnstartedServer(p.Handler(Dialect{}))
	if streams {
		sc, err := streamconn.New(time.Minute, nil)
		if err != nil {
			b.Skip("streamconn:", err)
		}
		p.Streams = sc
		gw.Listener = sc.Listener(gw.Listener)
		defer sc.Close()
	}
	gw.Start()
	defer gw.Close()
	client := gw.Client()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(gw.URL+"/v1/chat/completions", "application/json", strings.NewReader(benchChat))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkForwardChat200KB is the proxy's own cost for a 200 KB request.
func BenchmarkForwardChat200KB(b *testing.B) {
	p := benchProxy(b, cannedTransport{body: chatResponse(), contentType: "application/json"})
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum ", 200<<10/12) + `"}]}`)
	b.SetBytes(int64(len(body)))
	forwardLoop(b, p, body)
}

// forwardLoop serves body through p once per iteration.
func forwardLoop(b *testing.B, p *proxy.Proxy, body []byte) {
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/chat/completions", bytes.NewReader(body))
		w := httptest.NewRecorder()
		p.Handler(Dialect{}).ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
