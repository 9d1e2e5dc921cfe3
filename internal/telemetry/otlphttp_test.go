package telemetry

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// decodeExportRequest is the collector's side of encodeExportRequest.
func decodeExportRequest(t *testing.T, b []byte) []*tracepb.ResourceSpans {
	t.Helper()
	var out []*tracepb.ResourceSpans
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			t.Fatalf("bad tag %d/%d", num, typ)
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			t.Fatal("bad length")
		}
		b = b[n:]
		rs := &tracepb.ResourceSpans{}
		if err := proto.Unmarshal(v, rs); err != nil {
			t.Fatal(err)
		}
		out = append(out, rs)
	}
	return out
}

// TestOTLPHTTPExport sends spans through the real SDK and our client to a
// collector stand-in and reads them back: names, headers, gzip, path.
func TestOTLPHTTPExport(t *testing.T) {
	type got struct {
		path, auth, tenant string
		spans              []string
	}
	ch := make(chan got, 10)
	var calls atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 { // the first try is refused: the client must retry
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		g := got{path: r.URL.Path, auth: r.Header.Get("Authorization"), tenant: r.Header.Get("X-Tenant")}
		for _, rs := range decodeExportRequest(t, b) {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					g.spans = append(g.spans, s.Name)
				}
			}
		}
		ch <- g
	}))
	defer collector.Close()
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.URL + "/custom/traces",
		"OTEL_EXPORTER_OTLP_HEADERS":         "Authorization=Bearer%20secret-token,X-Tenant=a",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "X-Tenant=b",
		"OTEL_EXPORTER_OTLP_COMPRESSION":     "gzip",
	}
	tr, err := SetupTracing(t.Context(), mapLookup(env), "v0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tr.LedgerSpan(t.Context())(3, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-ch:
		if g.path != "/custom/traces" || g.auth != "Bearer secret-token" || g.tenant != "b" {
			t.Errorf("collector saw path %q, auth ok %v, tenant %q", g.path, g.auth == "Bearer secret-token", g.tenant)
		}
		if strings.Join(g.spans, ",") != "ledger write" {
			t.Errorf("spans %q, want the ledger write span", g.spans)
		}
	default:
		t.Fatal("no export reached the collector")
	}
}

func TestOTLPHTTPConfigErrors(t *testing.T) {
	tests := []map[string]string{
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue-secret"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent.pem"},
	}
	for _, env := range tests {
		_, err := SetupTracing(t.Context(), mapLookup(env), "v0")
		if err == nil {
			t.Errorf("SetupTracing(%v) succeeded", env)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows a header value: %v", err)
		}
	}
}

func TestOTLPHTTPPermanentError(t *testing.T) {
	var calls atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "bad spans", http.StatusBadRequest)
	}))
	defer collector.Close()
	c, err := newOTLPHTTPClient(mapLookup(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.UploadTraces(t.Context(), []*tracepb.ResourceSpans{{}})
	if err == nil || !strings.Contains(err.Error(), "400") || calls.Load() != 1 {
		t.Errorf("err = %v after %d calls, want one 400", err, calls.Load())
	}
}
