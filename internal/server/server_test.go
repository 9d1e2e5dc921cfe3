package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRoutesAndMiddleware(t *testing.T) {
	s := New(Options{
		Proxy: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/panic" {
				panic("boom")
			}
			io.WriteString(w, "proxied "+r.URL.Path)
		}),
		Ready: map[string]func(context.Context) error{
			"store":     func(context.Context) error { return nil },
			"upstreams": func(context.Context) error { return errors.New("every upstream's circuit is open") },
		},
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	tests := []struct {
		name, method, path, reqID string
		wantStatus                int
		wantBody                  string
		wantID                    string // "" = any generated id
	}{
		{"health", "GET", "/healthz", "", 200, `"ok"`, ""},
		{"proxy", "POST", "/v1/chat/completions", "", 200, "proxied /v1/chat/completions", ""},
		{"client id kept", "GET", "/healthz", "abc-123_x.y:z", 200, "ok", "abc-123_x.y:z"},
		{"insane id replaced", "GET", "/healthz", "bad id <script>", 200, "ok", ""},
		{"unknown path", "GET", "/nope", "", 404, `"code":"unknown_url"`, ""},
		{"panic", "GET", "/v1/panic", "", 500, `"code":"internal_error"`, ""},
		{"starting", "GET", "/readyz", "", 503, `"reason":"starting"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if tt.reqID != "" {
				req.Header.Set("X-Request-Id", tt.reqID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("%s %s = %d %s; want %d containing %s", tt.method, tt.path, resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			id := resp.Header.Get("X-Request-Id")
			if tt.wantID != "" && id != tt.wantID {
				t.Errorf("X-Request-Id = %q; want %q", id, tt.wantID)
			}
			if tt.wantID == "" && !strings.HasPrefix(id, "req_") {
				t.Errorf("X-Request-Id = %q; want a generated id", id)
			}
			if resp.StatusCode >= 400 && resp.StatusCode != 503 {
				var env struct {
					Error struct{ Message, Type string } `json:"error"`
				}
				if json.Unmarshal(body, &env) != nil || !strings.Contains(env.Error.Message, id) {
					t.Errorf("error body %s is not an OpenAI envelope naming the request id", body)
				}
			}
		})
	}
}

func TestNewIDIsTimeOrderedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := newID()
		if len(id) != 34 || !strings.HasPrefix(id, "req_") || !saneID(id) {
			t.Fatalf("newID() = %q; want req_ + 30 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		if prev != "" && id[:18] < prev[:18] {
			t.Errorf("id %q sorts before the earlier %q", id, prev)
		}
		prev = id
	}
}
