package jsonscan

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// chatBody builds a deterministic chat request of about size bytes: a system
// prompt, alternating turns of mixed prose (escapes, non-ASCII, code) and a
// tool definition, the shape a coding assistant sends.
func chatBody(tb testing.TB, size int) []byte {
	tb.Helper()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	prose := "Here is the function you asked for:\n```go\nfunc add(a, b int) int { return a + b }\n```\n" +
		"It handles \"quoted\" text, tabs\tand unicode — naïve café 東京 🚀. "
	req := map[string]any{
		"model":          "gpt-4o",
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
		"temperature":    0.2,
		"max_tokens":     1024,
		"user":           "user-1234",
		"tools": []any{map[string]any{"type": "function", "function": map[string]any{
			"name": "get_weather", "description": "Get the weather",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{
				"city": map[string]any{"type": "string"}, "days": map[string]any{"type": "integer", "minimum": 1}},
				"required": []string{"city"}}}}},
	}
	msgs := []msg{{"system", "You are a helpful assistant."}}
	for i := 0; ; i++ {
		req["messages"] = msgs
		b, err := json.Marshal(req)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b) >= size {
			return b
		}
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		n := max(1, min(8, (size-len(b))/len(prose)))
		msgs = append(msgs, msg{role, fmt.Sprintf("turn %d: %s", i, strings.Repeat(prose, n))})
	}
}

func BenchmarkScan(b *testing.B) {
	for _, size := range []int{2 << 10, 200 << 10} {
		body := chatBody(b, size)
		if _, err := Scan(body, Options{}); err != nil || !gjson.ValidBytes(body) {
			b.Fatalf("bad fixture: %v", err)
		}
		name := fmt.Sprintf("%dKB", size>>10)
		b.Run("jsonscan/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Scan(body, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("jsonscan+fields/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				o, err := Scan(body, Options{})
				if err != nil {
					b.Fatal(err)
				}
				for _, f := range []string{"model", "stream", "user", "max_tokens", "messages"} {
					if _, _, err := o.Field(f); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run("gjson.ValidBytes/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if !gjson.ValidBytes(body) {
					b.Fatal("invalid")
				}
			}
		})
		b.Run("json.Valid/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// BenchmarkScanProse is a 200 KB body whose prompt is one long string
// without escapes (pasted prose, the load tool's body200k): the string
// scan's fast path end to end.
func BenchmarkScanProse(b *testing.B) {
	body, err := json.Marshal(map[string]any{
		"model":    "gpt-4o-mini",
		"messages": []map[string]string{{"role": "user", "content": strings.Repeat("lorem ipsum dolor sit amet ", 200<<10/27)}},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Scan(body, Options{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Scan(body, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
