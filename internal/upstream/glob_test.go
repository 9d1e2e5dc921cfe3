package upstream

import "testing"

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "gpt-4o", true},
		{"gpt-4o", "gpt-4o", true},
		{"gpt-4o", "gpt-4o-mini", false},
		{"gpt-4o*", "gpt-4o-mini", true},
		{"gpt-4o*", "gpt-4", false},
		{"openai/*", "openai/gpt-4o", true},
		{"*/gpt-4o", "openai/gpt-4o", true},
		{"*/gpt-4o", "gpt-4o", false},
		{"*", "anthropic/claude-3.5/sonnet", true},
		{"claude-*-sonnet", "claude-3.5-sonnet", true},
		{"claude-*-sonnet", "claude-3.5-haiku", false},
		{"gpt-?o", "gpt-4o", true},
		{"gpt-?o", "gpt-40o", false},
		{"GPT-4o", "gpt-4o", false},
		{"a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"*a", "bab", false},
		{"*b", "bab", true},
		{"**", "x", true},
		{"", "", true},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v; want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
