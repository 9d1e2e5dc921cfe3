package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"unsafe"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/upstream"
)

func TestBodyPoolsClasses(t *testing.T) {
	var ps bodyPools
	tests := []struct {
		n       int
		wantCap int // 0: not pooled
	}{
		{100, 0}, {minPooledBody - 1, 0}, {minPooledBody, 32 << 10}, {minPooledBody + 1, 64 << 10},
		{200<<10 + 1, 256 << 10}, {maxPooledBody, 8 << 20}, {maxPooledBody + 1, 0},
	}
	for _, tt := range tests {
		bb := ps.get(tt.n)
		switch {
		case tt.wantCap == 0 && bb != nil:
			t.Errorf("get(%d) pooled, want nil", tt.n)
		case tt.wantCap != 0 && (bb == nil || cap(bb.b) != tt.wantCap):
			t.Errorf("get(%d) = %v, want capacity %d", tt.n, bb, tt.wantCap)
		}
	}
}

func TestOutBodyReleasesOnce(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, o *outBody)
	}{
		{"read then close", func(t *testing.T, o *outBody) {
			if b, err := io.ReadAll(o); err != nil || string(b) != "hello" {
				t.Fatalf("ReadAll = %q, %v", b, err)
			}
			o.Close()
		}},
		{"close twice", func(t *testing.T, o *outBody) { o.Close(); o.Close() }},
		{"read after close fails", func(t *testing.T, o *outBody) {
			o.Close()
			if _, err := o.Read(make([]byte, 8)); !errors.Is(err, errBodyClosed) {
				t.Fatalf("Read after Close: %v, want errBodyClosed", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps bodyPools
			bb := ps.get(minPooledBody)
			copy(bb.b, "hello")
			o, err := newOutBody(bb.b[:5], bb)
			if err != nil {
				t.Fatal(err)
			}
			tt.run(t, o)
			if got := bb.refs.Load(); got != 1 {
				t.Fatalf("refs = %d after the body was closed, want 1 (the exchange's)", got)
			}
			bb.release()
			if _, err := newOutBody(bb.b[:5], bb); !errors.Is(err, errBodyClosed) {
				t.Fatalf("newOutBody on a released buffer: %v, want errBodyClosed", err)
			}
		})
	}
}

// TestOutBodyCloseDuringRead: a transport may close a body from another
// goroutine while it is being read; the buffer must outlive the read.
func TestOutBodyCloseDuringRead(t *testing.T) {
	var ps bodyPools
	for range 200 {
		bb := ps.get(minPooledBody)
		o, err := newOutBody(bb.b[:minPooledBody], bb)
		if err != nil {
			t.Fatal(err)
		}
		bb.release() // the exchange is done; only the body holds the buffer
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = io.Copy(io.Discard, o) })
		wg.Go(func() { o.Close() })
		wg.Wait()
		if got := bb.refs.Load(); got != 0 {
			t.Fatalf("refs = %d, want 0", got)
		}
	}
}

// aliasDialect forwards the body as is and names the model by a string
// that aliases the body, as gjson results do.
type aliasDialect struct{}

func (aliasDialect) Parse(in *Inbound) (Request, error) {
	return &aliasRequest{body: in.Body, model: unsafe.String(&in.Body[0], 8)}, nil
}

func (aliasDialect) WriteError(w http.ResponseWriter, e *apierr.Error, _ string) {
	http.Error(w, e.Message, e.Status)
}

type aliasRequest struct {
	body  []byte
	model string
}

func (r *aliasRequest) Head() Head                            { return Head{Model: r.model, Metered: true} }
func (r *aliasRequest) PromptTokens(func([]byte) int64) int64 { return 0 }
func (r *aliasRequest) Outbound(Target) (*Outbound, error) {
	return &Outbound{Path: "/echo", Body: r.body, Reply: &stubReply{}}, nil
}

type listRecorder struct {
	mu   sync.Mutex
	recs []ledger.Record
}

func (l *listRecorder) Record(r ledger.Record) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
}

// TestPooledBodiesDoNotMix sends large bodies one after another, so later
// ones reuse earlier ones' buffers: every upstream must receive exactly its
// own body, and every ledger row keep its own model.
func TestPooledBodiesDoNotMix(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		_, _ = io.Copy(h, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	}))
	defer up.Close()
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{Name: "u", BaseURL: up.URL}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &listRecorder{}
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	p := &Proxy{Pool: func() Planner { return pool }, Transport: tr, Recorder: rec, MaxBody: 1 << 20}
	gw := httptest.NewServer(p.Handler(aliasDialect{}))
	defer gw.Close()

	const n = 40
	for i := range n {
		size := []int{40 << 10, 200 << 10, 33 << 10, 500 << 10}[i%4]
		body := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		copy(body, fmt.Sprintf("model%03d", i))
		resp, err := http.Post(gw.URL+"/v1/x", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(body)
		if resp.StatusCode != 200 || string(got) != hex.EncodeToString(sum[:]) {
			t.Fatalf("request %d: status %d, upstream saw a different body", i, resp.StatusCode)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.recs) != n {
		t.Fatalf("%d records, want %d", len(rec.recs), n)
	}
	for i, r := range rec.recs {
		if want := fmt.Sprintf("model%03d", i); r.Model != want {
			t.Errorf("record %d: model %q, want %q", i, r.Model, want)
		}
	}
}

// TestTransportHTTP2ToHTTPS: NewTransport speaks HTTP/2 to an HTTPS upstream
// that offers it, so streams share connections.
func TestTransportHTTP2ToHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	tr.Fallback.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "HTTP/2.0" {
		t.Errorf("upstream saw %q, want HTTP/2.0", b)
	}
}
