package load

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/fakeupstream"
)

const (
	plainBody  = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}`
	streamBody = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there"}]}`
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newFake(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(fakeupstream.New(fakeupstream.Options{NoRecord: true}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

func TestRunWorkloads(t *testing.T) {
	base := newFake(t)
	tests := []struct {
		name      string
		spec      Spec
		minOK     uint64
		maxOK     uint64
		streaming bool
	}{
		{"open loop 50 requests", Spec{Kind: OpenLoop, Rate: 250, Duration: 200 * time.Millisecond, Body: []byte(plainBody)}, 50, 50, false},
		{"closed loop", Spec{Kind: ClosedLoop, Workers: 4, Duration: 200 * time.Millisecond, Body: []byte(plainBody)}, 10, 1 << 30, false},
		{"streams", Spec{Kind: Streams, Workers: 4, Duration: 200 * time.Millisecond, Body: []byte(streamBody), MinEvents: 10,
			Header: http.Header{"X-Fake-Chunks": {"10"}, "X-Fake-Chunk-Delay": {"1ms"}}}, 4, 1 << 30, true},
		{"idle streams", Spec{Kind: IdleStreams, Workers: 20, Body: []byte(streamBody), Hold: 50 * time.Millisecond, Timeout: 5 * time.Second,
			Header: http.Header{"X-Fake-Chunks": {"3"}, "X-Fake-Chunk-Delay": {"5s"}}}, 20, 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = tt.name
			// Sample this test process as if it were the proxy.
			start := time.Now()
			r, err := Run(t.Context(), discard(), Target{Name: "fake", BaseURL: base, PID: os.Getpid()}, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors != 0 {
				t.Fatalf("%d errors, first: %s", r.Errors, r.FirstError)
			}
			if r.Requests < tt.minOK || r.Requests > tt.maxOK {
				t.Fatalf("%d requests ok, want %d..%d", r.Requests, tt.minOK, tt.maxOK)
			}
			if r.Latency.Count != r.Requests || r.Latency.P50 <= 0 || r.Latency.P99 < r.Latency.P50 {
				t.Fatalf("latency summary %+v for %d requests", r.Latency, r.Requests)
			}
			if got := r.FirstChunk.Count > 0; got != tt.streaming {
				t.Fatalf("first-chunk samples: %d, streaming %v", r.FirstChunk.Count, tt.streaming)
			}
			if !r.Proc || r.RSS <= 0 || r.HWM < r.RSS || r.RPS <= 0 {
				t.Fatalf("process/rate fields not filled: %+v", r)
			}
			if tt.spec.Kind == IdleStreams && time.Since(start) > 4*time.Second {
				t.Fatalf("idle streams took %v; they should be cancelled after the sample", time.Since(start))
			}
		})
	}
}

func TestRunCountsErrors(t *testing.T) {
	base := newFake(t)
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   string
	}{
		{"upstream 503", http.Header{"X-Fake-Status": {"503"}}, plainBody, "status 503"},
		{"stream cut short", http.Header{"X-Fake-Reset": {"after:2"}}, streamBody, "unexpected EOF"},
		{"too few events", http.Header{"X-Fake-Chunks": {"2"}}, streamBody, "want at least 50"},
		{"not a stream", nil, plainBody, "want a stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Name: tt.name, Kind: ClosedLoop, Workers: 2, Duration: 50 * time.Millisecond,
				Body: []byte(tt.body), Header: tt.header, MinEvents: 50}
			r, err := Run(t.Context(), discard(), Target{Name: "fake", BaseURL: base}, spec)
			if err != nil {
				t.Fatal(err)
			}
			if r.Requests != 0 || r.Errors == 0 || !strings.Contains(r.FirstError, tt.want) {
				t.Fatalf("ok %d errors %d first %q; want only errors mentioning %q", r.Requests, r.Errors, r.FirstError, tt.want)
			}
		})
	}
}

func TestRunDeadTarget(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "dead", Kind: OpenLoop, Rate: 100, Duration: 100 * time.Millisecond, Body: []byte(plainBody)}
	r, err := Run(t.Context(), discard(), Target{Name: "dead", BaseURL: "http://" + addr + "/v1"}, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 10 || r.Requests != 0 {
		t.Fatalf("ok %d errors %d, want 0 and 10", r.Requests, r.Errors)
	}
}

func TestReadStream(t *testing.T) {
	long := "data: " + strings.Repeat("x", 40<<10) + "\n\n"
	tests := []struct {
		name    string
		in      string
		min     int
		wantErr string
	}{
		{"ok", "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n", 3, ""},
		{"crlf and comments", ": ping\r\ndata: {}\r\n\r\ndata:[DONE]\r\n\r\n", 2, ""},
		{"event longer than the buffer", long + "data: [DONE]\n\n", 2, ""},
		{"no done", "data: {}\n\n", 1, "without [DONE]"},
		{"too few", "data: [DONE]\n\n", 2, "at least 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opened := 0
			first, err := readStream(io.NopCloser(strings.NewReader(tt.in)), tt.min, time.Now().Add(-time.Millisecond), func() { opened++ })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || opened != 1 || first < time.Millisecond {
				t.Fatalf("err %v, opened %d times, first %v", err, opened, first)
			}
		})
	}
}

func TestRunSendsGatewayKey(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{"gateway key", "tg-test-key", "Bearer tg-test-key"},
		{"no key", "", "Bearer sk-bench-client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 16)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case got <- r.Header.Get("Authorization"):
				default:
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{}`)
			}))
			t.Cleanup(srv.Close)
			spec := Spec{Name: "open", Kind: OpenLoop, Rate: 100, Duration: 20 * time.Millisecond, Body: []byte(plainBody)}
			r, err := Run(t.Context(), discard(), Target{Name: "t", BaseURL: srv.URL + "/v1", APIKey: tt.key}, spec)
			if err != nil || r.Errors != 0 || r.Rate != 100 {
				t.Fatalf("Run = %+v, %v", r, err)
			}
			if a := <-got; a != tt.want {
				t.Errorf("Authorization = %q, want %q", a, tt.want)
			}
		})
	}
}
