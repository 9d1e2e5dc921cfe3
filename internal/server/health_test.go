package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/upstream"
)

// TestReadiness: only starting, draining and a full ledger queue make the
// gateway unready; a database or Redis outage and open circuits only mark
// it degraded.
func TestReadiness(t *testing.T) {
	dbDown := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	openUpstreams := func() []upstream.Status {
		return []upstream.Status{
			{Name: "a", State: upstream.StateOpen},
			{Name: "b", State: upstream.StateClosed, ModelHealth: []upstream.ModelStatus{
				{Model: "gpt-4o", State: upstream.StateClosed},
				{Model: "broken", State: upstream.StateOpen},
				{Model: "busy", State: upstream.StateCooling},
			}},
		}
	}
	tests := []struct {
		name       string
		opts       Options
		serving    bool
		draining   bool
		wantStatus int
		want       Report
	}{
		{"starting", Options{}, false, false, 503,
			Report{Status: "unready", Reason: "starting", Checks: map[string]string{}}},
		{"healthy", Options{Checks: map[string]func(context.Context) error{"database": ok}}, true, false, 200,
			Report{Status: "ok", Ready: true, Checks: map[string]string{"database": "ok"}}},
		{"database and redis down", Options{
			Checks: map[string]func(context.Context) error{"database": fail(dbDown)},
			Ready:  map[string]func(context.Context) error{"redis": fail(errors.New("dial tcp 10.1.2.3:6379: connect: connection refused"))},
		}, true, false, 200, Report{Status: "degraded", Ready: true, Degraded: true, Checks: map[string]string{
			"database": "dial tcp [address]: connect: connection refused", "redis": "dial tcp [address]: connect: connection refused"}}},
		{"circuits open", Options{Upstreams: openUpstreams}, true, false, 200,
			Report{Status: "degraded", Ready: true, Degraded: true, Checks: map[string]string{}, Upstreams: []UpstreamReport{
				{Name: "a", State: upstream.StateOpen},
				{Name: "b", State: upstream.StateClosed, Unhealthy: map[string]upstream.State{"broken": "open", "busy": "cooling"}},
			}}},
		{"ledger queue filling", Options{LedgerQueue: func() (int, int) { return 9, 10 }}, true, false, 200,
			Report{Status: "ok", Ready: true, Checks: map[string]string{}, Ledger: &LedgerReport{9, 10}}},
		{"ledger queue full", Options{LedgerQueue: func() (int, int) { return 10, 10 }}, true, false, 503,
			Report{Status: "unready", Reason: "ledger queue full (10 rows waiting)", Checks: map[string]string{}, Ledger: &LedgerReport{10, 10}}},
		{"draining", Options{}, true, true, 503,
			Report{Status: "unready", Reason: "draining: shutting down", Checks: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.opts)
			s.SetServing(tt.serving)
			s.draining.Store(tt.draining)
			for _, path := range []string{"/readyz", "/healthz?verbose", "/healthz?verbose=1"} {
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				wantStatus := tt.wantStatus
				if path != "/readyz" {
					wantStatus = 200 // liveness: the process answers
				}
				if rec.Code != wantStatus {
					t.Errorf("%s = %d; want %d", path, rec.Code, wantStatus)
				}
				var got Report
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("%s body %q: %v", path, rec.Body, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s report mismatch (-want +got):\n%s", path, diff)
				}
			}
		})
	}
}

func TestHealthzCheapByDefault(t *testing.T) {
	called := false
	s := New(Options{Checks: map[string]func(context.Context) error{"database": func(context.Context) error {
		called = true
		return nil
	}}})
	for _, path := range []string{"/healthz", "/healthz?verbose=0", "/healthz?verbose=false"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || rec.Body.String() != "{\"status\":\"ok\"}\n" {
			t.Errorf("%s = %d %q; want 200 {\"status\":\"ok\"}", path, rec.Code, rec.Body)
		}
	}
	if called {
		t.Error("plain /healthz ran a dependency check")
	}
}

// TestServeReadyThenDraining checks the flags Serve sets over a real
// listener.
func TestServeReadyThenDraining(t *testing.T) {
	s := New(Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, time.Second) }()
	url := "http://" + ln.Addr().String() + "/readyz"
	var resp *http.Response
	for range 100 { // Serve sets serving just after it starts; bounded wait
		resp, err = http.Get(url)
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz while serving: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if ready, reason := s.readiness(); ready || reason != "draining: shutting down" {
		t.Errorf("after shutdown readiness = %v %q; want draining", ready, reason)
	}
}

func ok(context.Context) error { return nil }

func fail(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}
