package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
)

func spanNamed(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no span %q among %d spans", name, len(spans))
	return tracetest.SpanStub{}
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// TestRequestAndAttemptSpans drives a request with an incoming traceparent
// through the middleware and a ServeMux to a handler that makes one traced
// upstream call to a real HTTP server.
func TestRequestAndAttemptSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := NewTracingWithExporter(exp)
	defer tr.Shutdown(context.Background())

	var upstreamSaw atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamSaw.Store(r.Header.Get("Traceparent"))
		w.WriteHeader(http.StatusOK)
	}))
	defer up.Close()

	pt := tr.ProxyTracer()
	if pt == nil {
		t.Fatal("ProxyTracer() = nil with tracing on")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-1")
		out := http.Header{"Traceparent": {"00-" + incomingTraceID + "-" + incomingSpanID + "-01"}} // as copied from the client
		end := pt.StartAttempt(r.Context(), "taotoken", "gpt-4o", out)
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, up.URL, nil)
		req.Header = out
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			end(0, err)
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		end(resp.StatusCode, nil)
		w.WriteHeader(http.StatusCreated)
	})
	srv := httptest.NewServer(tr.Middleware(mux))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader("{}"))
	req.Header.Set("Traceparent", "00-"+incomingTraceID+"-"+incomingSpanID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}

	spans := exp.GetSpans()
	reqSpan := spanNamed(t, spans, "request")
	attSpan := spanNamed(t, spans, "upstream attempt")

	if got := reqSpan.SpanContext.TraceID().String(); got != incomingTraceID {
		t.Errorf("request span trace id = %s, want %s", got, incomingTraceID)
	}
	if got := reqSpan.Parent.SpanID().String(); got != incomingSpanID || !reqSpan.Parent.IsRemote() {
		t.Errorf("request span parent = %s (remote %v), want remote %s", got, reqSpan.Parent.IsRemote(), incomingSpanID)
	}
	if reqSpan.SpanKind != trace.SpanKindServer {
		t.Errorf("request span kind = %v", reqSpan.SpanKind)
	}
	for key, want := range map[string]string{
		"http.request.method":       "POST",
		"http.route":                "POST /v1/chat/completions",
		"http.response.status_code": "201",
		"tollgate.request_id":       "req-1",
	} {
		if v, ok := attr(reqSpan, key); !ok || v.Emit() != want {
			t.Errorf("request span %s = %q (present %v), want %q", key, v.Emit(), ok, want)
		}
	}

	if attSpan.Parent.SpanID() != reqSpan.SpanContext.SpanID() || attSpan.SpanContext.TraceID() != reqSpan.SpanContext.TraceID() {
		t.Errorf("attempt span parent = %s/%s, want request span %s/%s",
			attSpan.Parent.TraceID(), attSpan.Parent.SpanID(), reqSpan.SpanContext.TraceID(), reqSpan.SpanContext.SpanID())
	}
	if attSpan.SpanKind != trace.SpanKindClient {
		t.Errorf("attempt span kind = %v", attSpan.SpanKind)
	}
	if v, _ := attr(attSpan, "tollgate.upstream"); v.AsString() != "taotoken" {
		t.Errorf("attempt upstream attr = %q", v.AsString())
	}
	if v, _ := attr(attSpan, "gen_ai.request.model"); v.AsString() != "gpt-4o" {
		t.Errorf("attempt model attr = %q", v.AsString())
	}

	wantTP := "00-" + incomingTraceID + "-" + attSpan.SpanContext.SpanID().String() + "-01"
	if got, _ := upstreamSaw.Load().(string); got != wantTP {
		t.Errorf("upstream traceparent = %q, want %q", got, wantTP)
	}
}

func TestMiddlewareWithoutTraceparentStartsRoot(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := NewTracingWithExporter(exp)
	h := tr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !trace.SpanContextFromContext(r.Context()).IsValid() {
			t.Error("no span in the handler's context")
		}
		io.WriteString(w, "ok") // implicit 200
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/models", nil))

	s := spanNamed(t, exp.GetSpans(), "request")
	if s.Parent.IsValid() {
		t.Errorf("root span has parent %v", s.Parent)
	}
	if v, _ := attr(s, "http.response.status_code"); v.AsInt64() != 200 {
		t.Errorf("status attr = %v, want 200", v.Emit())
	}
	if _, ok := attr(s, "http.route"); ok {
		t.Error("http.route set without a ServeMux")
	}
}

func TestMiddlewareStatusAndPanics(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int64
		wantCode   codes.Code
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }, 502, codes.Error},
		{"client error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) }, 429, codes.Unset},
		{"flushed stream", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "data: {}\n\n")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("flush through wrapper: %v", err)
			}
		}, 200, codes.Unset},
		{"aborted stream", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			panic(http.ErrAbortHandler)
		}, 200, codes.Unset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			h := NewTracingWithExporter(exp).Middleware(tc.handler)
			func() {
				defer func() { _ = recover() }()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil))
			}()
			s := spanNamed(t, exp.GetSpans(), "request")
			if v, _ := attr(s, "http.response.status_code"); v.AsInt64() != tc.wantStatus {
				t.Errorf("status attr = %s, want %d", v.Emit(), tc.wantStatus)
			}
			if s.Status.Code != tc.wantCode {
				t.Errorf("span status = %v, want %v", s.Status.Code, tc.wantCode)
			}
		})
	}
}

func TestAttemptSpanErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		err      error
		wantCode codes.Code
		events   int
	}{
		{"ok", 200, nil, codes.Unset, 0},
		{"rate limited", 429, nil, codes.Error, 0},
		{"upstream 503", 503, nil, codes.Error, 0},
		{"transport error", 0, errors.New("dial tcp 127.0.0.1:1: connection refused"), codes.Error, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tr := NewTracingWithExporter(exp)
			h := http.Header{}
			tr.ProxyTracer().StartAttempt(context.Background(), "u", "m", h)(tc.status, tc.err)
			s := spanNamed(t, exp.GetSpans(), "upstream attempt")
			if s.Status.Code != tc.wantCode {
				t.Errorf("status = %v, want %v", s.Status.Code, tc.wantCode)
			}
			if len(s.Events) != tc.events {
				t.Errorf("events = %d, want %d", len(s.Events), tc.events)
			}
			if tp := h.Get("Traceparent"); !strings.HasPrefix(tp, "00-"+s.SpanContext.TraceID().String()) {
				t.Errorf("traceparent %q does not carry trace %s", tp, s.SpanContext.TraceID())
			}
		})
	}
}

func TestLedgerSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := NewTracingWithExporter(exp)
	tr.LedgerSpan(context.Background())(100, nil)
	tr.LedgerSpan(context.Background())(0, errors.New("database is locked"))
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("spans = %d, want 2", len(spans))
	}
	if v, _ := attr(spans[0], "tollgate.ledger.rows"); v.AsInt64() != 100 || spans[0].Status.Code != codes.Unset {
		t.Errorf("first span rows=%s status=%v", v.Emit(), spans[0].Status.Code)
	}
	if spans[1].Status.Code != codes.Error {
		t.Errorf("failed write status = %v, want Error", spans[1].Status.Code)
	}
}

func TestSetupTracingOff(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"no endpoint", nil},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := SetupTracing(t.Context(), mapLookup(tc.env), "test")
			if err != nil {
				t.Fatal(err)
			}
			checkNoop(t, tr)
		})
	}
	t.Run("nil", func(t *testing.T) { checkNoop(t, nil) })
}

func checkNoop(t *testing.T, tr *Tracing) {
	t.Helper()
	if tr.Enabled() {
		t.Error("Enabled() = true")
	}
	if pt := tr.ProxyTracer(); pt != nil {
		t.Errorf("ProxyTracer() = %v, want nil", pt)
	}
	mux := http.NewServeMux()
	if h := tr.Middleware(mux); h != http.Handler(mux) {
		t.Error("Middleware wrapped the handler with tracing off")
	}
	if n := testing.AllocsPerRun(100, func() { tr.LedgerSpan(context.Background())(1, nil) }); n != 0 {
		t.Errorf("LedgerSpan allocs = %v, want 0", n)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// TestSetupTracingExports runs the real OTLP/HTTP exporter against a local
// collector stand-in: spans must arrive at /v1/traces by Shutdown.
func TestSetupTracingExports(t *testing.T) {
	got := make(chan string, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 {
			got <- r.URL.Path + " " + r.Header.Get("Content-Type")
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	// The exporter reads the standard variables itself, so set the real ones.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "tollgate-test")

	tr, err := SetupTracing(t.Context(), mapLookup(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}), "v0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled() {
		t.Fatal("tracing off with an endpoint set")
	}
	tr.LedgerSpan(t.Context())(1, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "/v1/traces application/x-protobuf" {
			t.Errorf("collector got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no export reached the collector")
	}
}

// The in-memory exporter must satisfy the SpanExporter the constructor takes.
var _ sdktrace.SpanExporter = (*tracetest.InMemoryExporter)(nil)
