package openai

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/sse"
)

// TestAppendContentMatchesGJSON: the fast path takes exactly what a full
// parse of the chunk would.
func TestAppendContentMatchesGJSON(t *testing.T) {
	tests := []struct {
		name, path, chunk string
	}{
		{"plain", "choices.0.delta.content", `{"id":"c","choices":[{"index":0,"delta":{"content":" hello"},"finish_reason":null}]}`},
		{"escapes", "choices.0.delta.content", `{"choices":[{"delta":{"content":"a\"b\\n\u00e9"}}]}`},
		{"escapes then members", "choices.0.delta.content", `{"choices":[{"delta":{"content":"line\nnext \"q\""},"finish_reason":null}],"usage":null}`},
		{"surrogate pair", "choices.0.delta.content", `{"choices":[{"delta":{"content":"\ud83d\ude00 ok"}}]}`},
		{"lone surrogate", "choices.0.delta.content", `{"choices":[{"delta":{"content":"\ud83d x"}}]}`},
		{"invalid escape", "choices.0.delta.content", `{"choices":[{"delta":{"content":"bad\q"}}]}`},
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

// TestStreamEventUsage: usage is read from the chunk that carries it, and a
// "usage":null the client did not ask for is removed.
func TestStreamEventUsage(t *testing.T) {
	tests := []struct {
		name, data string
		hide       bool
		wantOut    string
		wantTokens int64
	}{
		{"null usage hidden", `{"choices":[{"delta":{"content":"a"}}],"usage":null}`, true,
			"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", 0},
		{"null usage kept when asked for", `{"choices":[],"usage":null}`, false,
			"data: {\"choices\":[],\"usage\":null}\n\n", 0},
		{"usage chunk hidden", `{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`, true, "", 7},
		{"usage chunk passed", `{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`, false,
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n", 7},
		{"null usage after another member named usage", `{"x":{"usage":1},"usage":null}`, true,
			"data: {\"x\":{\"usage\":1}}\n\n", 0},
		{"nested null before the real usage", `{"choices":[{"delta":{},"usage":null}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`, false,
			"data: {\"choices\":[{\"delta\":{},\"usage\":null}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &stream{hideUsage: tt.hide, contentPath: "choices.0.delta.content", contentName: contentName}
			raw := "data: " + tt.data + "\n\n"
			out, err := s.Event(nil, sse.Event{Data: []byte(tt.data), Raw: []byte(raw), Dispatch: true})
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.wantOut {
				t.Errorf("out = %q, want %q", out, tt.wantOut)
			}
			if got := s.Usage().Total(); got != tt.wantTokens {
				t.Errorf("usage total = %d, want %d", got, tt.wantTokens)
			}
		})
	}
}

// TestTailContentOnlyWithoutUsage: a copied-through body's text is kept
// only when its usage is missing, since only the estimate needs it.
func TestTailContentOnlyWithoutUsage(t *testing.T) {
	const msg = `{"choices":[{"index":0,"message":{"role":"assistant","content":"hello there"}}]`
	tests := []struct {
		name, tail  string
		wantTotal   int64
		wantContent string
	}{
		{"usage reported", msg + `,"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`, 10, ""},
		{"no usage", msg + `}`, 0, "hello there"},
		{"usage null", msg + `,"usage":null}`, 0, "hello there"},
		{"only a total", msg + `,"usage":{"total_tokens":10}}`, 0, "hello there"},
		{"cut at the front", `there"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`, 2, ""},
		{"empty", ``, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := &reply{req: &request{metered: true}}
			u, content := rp.Tail([]byte(tt.tail))
			if u.Total() != tt.wantTotal || string(content) != tt.wantContent {
				t.Errorf("Tail = total %d, content %q; want %d, %q", u.Total(), content, tt.wantTotal, tt.wantContent)
			}
		})
	}
}
