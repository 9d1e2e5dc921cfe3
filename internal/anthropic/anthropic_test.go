package anthropic

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/proxy"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, path, body string
		wantParam        string // "" = accepted
		want             proxy.Head
	}{
		{"ok", PathMessages, `{"model":"m","max_tokens":5,"stream":true,"metadata":{"user_id":"u1"},"messages":[{"role":"user","content":"x"}]}`,
			"", proxy.Head{Model: "m", Stream: true, User: "u1", MaxTokens: 5, N: 1, Metered: true}},
		{"trailing slash", PathMessages + "/", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`,
			"", proxy.Head{Model: "m", MaxTokens: 5, N: 1, Metered: true}},
		{"count needs no max_tokens", PathCountTokens, `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`,
			"", proxy.Head{Model: "m", N: 1, Metered: true}},
		{"no model", PathMessages, `{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "model", proxy.Head{}},
		{"model not a string", PathMessages, `{"model":5,"max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "model", proxy.Head{}},
		{"no max_tokens", PathMessages, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, "max_tokens", proxy.Head{}},
		{"zero max_tokens", PathMessages, `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, "max_tokens", proxy.Head{}},
		{"no messages", PathMessages, `{"model":"m","max_tokens":5}`, "messages", proxy.Head{}},
		{"empty messages", PathMessages, `{"model":"m","max_tokens":5,"messages":[]}`, "messages", proxy.Head{}},
		{"messages not a list", PathMessages, `{"model":"m","max_tokens":5,"messages":{}}`, "messages", proxy.Head{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := New(nil).Parse(&proxy.Inbound{Method: http.MethodPost, Path: tt.path, Body: []byte(tt.body)})
			if tt.wantParam != "" {
				var e *apierr.Error
				if !errors.As(err, &e) || e.Status != 400 || e.Param != tt.wantParam {
					t.Fatalf("err = %#v; want a 400 on %s", err, tt.wantParam)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Head(); got != tt.want {
				t.Errorf("Head = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRefusals(t *testing.T) {
	d := New(nil)
	for _, in := range []proxy.Inbound{
		{Method: http.MethodPost, Path: PathMessages, Body: []byte(`not json`)},
		{Method: http.MethodPost, Path: PathMessages, Body: []byte(`[1]`)},
		{Method: http.MethodGet, Path: PathMessages},
		{Method: http.MethodPost, Path: "/messages/batches"},
	} {
		if _, err := d.Parse(&in); err == nil {
			t.Errorf("Parse(%s %s %q) accepted", in.Method, in.Path, in.Body)
		}
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		e        *apierr.Error
		wantType string
	}{
		{apierr.New(401, apierr.Authentication, "invalid_api_key", "bad key"), "authentication_error"},
		{apierr.New(403, apierr.Permission, "model_not_allowed", "no"), "permission_error"},
		{apierr.New(404, apierr.NotFound, "", "no"), "not_found_error"},
		{apierr.New(413, apierr.InvalidRequest, "", "big"), "request_too_large"},
		{&apierr.Error{Status: 429, Type: apierr.RateLimit, Message: "slow", Header: http.Header{"Retry-After": {"7"}}}, "rate_limit_error"},
		{apierr.New(429, apierr.Insufficient, "budget_exceeded", "budget"), "rate_limit_error"},
		{apierr.New(402, apierr.Insufficient, "budget_exceeded", "budget"), "billing_error"},
		{apierr.New(500, apierr.Server, "", "oops"), "api_error"},
		{apierr.New(502, apierr.Upstream, "", "oops"), "api_error"},
		{apierr.New(503, apierr.Overloaded, "", "busy"), "overloaded_error"},
		{apierr.New(504, apierr.Timeout, "", "late"), "timeout_error"},
		{apierr.BadRequest("x", "bad"), "invalid_request_error"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		New(nil).WriteError(w, tt.e, "req_1")
		if w.Code != tt.e.Status || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: status %d, content type %q", tt.wantType, w.Code, w.Header().Get("Content-Type"))
		}
		var body struct {
			Type  string `json:"type"`
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if body.Type != "error" || body.Error.Type != tt.wantType || body.Error.Message != tt.e.Message || body.RequestID != "req_1" {
			t.Errorf("status %d: body %s; want type %s", tt.e.Status, w.Body, tt.wantType)
		}
		if tt.e.Header != nil && w.Header().Get("Retry-After") != "7" {
			t.Errorf("Retry-After lost")
		}
	}
}

func TestTranslatedErrors(t *testing.T) {
	reply := translated(t, streamRequest).Reply
	tests := []struct {
		status     int
		ct, body   string
		wantStatus int
		wantType   string
		wantMsg    string
	}{
		{400, "application/json", `{"error":{"message":"bad thing","type":"invalid_request_error"}}`, 400, "invalid_request_error", "bad thing"},
		{401, "application/json", `{"error":{"message":"Incorrect API key","code":"invalid_api_key"}}`, 401, "authentication_error", "Incorrect API key"},
		{404, "application/json", `{"error":{"message":"no model"}}`, 404, "not_found_error", "no model"},
		{413, "text/plain", `too large`, 413, "request_too_large", "too large"},
		{429, "application/json", `{"error":{"message":"slow down"}}`, 429, "rate_limit_error", "slow down"},
		{500, "text/html", `<html>oops</html>`, 500, "api_error", "upstream error: 500 Internal Server Error"},
		{502, "application/json", `{"message":"bad gateway"}`, 502, "api_error", "bad gateway"},
		{503, "application/json", `{"error":{"message":"The engine is currently overloaded"}}`, 529, "overloaded_error", "The engine is currently overloaded"},
		{529, "application/json", `{"error":{"message":"Overloaded"}}`, 529, "overloaded_error", "Overloaded"},
	}
	for _, tt := range tests {
		st, body, ct := reply.Error(tt.status, http.Header{"Content-Type": {tt.ct}}, []byte(tt.body))
		if st != tt.wantStatus || ct != "application/json" ||
			gjson.GetBytes(body, "type").Str != "error" ||
			gjson.GetBytes(body, "error.type").Str != tt.wantType ||
			gjson.GetBytes(body, "error.message").Str != tt.wantMsg {
			t.Errorf("%d %s: got %d %s", tt.status, tt.body, st, body)
		}
	}
}

func TestPassthrough(t *testing.T) {
	body := `{"model":"claude-sonnet-4-6","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}],"future_field":{"a":1}}`
	req := parse(t, body, PathMessages)
	req.(*request).query = "beta=true"
	out, err := req.Outbound(proxy.Target{API: proxy.APIAnthropic, Model: "claude-sonnet-4-6"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Path != "/messages?beta=true" || string(out.Body) != body {
		t.Errorf("Outbound = %q %s; want the body unchanged", out.Path, out.Body)
	}
	h := http.Header{}
	out.Header(h)
	if h.Get("Anthropic-Version") != DefaultVersion {
		t.Errorf("anthropic-version = %q", h.Get("Anthropic-Version"))
	}
	h = http.Header{"Anthropic-Version": {"2099-01-01"}, "Anthropic-Beta": {"b1"}}
	out.Header(h)
	if h.Get("Anthropic-Version") != "2099-01-01" || h.Get("Anthropic-Beta") != "b1" {
		t.Errorf("client's anthropic headers changed: %v", h)
	}
	out, _ = req.Outbound(proxy.Target{API: proxy.APIAnthropic, Model: "claude-3-real"})
	if gjson.GetBytes(out.Body, "model").Str != "claude-3-real" || !gjson.GetBytes(out.Body, "future_field").Exists() {
		t.Errorf("model rewrite: %s", out.Body)
	}

	// Errors: JSON passes unchanged, anything else is wrapped.
	raw := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	st, b, _ := out.Reply.Error(529, http.Header{"Content-Type": {"application/json"}}, []byte(raw))
	if st != 529 || string(b) != raw {
		t.Errorf("JSON error changed: %d %s", st, b)
	}
	st, b, _ = out.Reply.Error(502, http.Header{"Content-Type": {"text/html"}}, []byte("<html>bad gateway</html>"))
	if st != 502 || gjson.GetBytes(b, "error.type").Str != "api_error" {
		t.Errorf("HTML error: %d %s", st, b)
	}

	// Non-stream usage: input excludes cache reads and writes.
	resp := `{"id":"msg_1","type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":4}}`
	got, _, u, err := out.Reply.Body([]byte(resp))
	want := proxy.Usage{Prompt: 60, Cached: 30, CacheWrite: 20, Completion: 4}
	if err != nil || string(got) != resp || u != want {
		t.Errorf("Body: %v %s %+v; want %+v", err, got, u, want)
	}
}

func TestPassthroughStream(t *testing.T) {
	in := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":20,\"cache_read_input_tokens\":30,\"output_tokens\":1}}}\n\n" +
		"event: ping\ndata: {\"type\": \"ping\"}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	out, _ := parse(t, streamRequest, PathMessages).Outbound(proxy.Target{API: proxy.APIAnthropic})
	st := out.Reply.Stream()
	got := runStream(t, st, []byte(in), 0)
	if string(got) != in {
		t.Errorf("passthrough changed the stream:\n%s", got)
	}
	if u := st.Usage(); u != (proxy.Usage{Prompt: 60, Cached: 30, CacheWrite: 20, Completion: 15}) {
		t.Errorf("Usage = %+v", u)
	}
	if string(st.Content()) != "Hello" {
		t.Errorf("Content = %q", st.Content())
	}

	// Cut short: the client gets an error event.
	st = out.Reply.Stream()
	cut := in[:strings.Index(in, "event: message_delta")]
	got = runStream(t, st, []byte(cut), 0)
	if !strings.HasSuffix(string(got), "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the upstream stream ended before message_stop\"}}\n\n") {
		t.Errorf("cut stream ends with %q", got[max(0, len(got)-120):])
	}
}

func TestToolNames(t *testing.T) {
	var n toolNames
	for _, name := range []string{"Bash", "a-b_c9", strings.Repeat("x", 64)} {
		if got := n.up(name); got != name {
			t.Errorf("up(%q) = %q; valid names stay", name, got)
		}
	}
	if n.back != nil {
		t.Errorf("valid names were mapped: %v", n.back)
	}
	seen := map[string]bool{}
	for _, name := range []string{strings.Repeat("x", 65), strings.Repeat("x", 66), "a.b", "a_b_", "a b", "工具"} {
		up := n.up(name)
		if !validToolName(up) || seen[up] {
			t.Errorf("up(%q) = %q: invalid or colliding", name, up)
		}
		seen[up] = true
		if n.client(up) != name {
			t.Errorf("client(%q) = %q; want %q", up, n.client(up), name)
		}
	}
}

func TestCountTokens(t *testing.T) {
	body := `{"model":"m","system":"abc","messages":[{"role":"user","content":[{"type":"text","text":"abcdef"},{"type":"image","source":{}}]}],
	 "tools":[{"name":"t","description":"d","input_schema":{"type":"object"}}]}`
	want := tokensBase + tokensMessage + textTokens("abc") + tokensMessage + textTokens("abcdef") + tokensPerImage +
		tokensTools + tokensPerTool + textTokens("t") + textTokens("d") + textTokens(`{"type":"object"}`)
	if got := CountTokens([]byte(body)); got != want {
		t.Errorf("CountTokens = %d; want %d", got, want)
	}
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"", 0}, {"word", 1}, {"words", 2}, {"two words", 3}, {"camelCase", 4}, {"a1b2c3", 5}, {"12345", 3},
		{"a  b", 3}, {"\n\n", 2}, {"{}", 2}, {"日本語", 4}, {"x/y", 3},
	} {
		if got := textTokens(tt.in); got != tt.want {
			t.Errorf("textTokens(%q) = %d; want %d", tt.in, got, tt.want)
		}
	}
	req := parse(t, body, PathCountTokens)
	la := req.(proxy.LocalAnswer)
	if _, _, _, ok := la.Answer(proxy.Target{API: proxy.APIAnthropic}); ok {
		t.Error("count_tokens answered locally for an Anthropic upstream")
	}
	st, b, ct, ok := la.Answer(proxy.Target{API: proxy.APIOpenAI})
	if !ok || st != 200 || ct != "application/json" || gjson.GetBytes(b, "input_tokens").Int() != want {
		t.Errorf("Answer = %d %s %s %v", st, b, ct, ok)
	}
	if _, _, _, ok := parse(t, streamRequest, PathMessages).(proxy.LocalAnswer).Answer(proxy.Target{API: proxy.APIOpenAI}); ok {
		t.Error("a Messages request was answered locally")
	}
	out, err := req.Outbound(proxy.Target{API: proxy.APIAnthropic})
	if err != nil || out.Path != PathCountTokens {
		t.Errorf("count_tokens to an Anthropic upstream: %v %+v", err, out)
	}
}

func TestModelList(t *testing.T) {
	var got struct {
		Data []struct {
			Type, ID, DisplayName, CreatedAt string
		}
		HasMore bool   `json:"has_more"`
		FirstID string `json:"first_id"`
		LastID  string `json:"last_id"`
	}
	if err := json.Unmarshal(ModelList([]string{"a", `b"c`}), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Data) != 2 || got.Data[1].ID != `b"c` || got.Data[0].Type != "model" || got.FirstID != "a" || got.LastID != `b"c` || got.HasMore {
		t.Errorf("ModelList = %+v", got)
	}
	if !json.Valid(ModelList(nil)) {
		t.Error("empty list is not JSON")
	}
}

func TestOpenAIHeader(t *testing.T) {
	out := translated(t, streamRequest)
	h := http.Header{"Anthropic-Version": {"x"}, "Anthropic-Beta": {"y"}, "X-Claude-Code-Session-Id": {"s"}}
	out.Header(h)
	if h.Get("Anthropic-Version") != "" || h.Get("Anthropic-Beta") != "" || h.Get("X-Claude-Code-Session-Id") != "s" {
		t.Errorf("header = %v", h)
	}
}
