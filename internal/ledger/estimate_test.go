package ledger

import "testing"

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		name string
		text string
		want int64
	}{
		{"empty", "", 0},
		{"one char", "a", 1},
		{"ascii", "hello world", 3}, // 11 bytes
		{"ascii sentence", "The quick brown fox jumps over the lazy dog.", 11}, // 44 bytes
		{"chinese", "你好世界", 4},
		{"chinese punctuation", "你好，世界。", 6},
		{"japanese", "こんにちは", 5},
		{"korean", "안녕하세요", 5},
		{"emoji", "😀", 1},
		{"emoji skin tone", "👍🏽", 1},
		{"emoji zwj family", "👨‍👩‍👧", 3},
		{"flag-ish symbols", "☀️", 1},
		{"mixed", "Hi 你好!", 3},    // "Hi " + "!" = 4 bytes → 1, plus 2
		{"cyrillic", "привет", 3}, // 12 bytes
		{"accented", "café", 2},   // 5 bytes
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EstimateTokens([]byte(tc.text)); got != tc.want {
				t.Errorf("EstimateTokens(%q) = %d, want %d", tc.text, got, tc.want)
			}
		})
	}
}

func TestEstimatePromptTokens(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int64
	}{
		{"chat", `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"你好"}]}`,
			(4 + 2) + (4 + 2) + 3},
		{"content parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"x"}}]}]}`,
			4 + 3 + 3},
		{"completion prompt", `{"prompt":"hello world"}`, 3},
		{"embedding input array", `{"input":["abcd","efgh"]}`, 2},
		{"no text", `{"model":"m"}`, 0},
		{"invalid json", `{`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EstimatePromptTokens([]byte(tc.body)); got != tc.want {
				t.Errorf("EstimatePromptTokens = %d, want %d", got, tc.want)
			}
		})
	}
}
