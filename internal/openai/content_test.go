package openai

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestAppendContentMatchesGJSON: the fast path takes exactly what a full
// parse of the chunk would.
func TestAppendContentMatchesGJSON(t *testing.T) {
	tests := []struct {
		name, path, chunk string
	}{
		{"plain", "choices.0.delta.content", `{"id":"c","choices":[{"index":0,"delta":{"content":" hello"},"finish_reason":null}]}`},
		{"escapes", "choices.0.delta.content", `{"choices":[{"delta":{"content":"a\"b\\n\u00e9"}}]}`},
		{"null content", "choices.0.delta.content", `{"choices":[{"delta":{"content":null,"tool_calls":[{"function":{"arguments":"{}"}}]}}]}`},
		{"role only", "choices.0.delta.content", `{"choices":[{"delta":{"role":"assistant"}}]}`},
		{"reasoning", "choices.0.delta.content", `{"choices":[{"delta":{"reasoning_content":"think","content":"say"}}]}`},
		{"name as a value first", "choices.0.delta.content", `{"kind":"content","choices":[{"delta":{"content":"x"}}]}`},
		{"two choices", "choices.0.delta.content", `{"choices":[{"delta":{"content":"first"}},{"delta":{"content":"second"}}]}`},
		{"space after colon", "choices.0.delta.content", `{"choices":[{"delta":{"content": "spaced"}}]}`},
		{"empty", "choices.0.delta.content", `{"choices":[{"delta":{"content":""}}]}`},
		{"non-ASCII", "choices.0.delta.content", `{"choices":[{"delta":{"content":"日本語"}}]}`},
		{"completions", "choices.0.text", `{"choices":[{"text":" done","index":0,"logprobs":null}]}`},
		{"completions text_offset", "choices.0.text", `{"choices":[{"text":"t","logprobs":{"text_offset":[1]}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &stream{contentPath: tt.path, contentName: contentName}
			if tt.path == "choices.0.text" {
				s.contentName = textName
			}
			s.appendContent([]byte(tt.chunk))
			want := ""
			if c := gjson.Get(tt.chunk, tt.path); c.Type == gjson.String {
				want = c.Str
			}
			if string(s.content) != want {
				t.Errorf("content = %q, want %q", s.content, want)
			}
		})
	}
}
