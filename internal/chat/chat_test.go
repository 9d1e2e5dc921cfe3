package chat

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/fakeupstream"
)

func TestMultiTurnCarriesHistoryInOrder(t *testing.T) {
	h := newHarness(t, setup{opts: func(o *Options) { o.SystemPrompt = "be brief" }})
	for i, msg := range []string{"one", "two", "three"} {
		out := h.mustChat(t, fmt.Sprintf(`{"message":%q,"user":"ann"}`, msg))
		if want := "echo: " + msg; out.Response != want {
			t.Errorf("turn %d: response %q, want %q", i, out.Response, want)
		}
		if out.Usage.TotalTokens <= 0 || out.Model != "gpt-4o" || out.Conversation != "default" {
			t.Errorf("turn %d: usage/model/conversation = %+v %q %q", i, out.Usage, out.Model, out.Conversation)
		}
	}
	want := []string{"system:be brief", "user:one", "assistant:echo: one", "user:two", "assistant:echo: two", "user:three"}
	if diff := cmp.Diff(want, h.upstreamMessages(t, 2)); diff != "" {
		t.Errorf("third upstream request (-want +got):\n%s", diff)
	}
	_, hist := h.history(t, http.MethodGet, "user=ann")
	wantHist := []string{"user:one", "assistant:echo: one", "user:two", "assistant:echo: two", "user:three", "assistant:echo: three"}
	if diff := cmp.Diff(wantHist, contents(hist.Messages)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	for _, m := range hist.Messages {
		if m.Time.IsZero() {
			t.Errorf("message %q has no time", m.Content)
		}
	}
	recs := h.recordsFor("/api/chat")
	if len(recs) != 3 {
		t.Fatalf("ledger: %d records with endpoint /api/chat, want 3 (all: %d)", len(recs), len(h.rec.all()))
	}
	if r := recs[0]; r.User != "ann" || r.Status != 200 || r.TotalTokens == 0 || r.ID == "" {
		t.Errorf("ledger record = user %q status %d tokens %d id %q", r.User, r.Status, r.TotalTokens, r.ID)
	}
}

func TestRequestOverridesAndForwarding(t *testing.T) {
	h := newHarness(t, setup{opts: func(o *Options) { o.SystemPrompt = "default prompt" }})
	out := h.mustChat(t, `{"message":"hi","model":"qwen-plus","system":"own prompt","temperature":0.5,"max_tokens":50,"conversation":"c1","extra":{"ignored":true}}`,
		"X-Tollgate-User", "bob")
	if out.Model != "qwen-plus" || out.Conversation != "c1" {
		t.Errorf("model %q conversation %q", out.Model, out.Conversation)
	}
	var body map[string]any
	if err := json.Unmarshal(h.fake.Requests()[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["model"] != "qwen-plus" || body["temperature"] != 0.5 || body["max_tokens"] != 50.0 || body["extra"] != nil {
		t.Errorf("upstream body = %v", body)
	}
	if got := h.upstreamMessages(t, 0)[0]; got != "system:own prompt" {
		t.Errorf("first message %q, want the request's system prompt", got)
	}
	// The header named the user: the history is bob's.
	_, hist := h.history(t, http.MethodGet, "conversation=c1", "X-Tollgate-User", "bob")
	if len(hist.Messages) != 2 || hist.User != "bob" {
		t.Errorf("bob's history = %+v", hist)
	}
}

func TestWindowAndKeepTrimming(t *testing.T) {
	tests := []struct {
		name                  string
		context, keep, tokens int
		turns                 int
		wantUpstream          []string // last upstream request
		wantHistory           []string
	}{
		{
			name: "window 2 keep 4", context: 2, keep: 4, turns: 4,
			wantUpstream: []string{"user:m2", "assistant:echo: m2", "user:m3"},
			wantHistory:  []string{"user:m2", "assistant:echo: m2", "user:m3", "assistant:echo: m3"},
		},
		{
			name: "window 3 keep all", context: 3, keep: -1, turns: 3,
			wantUpstream: []string{"assistant:echo: m0", "user:m1", "assistant:echo: m1", "user:m2"},
			wantHistory: []string{"user:m0", "assistant:echo: m0", "user:m1", "assistant:echo: m1",
				"user:m2", "assistant:echo: m2"},
		},
		{
			name: "no context keep 2", context: -1, keep: 2, turns: 3,
			wantUpstream: []string{"user:m2"},
			wantHistory:  []string{"user:m2", "assistant:echo: m2"},
		},
		{
			// A message costs len/4 (rounded up) + 4: "m1" 5, "echo: m1" 6.
			// A budget of 20 fits the new message and one history turn.
			name: "token budget", context: 10, keep: 10, tokens: 20, turns: 3,
			wantUpstream: []string{"user:m1", "assistant:echo: m1", "user:m2"},
			wantHistory: []string{"user:m0", "assistant:echo: m0", "user:m1", "assistant:echo: m1",
				"user:m2", "assistant:echo: m2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, setup{opts: func(o *Options) {
				o.ContextMessages, o.KeepMessages, o.ContextTokens = tt.context, tt.keep, tt.tokens
				o.Estimate = func(b []byte) int64 { return int64(len(b)+3) / 4 }
			}})
			for i := range tt.turns {
				h.mustChat(t, fmt.Sprintf(`{"message":"m%d"}`, i))
			}
			if diff := cmp.Diff(tt.wantUpstream, h.upstreamMessages(t, -1)); diff != "" {
				t.Errorf("last upstream request (-want +got):\n%s", diff)
			}
			_, hist := h.history(t, http.MethodGet, "")
			if diff := cmp.Diff(tt.wantHistory, contents(hist.Messages)); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHistorySurvivesRestart(t *testing.T) {
	h1 := newHarness(t, setup{})
	h1.mustChat(t, `{"message":"before","user":"u","conversation":"c"}`)
	h1.gw.Close()
	if err := h1.st.Close(); err != nil {
		t.Fatal(err)
	}

	h2 := newHarness(t, setup{dbPath: h1.dbPath})
	h2.mustChat(t, `{"message":"after","user":"u","conversation":"c"}`)
	want := []string{"user:before", "assistant:echo: before", "user:after"}
	if diff := cmp.Diff(want, h2.upstreamMessages(t, 0)); diff != "" {
		t.Errorf("upstream request after restart (-want +got):\n%s", diff)
	}
	_, hist := h2.history(t, http.MethodGet, "user=u&conversation=c")
	if len(hist.Messages) != 4 {
		t.Errorf("history after restart: %v", contents(hist.Messages))
	}
}

func TestFailedCallLeavesHistoryUnchanged(t *testing.T) {
	tests := []struct {
		name       string
		faults     []fakeupstream.Fault
		wantStatus int
		wantHeader string // Retry-After passed through
	}{
		{name: "500 beyond retries", faults: repeat(fakeupstream.Fault{Status: 500}, 3), wantStatus: http.StatusBadGateway},
		{name: "400", faults: []fakeupstream.Fault{{Status: 400}}, wantStatus: http.StatusBadRequest},
		{name: "upstream 401", faults: []fakeupstream.Fault{{Status: 401}}, wantStatus: http.StatusUnauthorized},
		{name: "404 model", faults: []fakeupstream.Fault{{Status: 404}}, wantStatus: http.StatusNotFound},
		{name: "429 beyond retries", faults: repeat(fakeupstream.Fault{Status: 429, RetryAfter: "0.01"}, 3),
			wantStatus: http.StatusTooManyRequests, wantHeader: "0.01"},
		{name: "reset before headers", faults: repeat(fakeupstream.Fault{ResetBeforeHeaders: true}, 3),
			wantStatus: http.StatusBadGateway},
		{name: "body cut mid-way", faults: []fakeupstream.Fault{{ResetAfterChunks: 1}}, wantStatus: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, setup{})
			h.mustChat(t, `{"message":"first"}`)
			h.fake.Enqueue(tt.faults...)
			status, hdr, b := h.do(t, http.MethodPost, "/api/chat", `{"message":"second"}`)
			var out chatResponse
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("decode %q: %v", b, err)
			}
			if status != tt.wantStatus || out.Success || out.Error == "" {
				t.Errorf("status %d body %s; want %d with an error", status, b, tt.wantStatus)
			}
			if out.Details != nil {
				t.Errorf("details shown outside development: %v", out.Details)
			}
			if got := hdr.Get("Retry-After"); got != tt.wantHeader {
				t.Errorf("Retry-After %q, want %q", got, tt.wantHeader)
			}
			_, hist := h.history(t, http.MethodGet, "")
			if want := []string{"user:first", "assistant:echo: first"}; !cmp.Equal(want, contents(hist.Messages)) {
				t.Errorf("history changed: %v", contents(hist.Messages))
			}
		})
	}
}

func repeat(f fakeupstream.Fault, n int) []fakeupstream.Fault {
	out := make([]fakeupstream.Fault, n)
	for i := range out {
		out[i] = f
	}
	return out
}

func TestDevelopmentShowsDetails(t *testing.T) {
	h := newHarness(t, setup{opts: func(o *Options) { o.Development = true }})
	h.fake.Enqueue(fakeupstream.Fault{Status: 404})
	status, out := h.chat(t, `{"message":"x"}`)
	if status != http.StatusNotFound || out.Details == nil || out.Details["status"] != 404.0 || out.Details["code"] != "model_not_found" {
		t.Errorf("status %d details %v", status, out.Details)
	}
}

func TestUnreachableUpstream(t *testing.T) {
	for _, path := range []string{"/api/chat", "/api/chat/stream"} {
		t.Run(path, func(t *testing.T) {
			h := newHarness(t, setup{upstreamURL: "http://127.0.0.1:1/v1"})
			status, hdr, b := h.do(t, http.MethodPost, path, `{"message":"x"}`)
			var out chatResponse
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("decode %q: %v", b, err)
			}
			if status != http.StatusBadGateway || out.Success || out.Error == "" ||
				!strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Errorf("status %d body %s", status, b)
			}
			_, hist := h.history(t, http.MethodGet, "")
			if len(hist.Messages) != 0 {
				t.Errorf("history after a failure: %v", contents(hist.Messages))
			}
		})
	}
}

func TestConcurrentCallsKeepBothTurns(t *testing.T) {
	h := newHarness(t, setup{})
	// The first call to reach the upstream is slow, so without per
	// conversation serialization the second would be sent without its turn.
	h.fake.Enqueue(fakeupstream.Fault{DelayHeaders: 300 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan string, 2)
	for _, m := range []string{"alpha", "beta"} {
		wg.Go(func() {
			status, _, b := h.do(t, http.MethodPost, "/api/chat", fmt.Sprintf(`{"message":%q}`, m))
			if status != http.StatusOK {
				errs <- fmt.Sprintf("%s: %d %s", m, status, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	first := h.upstreamMessages(t, 0)
	second := h.upstreamMessages(t, 1)
	if len(first) != 1 {
		t.Fatalf("first upstream request %v, want just its message", first)
	}
	m := strings.TrimPrefix(first[0], "user:")
	want := []string{"user:" + m, "assistant:echo: " + m}
	if len(second) != 3 || !cmp.Equal(want, second[:2]) {
		t.Errorf("second upstream request %v, want the first turn %v before it", second, want)
	}
	_, hist := h.history(t, http.MethodGet, "")
	if len(hist.Messages) != 4 {
		t.Errorf("history %v, want both turns", contents(hist.Messages))
	}
	if n := h.svc.locks.size(); n != 0 {
		t.Errorf("%d conversation locks left behind", n)
	}
}

func TestIsolationBetweenUsersAndKeys(t *testing.T) {
	h := newHarness(t, setup{auth: true})
	k1, k2 := h.newKey(t, "one"), h.newKey(t, "two")
	h.mustChat(t, `{"message":"secret plan","user":"a"}`, "key", k1)

	tests := []struct {
		name    string
		method  string
		query   string
		key     string
		status  int
		wantLen int
	}{
		{"owner reads", http.MethodGet, "user=a", k1, 200, 2},
		{"other user same key", http.MethodGet, "user=b", k1, 200, 0},
		{"same user other key", http.MethodGet, "user=a", k2, 200, 0},
		{"other key clears nothing", http.MethodDelete, "user=a", k2, 200, 0},
		{"no key", http.MethodGet, "user=a", "", 401, 0},
		{"bad key", http.MethodDelete, "user=a", "tg-NOTAREALKEY", 401, 0},
		{"owner still has it", http.MethodGet, "user=a", k1, 200, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.key != "" {
				hdr = []string{"key", tt.key}
			}
			status, out := h.history(t, tt.method, tt.query, hdr...)
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, out.Error, tt.status)
			}
			if status != 200 {
				if out.Success || out.Error == "" {
					t.Errorf("error answer %+v", out)
				}
				return
			}
			n := len(out.Messages)
			if tt.method == http.MethodDelete {
				n = out.Deleted
			}
			if n != tt.wantLen {
				t.Errorf("got %d messages, want %d", n, tt.wantLen)
			}
		})
	}
	// The owner can clear it.
	if _, out := h.history(t, http.MethodDelete, "user=a", "key", k1); out.Deleted != 2 {
		t.Errorf("owner deleted %d, want 2", out.Deleted)
	}
	// key 2's own conversation with user a starts empty.
	h.mustChat(t, `{"message":"hello","user":"a"}`, "key", k2)
	if got := h.upstreamMessages(t, -1); len(got) != 1 {
		t.Errorf("key 2 saw context %v", got)
	}
}

func TestBadGatewayKeyOnChat(t *testing.T) {
	h := newHarness(t, setup{auth: true})
	for _, path := range []string{"/api/chat", "/api/chat/stream"} {
		status, _, b := h.do(t, http.MethodPost, path, `{"message":"x"}`, "key", "tg-WRONGWRONGWRONG")
		var out chatResponse
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		if status != http.StatusUnauthorized || out.Success || !strings.Contains(out.Error, "invalid API key") {
			t.Errorf("%s: status %d body %s", path, status, b)
		}
		// The refusal goes through the proxy, so it is in the ledger.
		recs := h.recordsFor(path)
		if len(recs) != 1 || recs[0].Status != http.StatusUnauthorized {
			t.Errorf("%s: ledger records %+v", path, recs)
		}
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("the upstream was called %d times for a bad key", n)
	}
}

func TestErrorShapes(t *testing.T) {
	h := newHarness(t, setup{})
	big := `{"message":"` + strings.Repeat("a", MaxBody) + `"}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		errHas string
	}{
		{"empty message", "POST", "/api/chat", `{"message":""}`, 400, "non-empty string"},
		{"blank message", "POST", "/api/chat", `{"message":"  \n"}`, 400, "non-empty string"},
		{"missing message", "POST", "/api/chat", `{"model":"gpt-4o"}`, 400, "non-empty string"},
		{"non-string message", "POST", "/api/chat", `{"message":42}`, 400, "non-empty string"},
		{"array message", "POST", "/api/chat/stream", `{"message":["a"]}`, 400, "non-empty string"},
		{"bad JSON", "POST", "/api/chat", `{"message":`, 400, "not valid JSON"},
		{"not an object", "POST", "/api/chat", `[1,2]`, 400, "not valid JSON"},
		{"wrong field type", "POST", "/api/chat", `{"message":"x","temperature":"hot"}`, 400, "temperature"},
		{"bad max_tokens", "POST", "/api/chat", `{"message":"x","max_tokens":0}`, 400, "max_tokens"},
		{"too large", "POST", "/api/chat", big, 413, "exceeds"},
		{"long user", "POST", "/api/chat", `{"message":"x","user":"` + strings.Repeat("u", 300) + `"}`, 400, "256"},
		{"wrong method", "GET", "/api/chat", "", 405, "not allowed"},
		{"unknown path", "GET", "/api/nothing", "", 404, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, b := h.do(t, tt.method, tt.path, tt.body)
			var out chatResponse
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("decode %q: %v", b, err)
			}
			if status != tt.status || out.Success || !strings.Contains(out.Error, tt.errHas) {
				t.Errorf("status %d error %q; want %d containing %q", status, out.Error, tt.status, tt.errHas)
			}
		})
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("invalid requests reached the upstream %d times", n)
	}
}

func TestModelsFilteredByKey(t *testing.T) {
	h := newHarness(t, setup{auth: true})
	limited := h.newKey(t, "limited", "gpt-4o*")
	open := h.newKey(t, "open")
	tests := []struct {
		name   string
		key    string
		status int
		want   []string
	}{
		{"limited key", limited, 200, []string{"gpt-4o", "gpt-4o-mini"}},
		{"open key", open, 200, []string{"claude-sonnet-4-6", "deepseek-chat", "gpt-4o", "gpt-4o-mini", "qwen-plus", "text-embedding-3-small"}},
		{"no key", "", 401, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.key != "" {
				hdr = []string{"key", tt.key}
			}
			status, _, b := h.do(t, http.MethodGet, "/api/models", "", hdr...)
			var out struct {
				Success bool     `json:"success"`
				Models  []string `json:"models"`
			}
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if status != tt.status || out.Success != (tt.status == 200) {
				t.Fatalf("status %d body %s", status, b)
			}
			if diff := cmp.Diff(tt.want, out.Models); tt.status == 200 && diff != "" {
				t.Errorf("models (-want +got):\n%s", diff)
			}
		})
	}
	// The limited key may not chat with another model either (the proxy's gate).
	status, out := h.chat(t, `{"message":"x","model":"qwen-plus"}`, "key", limited)
	if status != http.StatusForbidden || out.Success {
		t.Errorf("disallowed model: status %d %+v", status, out)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Incorrect API key provided: sk-abc***********xyz.", "Incorrect API key provided: [redacted]."},
		{"bad key tg-ABCDEF12345", "bad key [redacted]"},
		{"Authorization: Bearer abcdef123", "Authorization: [redacted]"},
		{"nothing secret here: task-force", "nothing secret here: task-force"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUpstreamErrorMessageIsRedacted(t *testing.T) {
	h := newHarness(t, setup{})
	h.fake.Enqueue(fakeupstream.Fault{Status: 401,
		Body: `{"error":{"message":"Incorrect API key provided: ` + upstreamKey + `","type":"invalid_request_error","code":"invalid_api_key"}}`})
	status, out := h.chat(t, `{"message":"x"}`) // h.do fails the test if the key shows
	if status != http.StatusUnauthorized || !strings.Contains(out.Error, "[redacted]") {
		t.Errorf("status %d error %q", status, out.Error)
	}
}

// TestPostgresHistory runs a multi-turn conversation on PostgreSQL, as
// replicas share it.
func TestPostgresHistory(t *testing.T) {
	url := os.Getenv("TOLLGATE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("TOLLGATE_TEST_POSTGRES_URL is not set")
	}
	h := newHarness(t, setup{dbPath: url})
	user := "chat-test-" + rand.Text() // the database is shared with other tests
	for _, m := range []string{"one", "two"} {
		h.mustChat(t, fmt.Sprintf(`{"message":%q,"user":%q}`, m, user))
	}
	want := []string{"user:one", "assistant:echo: one", "user:two"}
	if diff := cmp.Diff(want, h.upstreamMessages(t, 1)); diff != "" {
		t.Errorf("second upstream request (-want +got):\n%s", diff)
	}
	if _, out := h.history(t, http.MethodDelete, "user="+user); out.Deleted != 4 {
		t.Errorf("deleted %d, want 4", out.Deleted)
	}
}

func BenchmarkChat(b *testing.B) {
	h := newHarness(b, setup{})
	for b.Loop() {
		h.mustChat(b, `{"message":"bench"}`)
	}
}
