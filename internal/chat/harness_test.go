package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/access"
	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/sse"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/storeopen"
	"github.com/tollgate/tollgate/internal/upstream"
)

const upstreamKey = "sk-upstream-SECRET-do-not-leak"

// recorder collects ledger records.
type recorder struct {
	mu   sync.Mutex
	recs []ledger.Record
}

func (r *recorder) Record(rec ledger.Record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

func (r *recorder) all() []ledger.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ledger.Record(nil), r.recs...)
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

// setup configures a harness before it starts.
type setup struct {
	auth        bool
	upstreamURL string // overrides the fake's URL (e.g. an unreachable one)
	dbPath      string // reuse a database file (restart tests)
	opts        func(*Options)
}

// harness is a real gateway: the Service over a real proxy.Proxy over the
// fake upstream, with a real SQLite store and, optionally, real key auth.
type harness struct {
	fake   *fakeupstream.Server
	proxy  *proxy.Proxy
	rec    *recorder
	st     store.Store
	dbPath string
	keys   *auth.Cache
	mgr    *auth.Manager
	svc    *Service
	gw     *httptest.Server
	logs   *syncBuffer
	// secrets must appear in no response and no log line.
	secrets []string
}

func newHarness(t testing.TB, su setup) *harness {
	t.Helper()
	h := &harness{
		fake:    fakeupstream.New(fakeupstream.Options{Chunks: 2, APIKey: upstreamKey}),
		rec:     &recorder{},
		logs:    &syncBuffer{},
		secrets: []string{upstreamKey},
	}
	up := httptest.NewServer(h.fake)
	t.Cleanup(up.Close)
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	h.dbPath = su.dbPath
	if h.dbPath == "" {
		h.dbPath = filepath.Join(t.TempDir(), "t.db")
	}
	st, err := storeopen.Open(t.Context(), h.dbPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	t.Cleanup(func() { _ = st.Close() })

	base := up.URL + "/v1"
	if su.upstreamURL != "" {
		base = su.upstreamURL
	}
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{
		Name: "fake", BaseURL: base, APIKey: upstreamKey,
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.proxy = &proxy.Proxy{
		Pool:         func() proxy.Planner { return pool },
		Transport:    proxy.NewTransport(),
		Recorder:     h.rec,
		Logger:       logger,
		DefaultModel: "gpt-4o",
		MaxRetries:   2,
		Timeout:      10 * time.Second,
		MaxBody:      4 << 20,
		BackoffBase:  time.Millisecond,
		Estimate:     func(b []byte) int64 { return int64(len(b)+3) / 4 },
	}
	if su.auth {
		h.keys = auth.NewCache(st, time.Hour, logger)
		h.mgr = auth.NewManager(st, time.Now)
		h.mgr.OnChange = func() { _ = h.keys.Reload(context.Background()) }
		if err := h.keys.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.proxy.Gate = &access.Gate{Keys: h.keys}
	}
	models := &openai.Models{Pool: func() *upstream.Pool { return pool }, Transport: proxy.NewTransport(), Logger: logger}
	opts := Options{
		Engine: h.proxy,
		Store:  st,
		Keys:   h.keys,
		Logger: logger,
		Models: func(ctx context.Context) ([]string, error) {
			list, err := models.List(ctx)
			if err != nil {
				return nil, err
			}
			ids := make([]string, 0, len(list))
			for _, m := range list {
				ids = append(ids, m.ID())
			}
			return ids, nil
		},
	}
	if su.opts != nil {
		su.opts(&opts)
	}
	h.svc = New(opts)
	h.gw = httptest.NewServer(withRequestID(h.svc))
	t.Cleanup(h.gw.Close)
	t.Cleanup(func() {
		logs := h.logs.String()
		for _, s := range h.secrets {
			if strings.Contains(logs, s) {
				t.Error("a secret appeared in the logs")
			}
		}
	})
	return h
}

// newKey creates a gateway key and returns its plaintext.
func (h *harness) newKey(t testing.TB, name string, models ...string) string {
	t.Helper()
	pt, _, err := h.mgr.Create(t.Context(), auth.CreateOptions{Name: name, Models: models})
	if err != nil {
		t.Fatal(err)
	}
	h.secrets = append(h.secrets, pt)
	return pt
}

// withRequestID stands in for the server's middleware.
func withRequestID(next http.Handler) http.Handler {
	var mu sync.Mutex
	n := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		id := "req-chat-" + time.Now().Format("150405.000000") + "-" + string(rune('a'+n%26))
		mu.Unlock()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r)
	})
}

// do sends a request; hdr holds header name/value pairs. A key given as
// "key" becomes a bearer Authorization header.
func (h *harness) do(t testing.TB, method, path, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, h.gw.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "key" {
			req.Header.Set("Authorization", "Bearer "+hdr[i+1])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read body: %v", err)
	}
	for _, s := range h.secrets {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("a secret appeared in the response to %s %s", method, path)
		}
	}
	return resp.StatusCode, resp.Header, b
}

// chatResponse is the decoded answer of /api/chat (and errors).
type chatResponse struct {
	Success      bool           `json:"success"`
	Response     string         `json:"response"`
	Usage        usageJSON      `json:"usage"`
	Model        string         `json:"model"`
	Conversation string         `json:"conversation"`
	Error        string         `json:"error"`
	Details      map[string]any `json:"details"`
}

// chat posts to /api/chat and decodes the answer.
func (h *harness) chat(t testing.TB, body string, hdr ...string) (int, chatResponse) {
	t.Helper()
	status, _, b := h.do(t, http.MethodPost, "/api/chat", body, hdr...)
	var out chatResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return status, out
}

// mustChat posts a message and fails unless it succeeds.
func (h *harness) mustChat(t testing.TB, body string, hdr ...string) chatResponse {
	t.Helper()
	status, out := h.chat(t, body, hdr...)
	if status != http.StatusOK || !out.Success {
		t.Fatalf("chat: status %d, %+v", status, out)
	}
	return out
}

type historyResponse struct {
	Success      bool            `json:"success"`
	User         string          `json:"user"`
	Conversation string          `json:"conversation"`
	Messages     []store.Message `json:"messages"`
	Error        string          `json:"error"`
	Deleted      int             `json:"deleted"`
}

func (h *harness) history(t testing.TB, method, query string, hdr ...string) (int, historyResponse) {
	t.Helper()
	status, _, b := h.do(t, method, "/api/chat/history?"+query, "", hdr...)
	var out historyResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return status, out
}

// contents lists "role:content" of stored messages.
func contents(msgs []store.Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.Role+":"+m.Content)
	}
	return out
}

// upstreamMessages lists "role:content" of the messages in the n-th
// request (negative counts from the end) the fake received.
func (h *harness) upstreamMessages(t testing.TB, n int) []string {
	t.Helper()
	reqs := h.fake.Requests()
	if n < 0 {
		n += len(reqs)
	}
	if n < 0 || n >= len(reqs) {
		t.Fatalf("the fake received %d requests; want request %d", len(reqs), n)
	}
	var body struct {
		Messages []wireMessage `json:"messages"`
	}
	if err := json.Unmarshal(reqs[n].Body, &body); err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(body.Messages))
	for _, m := range body.Messages {
		out = append(out, m.Role+":"+m.Content)
	}
	return out
}

// event is one decoded /api/chat/stream event.
type event struct {
	Done         bool
	Content      *string    `json:"content"`
	Error        *string    `json:"error"`
	Usage        *usageJSON `json:"usage"`
	Conversation string     `json:"conversation"`
}

// stream posts to /api/chat/stream and reads every event.
func (h *harness) stream(t testing.TB, body string, hdr ...string) (int, http.Header, []event, []byte) {
	t.Helper()
	status, header, b := h.do(t, http.MethodPost, "/api/chat/stream", body, hdr...)
	if status != http.StatusOK {
		return status, header, nil, b
	}
	rd := sse.NewReader(bytes.NewReader(b))
	var evs []event
	for {
		ev, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read events: %v", err)
			}
			return status, header, evs, b
		}
		if !ev.Dispatch {
			continue
		}
		if string(ev.Data) == "[DONE]" {
			evs = append(evs, event{Done: true})
			continue
		}
		var e event
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			t.Fatalf("event %q: %v", ev.Data, err)
		}
		evs = append(evs, e)
	}
}

// recordsFor returns the ledger records with the endpoint.
func (h *harness) recordsFor(endpoint string) []ledger.Record {
	var out []ledger.Record
	for _, r := range h.rec.all() {
		if r.Endpoint == endpoint {
			out = append(out, r)
		}
	}
	return out
}
