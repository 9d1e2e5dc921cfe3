package openai

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

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

const upstreamKey = "sk-upstream-SECRET-do-not-leak"

// recorder collects records for assertions.
type recorder struct {
	mu   sync.Mutex
	recs []ledger.Record
	ch   chan ledger.Record
}

func newRecorder() *recorder { return &recorder{ch: make(chan ledger.Record, 1000)} }

func (r *recorder) Record(rec ledger.Record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	r.ch <- rec
}

// next waits for the next record.
func (r *recorder) next(t *testing.T) ledger.Record {
	t.Helper()
	select {
	case rec := <-r.ch:
		return rec
	case <-time.After(5 * time.Second):
		t.Fatal("no ledger record within 5s")
		return ledger.Record{}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	fake   *fakeupstream.Server
	up     *httptest.Server
	gw     *httptest.Server
	proxy  *proxy.Proxy
	rec    *recorder
	logs   *syncBuffer
	client *http.Client
}

type harnessOpt func(*proxy.Proxy, *upstream.Options)

// newHarness starts the fake upstream and a gateway in front of it.
func newHarness(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{
		fake: fakeupstream.New(fakeupstream.Options{Chunks: 5, APIKey: upstreamKey}),
		rec:  newRecorder(),
		logs: &syncBuffer{},
	}
	h.up = httptest.NewServer(h.fake)
	t.Cleanup(h.up.Close)
	uo := upstream.Options{Upstreams: []upstream.Config{{
		Name: "fake", BaseURL: h.up.URL + "/v1", APIKey: upstreamKey,
	}}}
	h.proxy = &proxy.Proxy{
		Transport:    proxy.NewTransport(),
		Recorder:     h.rec,
		Logger:       slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DefaultModel: "claude-sonnet-4-6",
		MaxRetries:   2,
		Timeout:      10 * time.Second,
		MaxBody:      1 << 20,
		BackoffBase:  time.Millisecond,
		Estimate:     func(b []byte) int64 { return int64(len(b)+3) / 4 },
	}
	for _, o := range opts {
		o(h.proxy, &uo)
	}
	pool, err := upstream.NewPool(uo, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.proxy.Pool = func() proxy.Planner { return pool }
	h.gw = httptest.NewServer(withRequestID(h.proxy.Handler(Dialect{})))
	t.Cleanup(h.gw.Close)
	h.client = h.gw.Client()
	t.Cleanup(func() {
		if strings.Contains(h.logs.String(), upstreamKey) {
			t.Error("the upstream key appeared in the logs")
		}
	})
	return h
}

func withRequestID(next http.Handler) http.Handler {
	var mu sync.Mutex
	n := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		id := "req-test-" + string(rune('a'+n%26)) + time.Now().Format("150405.000000")
		mu.Unlock()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r)
	})
}

// post sends a JSON body and returns status, headers and body.
func (h *harness) post(t *testing.T, path, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.gw.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if bytes.Contains(b, []byte(upstreamKey)) {
		t.Error("the upstream key appeared in a response")
	}
	return resp.StatusCode, resp.Header, b
}
