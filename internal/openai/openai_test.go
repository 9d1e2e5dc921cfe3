package openai

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHead(t *testing.T) {
	tests := []struct {
		body     string
		want     Head
		wantCode string // "" = accepted
	}{
		{`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"user":"u1","messages":[{"role":"user","content":"x"}],"max_tokens":50,"n":2}`,
			Head{Model: "gpt-4o", Stream: true, IncludeUsage: true, User: "u1", HasMessages: true, MaxTokens: 50, N: 2}, ""},
		{`{"messages":[],"max_completion_tokens":7,"max_tokens":9}`, Head{MaxTokens: 7}, ""},
		{`  {"messages":[ ] , "model":"m"}  `, Head{Model: "m"}, ""},
		{`{"messages":"not an array"}`, Head{}, ""},
		{`{"mod\u0065l":"escaped","stream":null}`, Head{Model: "escaped"}, ""},
		{`{"model":`, Head{}, "invalid_json"},
		{`[1,2]`, Head{}, "invalid_json"},
		{``, Head{}, "invalid_json"},
		{`{"model":"a"} trailing`, Head{}, "invalid_json"},
		// What an upstream matching names without regard to case would read
		// differently from the gateway is refused.
		{`{"model":"gpt-4o","MODEL":"claude-sonnet-4-6"}`, Head{}, "duplicate_field"},
		{`{"model":"a","model":"b"}`, Head{}, "duplicate_field"},
		{`{"model":"gpt-4o","Stream":true,"stream":false}`, Head{}, "duplicate_field"},
		{`{"model":"m","stream_options":{"include_usage":true,"INCLUDE_USAGE":false}}`, Head{}, "duplicate_field"},
		{`{"model":"m","n":1,"N":5}`, Head{}, "duplicate_field"},
		{`{"model":5}`, Head{}, "invalid_type"},
		{`{"model":"m","stream":"true"}`, Head{}, "invalid_type"},
		{`{"model":"m","max_tokens":1e9}`, Head{}, "invalid_type"},
		{`{"model":"m","n":-2}`, Head{}, "invalid_value"},
		{`{"model":"m","messages":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, Head{}, "json_too_deep"},
	}
	for _, tt := range tests {
		got, err := ParseHead([]byte(tt.body))
		code := ""
		if e, ok := errors.AsType[*Error](err); ok {
			code = e.Code
			if e.Status != 400 {
				t.Errorf("ParseHead(%q) status %d; want 400", tt.body, e.Status)
			}
		} else if err != nil {
			t.Errorf("ParseHead(%q) error %v is not an *Error", tt.body, err)
		}
		if code != tt.wantCode || (err == nil && got != tt.want) {
			t.Errorf("ParseHead(%q) = %+v, %q; want %+v, %q", tt.body, got, code, tt.want, tt.wantCode)
		}
	}
}

// TestParseHeadDeepBodyIsRefusedNotFatal: a 22 MB body of nested arrays (it
// used to overflow the stack through a recursive validator) is a 400.
func TestParseHeadDeepBodyIsRefusedNotFatal(t *testing.T) {
	body := []byte(`{"model":"m","messages":` + strings.Repeat("[", 22<<20))
	if _, err := ParseHead(body); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("err = %v; want a depth refusal", err)
	}
}

func FuzzParseHead(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	f.Add([]byte(`{"messages":[],"user":"\u00e9"}`))
	f.Add([]byte(`{"model":"a","MODEL":"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHead(b)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		// What the gateway read is what encoding/json (case-insensitive,
		// like many upstreams) reads.
		var v struct {
			Model  *string `json:"model"`
			Stream *bool   `json:"stream"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return // e.g. a type encoding/json rejects in a field we do not read
		}
		if v.Model != nil && *v.Model != h.Model {
			t.Errorf("model %q; encoding/json reads %q", h.Model, *v.Model)
		}
		if v.Stream != nil && *v.Stream != h.Stream {
			t.Errorf("stream %v; encoding/json reads %v", h.Stream, *v.Stream)
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

// TestUsageFromTailShapes: the usage value is parsed in place, whatever the
// spacing around its colon; anything but an object after "usage" is no usage.
func TestUsageFromTailShapes(t *testing.T) {
	tests := []struct {
		name  string
		tail  string
		total int64
	}{
		{"compact", `{"usage":{"prompt_tokens":1,"total_tokens":3}}`, 3},
		{"spaced", "{\"usage\" :\n\t{ \"total_tokens\" : 4 } }", 4},
		{"cut inside usage", `{"usage":{"prompt_tokens":1,"total_tok`, 1}, // what was read, as before
		{"null", `{"usage":null}`, 0},
		{"no colon", `{"usage" 5}`, 0},
		{"ends at the key", `{"usage"`, 0},
		{"ends at the colon", `{"usage": `, 0},
		{"last usage wins", `{"usage":{"total_tokens":1}} {"usage":{"total_tokens":2}}`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UsageFromTail([]byte(tt.tail)); got.TotalTokens != tt.total {
				t.Errorf("UsageFromTail(%q).TotalTokens = %d, want %d", tt.tail, got.TotalTokens, tt.total)
			}
		})
	}
}
