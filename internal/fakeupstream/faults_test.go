package fakeupstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tollgate/tollgate/internal/sse"
)

const streamBody = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`

// send posts body with headers and returns the response or the transport
// error. The caller closes the body.
func send(t testing.TB, ctx context.Context, url, body string, hdr http.Header) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	// A fresh connection per request, so a reset cannot spill into the next.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	return client.Do(req)
}

// outcome is what a client observed.
type outcome struct {
	status      int
	retryAfter  string
	code        any    // error.code of a JSON error body
	body        string // raw body when not an error envelope
	events      int    // dispatched SSE events
	done        bool   // saw [DONE]
	err         string // "transport", "unexpected EOF" or ""
	tookAtLeast time.Duration
}

func observe(t *testing.T, url, body string, hdr http.Header) (o outcome) {
	t.Helper()
	start := time.Now()
	defer func() { o.tookAtLeast = time.Since(start) }() // whole exchange, body included
	resp, err := send(t, t.Context(), url, body, hdr)
	if err != nil {
		o.err = "transport"
		return o
	}
	defer resp.Body.Close()
	o.status, o.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		r := sse.NewReader(resp.Body)
		for range 10_000 {
			e, err := r.Next()
			if err != nil {
				if err != io.EOF {
					o.err = err.Error()
				}
				return o
			}
			if e.Dispatch {
				o.events++
				o.done = o.done || string(e.Data) == "[DONE]"
			}
		}
		return o
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		o.err = err.Error()
		return o
	}
	var env struct {
		Error map[string]any `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error != nil {
		o.code = env.Error["code"]
	} else {
		o.body = string(b)
	}
	return o
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		fault  Fault       // queued with Enqueue
		header http.Header // or scripted through headers
		want   outcome
	}{
		{"429 retry-after", Fault{Status: 429, RetryAfter: "2"}, nil,
			outcome{status: 429, retryAfter: "2", code: "rate_limit_exceeded"}},
		{"503 default body", Fault{Status: 503}, nil, outcome{status: 503, code: "server_overloaded"}},
		{"custom body", Fault{Status: 500, Body: `{"oops":true}`}, nil, outcome{status: 500, body: `{"oops":true}`}},
		{"2xx adds headers only", Fault{Status: 200, Header: http.Header{"X-Ratelimit-Remaining-Requests": {"0"}}}, nil,
			outcome{status: 200, events: 1 + 8 + 1 + 1, done: true}},
		{"delay", Fault{DelayHeaders: 150 * time.Millisecond}, nil,
			outcome{status: 200, events: 11, done: true, tookAtLeast: 150 * time.Millisecond}},
		{"reset before headers", Fault{ResetBeforeHeaders: true}, nil, outcome{err: "transport"}},
		{"reset after 3", Fault{ResetAfterChunks: 3}, nil, outcome{status: 200, events: 3, err: "unexpected EOF"}},
		{"chunks and delay", Fault{Chunks: 2, ChunkDelay: 30 * time.Millisecond}, nil,
			outcome{status: 200, events: 1 + 2 + 1 + 1, done: true, tookAtLeast: 4 * 30 * time.Millisecond}},

		{"header 503", Fault{}, http.Header{"X-Fake-Status": {"503"}, "X-Fake-Retry-After": {"1"}},
			outcome{status: 503, retryAfter: "1", code: "server_overloaded"}},
		{"header delay", Fault{}, http.Header{"X-Fake-Delay": {"150ms"}},
			outcome{status: 200, events: 11, done: true, tookAtLeast: 150 * time.Millisecond}},
		{"header chunks", Fault{}, http.Header{"X-Fake-Chunks": {"50"}, "X-Fake-Chunk-Delay": {"1ms"}},
			outcome{status: 200, events: 1 + 50 + 1 + 1, done: true, tookAtLeast: 52 * time.Millisecond}},
		{"header reset before", Fault{}, http.Header{"X-Fake-Reset": {"before"}}, outcome{err: "transport"}},
		{"header reset after", Fault{}, http.Header{"X-Fake-Reset": {"after:2"}}, outcome{status: 200, events: 2, err: "unexpected EOF"}},
		{"queued fault wins", Fault{Status: 502}, http.Header{"X-Fake-Status": {"429"}}, outcome{status: 502, code: nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ts := newFake(t, Options{})
			if !cmp.Equal(tt.fault, Fault{}) {
				f.Enqueue(tt.fault)
			}
			got := observe(t, ts.URL+"/v1/chat/completions", streamBody, tt.header)
			if got.tookAtLeast < tt.want.tookAtLeast {
				t.Errorf("took %v; want at least %v", got.tookAtLeast, tt.want.tookAtLeast)
			}
			got.tookAtLeast, tt.want.tookAtLeast = 0, 0
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(outcome{})); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFaultHeaderAdded(t *testing.T) {
	f, ts := newFake(t, Options{})
	f.Enqueue(Fault{Header: http.Header{"X-Ratelimit-Remaining-Requests": {"0"}}, RetryAfter: "3"})
	resp, _ := do(t, "POST", ts.URL+"/v1/chat/completions", chatBody)
	if resp.StatusCode != 200 || resp.Header.Get("X-Ratelimit-Remaining-Requests") != "0" || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
}

func TestResetNonStream(t *testing.T) {
	f, ts := newFake(t, Options{})
	f.Enqueue(Fault{ResetAfterChunks: 1})
	resp, err := send(t, t.Context(), ts.URL+"/v1/chat/completions", chatBody, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading a cut body: %v; want unexpected EOF", err)
	}
}

func TestFaultScriptThenSuccess(t *testing.T) {
	f, ts := newFake(t, Options{})
	f.Enqueue(Fault{Status: 503}, Fault{Status: 429, RetryAfter: "1"}, Fault{ResetBeforeHeaders: true})
	var got []string
	for range 5 {
		o := observe(t, ts.URL+"/v1/models", "", nil)
		got = append(got, map[bool]string{true: o.err, false: http.StatusText(o.status)}[o.err != ""])
	}
	want := []string{"Service Unavailable", "Too Many Requests", "transport", "OK", "OK"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("script (-want +got):\n%s", diff)
	}
	f.Enqueue(Fault{Status: 500})
	f.Reset()
	if o := observe(t, ts.URL+"/v1/models", "", nil); o.status != 200 {
		t.Errorf("after Reset: status %d; want the queue cleared", o.status)
	}
}

func TestStreamIsIncremental(t *testing.T) {
	_, ts := newFake(t, Options{Chunks: 5, ChunkDelay: 100 * time.Millisecond})
	resp, err := send(t, t.Context(), ts.URL+"/v1/chat/completions", streamBody, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := sse.NewReader(resp.Body)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	first := time.Now()
	n := 1
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Dispatch {
			n++
		}
	}
	// 8 events, 100ms apart: the first must arrive ~700ms before the end.
	if rest := time.Since(first); n != 8 || rest < 600*time.Millisecond {
		t.Errorf("%d events; the rest came %v after the first; want 8 and >= 600ms", n, rest)
	}
}

func TestCancelled(t *testing.T) {
	tests := []struct {
		name   string
		fault  Fault
		events int // events to read before cancelling
	}{
		{"mid-stream", Fault{Chunks: 100, ChunkDelay: 50 * time.Millisecond}, 2},
		{"mid-stream no delay", Fault{Chunks: 100_000}, 1},
		{"waiting for headers", Fault{DelayHeaders: 5 * time.Second}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ts := newFake(t, Options{})
			f.Enqueue(tt.fault)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var resp *http.Response
			errc := make(chan error, 1)
			go func() {
				var err error
				resp, err = send(t, ctx, ts.URL+"/v1/chat/completions", streamBody, nil)
				errc <- err
			}()
			if tt.events > 0 {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				r := sse.NewReader(resp.Body)
				for range tt.events {
					if _, err := r.Next(); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				time.Sleep(50 * time.Millisecond) // let the request reach the fake
			}
			start := time.Now()
			cancel()
			select {
			case p := <-f.Cancelled():
				if p != "/v1/chat/completions" {
					t.Errorf("Cancelled() = %q", p)
				}
				// The contract is 100ms; allow slack for a loaded 2-core machine.
				if d := time.Since(start); d > time.Second {
					t.Errorf("cancel reached the fake after %v", d)
				} else {
					t.Logf("cancel reached the fake after %v", d)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("Cancelled() never fired")
			}
		})
	}
}

func TestRequestsRecorded(t *testing.T) {
	f, ts := newFake(t, Options{})
	body := `{"model":"qwen-plus","messages":[{"role":"user","content":"你好，世界 👋🏽 emoji ✓"}]}`
	_, b := do(t, "POST", ts.URL+"/v1/chat/completions?x=1", body, "Authorization", "Bearer sk-test", "X-Custom", "v")
	if !strings.Contains(string(b), `"content":"echo: 你好，世界 👋🏽 emoji ✓ ok`) {
		t.Errorf("reply does not echo the text byte for byte: %s", b)
	}
	do(t, "GET", ts.URL+"/v1/models", "")
	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests recorded; want 2", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v1/chat/completions" || string(r.Body) != body ||
		r.Header.Get("Authorization") != "Bearer sk-test" || r.Header.Get("X-Custom") != "v" || r.Time.IsZero() {
		t.Errorf("recorded %+v", r)
	}
	if reqs[1].Method != "GET" || reqs[1].Path != "/v1/models" || !reqs[1].Time.After(r.Time) && !reqs[1].Time.Equal(r.Time) {
		t.Errorf("second request %+v", reqs[1])
	}
	f.Reset()
	if n := len(f.Requests()); n != 0 {
		t.Errorf("after Reset: %d requests", n)
	}
}

func TestRecordingBounds(t *testing.T) {
	tests := []struct {
		opts Options
		want []string
	}{
		{Options{MaxRecorded: 3}, []string{"/r/3", "/r/4", "/r/5"}},
		{Options{MaxRecorded: 10}, []string{"/r/1", "/r/2", "/r/3", "/r/4", "/r/5"}},
		{Options{NoRecord: true}, nil},
	}
	for _, tt := range tests {
		f, ts := newFake(t, tt.opts)
		for _, p := range []string{"/r/1", "/r/2", "/r/3", "/r/4", "/r/5"} {
			do(t, "GET", ts.URL+p, "")
		}
		var got []string
		for _, r := range f.Requests() {
			got = append(got, r.Path)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%+v: recorded paths (-want +got):\n%s", tt.opts, diff)
		}
	}
}

func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- ListenAndServe(ctx, "127.0.0.1:0", Options{}, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatal(err)
	}
	if resp, b := do(t, "GET", "http://"+addr+"/v1/models", ""); resp.StatusCode != 200 || !strings.Contains(string(b), "gpt-4o") {
		t.Fatalf("GET /v1/models: %d %s", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("ListenAndServe = %v; want nil after ctx is done", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
	if err := ListenAndServe(t.Context(), "256.0.0.1:0", Options{}, nil); err == nil {
		t.Error("bad address: want an error")
	}
}
