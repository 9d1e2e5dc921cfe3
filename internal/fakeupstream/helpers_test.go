package fakeupstream

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestAppendString(t *testing.T) {
	tests := []string{"", "plain", `q"uo\te`, "line\nbreak\r\t", "\x00\x1f\x7f", "你好 👋", "<html>&", "bad\xffutf8", "\u2028"}
	for _, s := range tests {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("appendString(%q) = %s: invalid JSON: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if got != want {
			t.Errorf("appendString(%q) round-trips to %q; want %q", s, got, want)
		}
		if !utf8.Valid(b) {
			t.Errorf("appendString(%q) = %q: invalid UTF-8", s, b)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		text string
		n    int
		want []string
	}{
		{"echo: a b", 3, []string{"echo:", " a", " b"}},
		{"echo: a b", 5, []string{"echo:", " a", " b", " ok", " ok"}},
		{"echo: a b c d", 3, []string{"echo:", " a", " b c d"}},
		{"echo: 你好世界", 2, []string{"echo:", " 你好世界"}},
		{"echo:", 1, []string{"echo:"}},
		{"echo: a  b", 4, []string{"echo:", " a", " ", " b"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, splitWords(tt.text, tt.n)); diff != "" {
			t.Errorf("splitWords(%q, %d) (-want +got):\n%s", tt.text, tt.n, diff)
		}
	}
}

func TestSplitEven(t *testing.T) {
	for _, s := range []string{`{"input":"hello"}`, "你好世界", "a", ""} {
		for n := 1; n <= 8; n++ {
			got := splitEven(s, n)
			if strings.Join(got, "") != s || len(got) > n {
				t.Errorf("splitEven(%q, %d) = %q", s, n, got)
			}
			for _, p := range got {
				if !utf8.ValidString(p) || p == "" {
					t.Errorf("splitEven(%q, %d): bad piece %q", s, n, p)
				}
			}
		}
	}
}

func TestHeaderFaultErrors(t *testing.T) {
	for _, h := range []http.Header{
		{"X-Fake-Status": {"abc"}}, {"X-Fake-Status": {"99"}}, {"X-Fake-Delay": {"-1s"}},
		{"X-Fake-Chunk-Delay": {"x"}}, {"X-Fake-Chunks": {"0"}}, {"X-Fake-Reset": {"after:0"}}, {"X-Fake-Reset": {"sometimes"}},
	} {
		if _, err := headerFault(h); err == nil {
			t.Errorf("headerFault(%v): want an error", h)
		}
	}
}
