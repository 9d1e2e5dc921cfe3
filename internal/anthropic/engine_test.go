package anthropic

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate/tollgate/internal/fakeupstream"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/upstream"
)

type recorder chan ledger.Record

func (r recorder) Record(rec ledger.Record) { r <- rec }

func (r recorder) next(t *testing.T) ledger.Record {
	t.Helper()
	select {
	case rec := <-r:
		return rec
	case <-time.After(10 * time.Second):
		t.Fatal("no ledger record")
		return ledger.Record{}
	}
}

// gateway runs the real engine with this dialect in front of the fake's
// chat completions.
func gateway(t *testing.T) (*httptest.Server, recorder) {
	t.Helper()
	up := httptest.NewServer(fakeupstream.New(fakeupstream.Options{Chunks: 5}))
	t.Cleanup(up.Close)
	pool, err := upstream.NewPool(upstream.Options{Upstreams: []upstream.Config{{Name: "fake", BaseURL: up.URL + "/v1", APIKey: "sk-up"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := make(recorder, 16)
	px := &proxy.Proxy{
		Transport: proxy.NewTransport(),
		Recorder:  rec,
		Logger:    slog.New(slog.DiscardHandler),
		Pool:      func() proxy.Planner { return pool },
		Timeout:   10 * time.Second,
		MaxBody:   1 << 20,
		Estimate:  func(b []byte) int64 { return int64(len(b)+3) / 4 },
		Cost: func(_, _ string, u proxy.Usage) (int64, bool) {
			return 3*(u.Prompt-u.Cached-u.CacheWrite) + u.Cached + 4*u.CacheWrite + 15*u.Completion, true
		},
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/messages", px.Handler(New(nil)))
	gw := httptest.NewServer(mux)
	t.Cleanup(gw.Close)
	return gw, rec
}

// TestLedgerStreamMatchesWhole sends one request streamed and not: the two
// ledger rows must agree on every field but the ones that say which it was.
func TestLedgerStreamMatchesWhole(t *testing.T) {
	gw, rec := gateway(t)
	for _, body := range []string{
		`{"model":"gpt-4o","max_tokens":100,"metadata":{"user_id":"u-42"},"messages":[{"role":"user","content":"hello there world"}]}`,
		`{"model":"gpt-4o","max_tokens":100,"tools":[{"name":"Read","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"a.go"}]}`,
		`{"model":"gpt-4o","max_tokens":2,"messages":[{"role":"user","content":"hello there world"}]}`,
	} {
		var rows [2]ledger.Record
		for i, b := range []string{body, strings.Replace(body, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)} {
			resp, err := http.Post(gw.URL+"/v1/messages", "application/json", strings.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, out)
			}
			if i == 1 {
				checkWellFormed(t, out, true)
			}
			rows[i] = rec.next(t)
		}
		if !rows[1].Stream || rows[0].Stream {
			t.Errorf("Stream flags: %v %v", rows[0].Stream, rows[1].Stream)
		}
		if rows[0].PromptTokens == 0 || rows[0].CompletionTokens == 0 || rows[0].Estimated || rows[0].CostNanoUSD == 0 {
			t.Errorf("row without upstream usage: %+v", rows[0])
		}
		ignore := cmpopts.IgnoreFields(ledger.Record{}, "ID", "Time", "Stream", "Duration", "TTFB", "ClientIP")
		if d := cmp.Diff(rows[0], rows[1], ignore); d != "" {
			t.Errorf("streamed and non-streamed rows differ (-whole +stream):\n%s", d)
		}
		if strings.Contains(body, "u-42") && rows[0].User != "u-42" {
			t.Errorf("User = %q", rows[0].User)
		}
	}
}
