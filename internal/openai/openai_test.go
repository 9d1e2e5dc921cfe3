package openai

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"
)

func TestParseHead(t *testing.T) {
	tests := []struct {
		body   string
		want   Head
		wantOK bool
	}{
		{`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"user":"u1","messages":[{"role":"user","content":"x"}],"max_tokens":50}`,
			Head{Model: "gpt-4o", Stream: true, IncludeUsage: true, User: "u1", HasMessages: true, MaxTokens: 50}, true},
		{`{"messages":[],"max_completion_tokens":7,"max_tokens":9}`, Head{MaxTokens: 7}, true},
		{`  {"messages":[ ] , "model":"m"}  `, Head{Model: "m"}, true},
		{`{"messages":"not an array"}`, Head{}, true},
		{`{"model":`, Head{}, false},
		{`[1,2]`, Head{}, false},
		{``, Head{}, false},
		{`{"model":"a"} trailing`, Head{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseHead([]byte(tt.body))
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("ParseHead(%q) = %+v, %v; want %+v, %v", tt.body, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	f.Add([]byte(`{"messages":[],"user":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := ParseHead(b)
		if ok && h.Model != gjson.GetBytes(b, "model").String() {
			t.Errorf("model %q disagrees with gjson %q", h.Model, gjson.GetBytes(b, "model").String())
		}
	})
}

func TestParseUsage(t *testing.T) {
	tests := []struct {
		name, body string
		want       Usage
	}{
		{"openai", `{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}`,
			Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, CachedTokens: 4, ReasoningTokens: 2}},
		{"deepseek cache", `{"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_cache_hit_tokens":6}}`,
			Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, CachedTokens: 6}},
		{"responses api", `{"usage":{"input_tokens":3,"output_tokens":4,"input_tokens_details":{"cached_tokens":1},"output_tokens_details":{"reasoning_tokens":2}}}`,
			Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, CachedTokens: 1, ReasoningTokens: 2}},
		{"none", `{"usage":null}`, Usage{}},
	}
	for _, tt := range tests {
		if got := UsageFromBody([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: %s", tt.name, cmp.Diff(tt.want, got))
		}
	}
}

func TestUsageFromTail(t *testing.T) {
	full := `{"id":"x","choices":[{"message":{"content":"hello"}}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`
	for cut := 0; cut < 40; cut += 5 { // the tail may start anywhere before "usage"
		if got := UsageFromTail([]byte(full[cut:])); got.TotalTokens != 10 || got.PromptTokens != 7 {
			t.Errorf("UsageFromTail(cut %d) = %+v", cut, got)
		}
	}
	sse := "data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}}\n\n"
	if got := UsageFromTail([]byte(sse)); got.TotalTokens != 11 {
		t.Errorf("UsageFromTail(sse) = %+v; want 11 total", got)
	}
}
