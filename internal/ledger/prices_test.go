package ledger

import "testing"

func TestCost(t *testing.T) {
	p, err := NewPrices(map[string]PriceUSD{
		"my-model":    {Input: 1, Output: 2}, // cached omitted: billed as input
		"Half-Up":     {Input: 0.0375, CachedInput: 0.0005, Output: 0.00049},
		"gpt-4o-mini": {Input: 0.2, CachedInput: 0.1, Output: 0.8}, // overrides the built-in
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		model      string
		tok        Tokens
		wantNano   int64
		wantPriced bool
	}{
		{"gpt-4o plain", "gpt-4o", Tokens{Prompt: 1000, Completion: 500}, 1000*2500 + 500*10000, true},
		{"gpt-4o cached", "gpt-4o", Tokens{Prompt: 1000, Cached: 200, Completion: 500}, 800*2500 + 200*1250 + 500*10000, true},
		{"reasoning billed as output", "o3-mini", Tokens{Prompt: 10, Completion: 100, Reasoning: 80}, 10*1100 + 100*4400, true},
		{"vendor prefix", "openai/gpt-4o", Tokens{Prompt: 1}, 2500, true},
		{"nested prefix", "openrouter/anthropic/claude-sonnet-4-6", Tokens{Prompt: 1, Cached: 1, Completion: 1}, 300 + 15000, true},
		{"dated snapshot", "gpt-4o-2024-08-06", Tokens{Completion: 2}, 20000, true},
		{"compact date", "claude-haiku-4-5-20251001", Tokens{Prompt: 3}, 3000, true},
		{"case insensitive", "GPT-4o", Tokens{Prompt: 1}, 2500, true},
		{"sub-cent model", "gpt-4o-mini", Tokens{Prompt: 1_000_000, Cached: 500_000, Completion: 1_000_000}, 500_000*200 + 500_000*100 + 1_000_000*800, true},
		{"cached defaults to input", "my-model", Tokens{Prompt: 10, Cached: 10}, 10 * 1000, true},
		{"round half up", "half-up", Tokens{Prompt: 2, Cached: 1, Completion: 1}, 38 + 1 + 0, true},
		{"cached clamped to prompt", "gpt-4o", Tokens{Prompt: 10, Cached: 50}, 10 * 1250, true},
		{"deepseek", "deepseek/deepseek-chat", Tokens{Prompt: 1000, Cached: 900, Completion: 100}, 100*280 + 900*28 + 100*420, true},
		{"unpriced", "mystery-model", Tokens{Prompt: 1000, Completion: 1000}, 0, false},
		{"unpriced with prefix", "acme/mystery", Tokens{Prompt: 1}, 0, false},
		{"zero tokens", "gpt-4o", Tokens{}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nano, priced := p.Cost(tc.model, tc.tok)
			if nano != tc.wantNano || priced != tc.wantPriced {
				t.Errorf("Cost(%q, %+v) = %d, %v; want %d, %v", tc.model, tc.tok, nano, priced, tc.wantNano, tc.wantPriced)
			}
		})
	}
}

func TestPriceConversion(t *testing.T) {
	tests := []struct {
		usd  float64
		nano int64
	}{
		{2.5, 2500}, {0.15, 150}, {0.075, 75}, {0.3, 300}, {15, 15000}, {0.0375, 38}, {0.0005, 1},
		{0.00049, 0}, {0.028, 28}, {1.1, 1100}, {0, 0},
	}
	for _, tc := range tests {
		if got := usdPerMillionToNano(tc.usd); got != tc.nano {
			t.Errorf("usdPerMillionToNano(%v) = %d, want %d", tc.usd, got, tc.nano)
		}
	}
}

func TestBuiltinPrices(t *testing.T) {
	p, err := NewPrices(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"claude-sonnet-4-6", "claude-opus-4-1", "claude-haiku-4-5", "gpt-4o", "gpt-4o-mini",
		"gpt-4.1", "gpt-4.1-mini", "o3-mini", "qwen-plus", "qwen-turbo", "qwen-max", "deepseek-chat",
		"deepseek-reasoner", "gemini-2.5-pro", "gemini-2.5-flash", "text-embedding-3-small"} {
		pr, ok := p.Lookup(m)
		if !ok || pr.InputNano <= 0 || pr.CachedInputNano <= 0 || pr.CachedInputNano > pr.InputNano {
			t.Errorf("Lookup(%q) = %+v, %v", m, pr, ok)
		}
	}
	if _, err := NewPrices(map[string]PriceUSD{"bad": {Input: -1}}); err == nil {
		t.Error("negative price: want error")
	}
}
