package ledger

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRateCost(t *testing.T) {
	sonnet := Rate{Input: 3e9, Output: 15e9, CacheRead: 3e8, CacheWrite: 375e7}
	tests := []struct {
		name string
		r    Rate
		t    Tokens
		want int64
	}{
		{"plain", sonnet, Tokens{Prompt: 1000, Completion: 100}, 3_000_000 + 1_500_000},
		// 1000 prompt = 200 uncached + 500 read + 300 written.
		{"cache read and write", sonnet, Tokens{Prompt: 1000, Cached: 500, CacheWrite: 300, Completion: 100},
			200*3000 + 500*300 + 300*3750 + 100*15000},
		{"reasoning is output", sonnet, Tokens{Prompt: 0, Completion: 10, Reasoning: 8}, 150_000},
		{"cache above prompt is clamped", sonnet, Tokens{Prompt: 10, Cached: 50, CacheWrite: 5}, 10 * 300},
		{"negative counts are zero", sonnet, Tokens{Prompt: -5, Completion: -1}, 0},
		// $0.01875/1M = 18.75 nano per token: 1 token rounds to 19, 4 are exact.
		{"rounded once, half up", Rate{Input: 18_750_000}, Tokens{Prompt: 1}, 19},
		{"exact sum", Rate{Input: 18_750_000}, Tokens{Prompt: 4}, 75},
		{"no overflow", Rate{Input: 1e15}, Tokens{Prompt: math.MaxInt64}, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Cost(tc.t); got != tc.want {
				t.Errorf("Cost = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in    string
		scale int64
		want  int64
		err   bool
	}{
		{"3", 1e9, 3e9, false},
		{"0.0375", 1e9, 37_500_000, false},
		{"$2.50", 1e9, 2_500_000_000, false},
		{"1.875e-08", perTokenScale, 18_750_000, false},
		{"1.1e-05", perTokenScale, 11_000_000_000, false},
		{"0.0000000005", 1, 0, false},
		{"", 1e9, 0, false},
		{"-1", 1e9, 0, true},
		{"abc", 1e9, 0, true},
		{"1/3", 1e9, 0, true},
		{"1e300", 1e9, 0, true},
	}
	for _, tc := range tests {
		got, err := parseAmount(tc.in, tc.scale)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseAmount(%q) = %d, %v; want %d, err=%v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestBuiltin(t *testing.T) {
	p := NewPricer(Builtin())
	for _, m := range []string{"claude-sonnet-4-6", "claude-opus-4-5", "gpt-4o", "gpt-4.1-mini", "gpt-5", "deepseek-chat",
		"deepseek-v3", "deepseek-r1", "qwen-plus", "glm-4.6", "kimi-k2", "gemini-2.5-pro", "gemini-2.5-flash",
		"openai/gpt-4o-2024-08-06", "anthropic/claude-sonnet-4-5-20250929", "GPT-4O"} {
		e, ok := p.Lookup("", m)
		if !ok || e.Source != SourceBuiltin || e.Input <= 0 {
			t.Errorf("Lookup(%q) = %+v, %v; want a builtin price", m, e, ok)
		}
	}
	// Claude Sonnet 4.6: $3 in, $0.30 cache read, $3.75 cache write, $15 out.
	got, _ := p.Cost("any", "claude-sonnet-4-6", Tokens{Prompt: 1_000_000, Cached: 400_000, CacheWrite: 100_000, Completion: 10_000})
	if want := int64(500_000*3000 + 400_000*300 + 100_000*3750 + 10_000*15000); got != want {
		t.Errorf("sonnet cost = %d, want %d", got, want)
	}
	if p.Has("", "no-such-model") {
		t.Error("unknown model has a price")
	}
}

func loadFixture(t *testing.T, p *Pricer) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "litellm_prices.json"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ParsePrices(b, SourceFile, "USD")
	if err != nil || len(entries) == 0 {
		t.Fatalf("ParsePrices = %d entries, %v", len(entries), err)
	}
	p.SetFrom(entries)
}

func TestLiteLLMFile(t *testing.T) {
	p := NewPricer(nil)
	loadFixture(t, p)
	tests := []struct {
		model string
		want  Rate
		ok    bool
	}{
		{"gpt-4o", Rate{Input: 2_500_000_000, Output: 10_000_000_000, CacheRead: 1_250_000_000, CacheWrite: 2_500_000_000}, true},
		{"azure/gpt-4o", Rate{Input: 2_750_000_000, Output: 11_000_000_000, CacheRead: 1_375_000_000, CacheWrite: 2_750_000_000}, true},
		// anthropic/ stripped, then the date suffix at lookup.
		{"claude-sonnet-4-5", Rate{Input: 3e9, Output: 15e9, CacheRead: 3e8, CacheWrite: 375e7}, true},
		{"deepseek-chat", Rate{Input: 280_000_000, Output: 420_000_000, CacheRead: 28_000_000, CacheWrite: 280_000_000}, true},
		{"kimi-k2", Rate{Input: 600_000_000, Output: 2_500_000_000, CacheRead: 600_000_000, CacheWrite: 600_000_000}, true},
		{"moonshotai/kimi-k2", Rate{Input: 600_000_000, Output: 2_500_000_000, CacheRead: 600_000_000, CacheWrite: 600_000_000}, true},
		{"gemini-2.0-flash-lite-001", Rate{Input: 75_000_000, Output: 300_000_000, CacheRead: 18_750_000, CacheWrite: 75_000_000}, true},
		{"glm-4.6", Rate{Input: 600_000_000, Output: 2_200_000_000, CacheRead: 600_000_000, CacheWrite: 600_000_000}, true},
		{"dall-e-3", Rate{}, false},
		{"sample_spec", Rate{}, false},
	}
	for _, tc := range tests {
		e, ok := p.Lookup("", tc.model)
		if ok != tc.ok || e.Rate != tc.want || (ok && e.Source != SourceFile) {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v, %v (source file)", tc.model, e, ok, tc.want, tc.ok)
		}
	}
	// An unprefixed key beats a stripped one: "gpt-4o" is OpenAI's, not Azure's.
	if e, _ := p.Lookup("", "gpt-4o"); e.Input != 2_500_000_000 {
		t.Errorf("gpt-4o took the Azure price %d", e.Input)
	}
}

func TestLiteLLMNeedsUSD(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "litellm_prices.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePrices(b, SourceFile, "CNY"); err == nil || !strings.Contains(err.Error(), "USD") {
		t.Errorf("LiteLLM prices in a CNY deployment: err = %v, want a currency error", err)
	}
}

func TestYAMLPrices(t *testing.T) {
	in := `currency: CNY
prices:
  qwen-max: {input: 2.4, output: 9.6, cache_read: "0.96"}
  legacy: {input: 1, cached_input: 0.5, output: 2}
upstream_prices:
  bailian:
    qwen-max: {input: 2, output: 8}
`
	entries, err := ParsePrices([]byte(in), SourceFile, "CNY")
	if err != nil {
		t.Fatal(err)
	}
	p := NewPricer(nil)
	p.SetFrom(entries)
	if e, _ := p.Lookup("", "qwen-max"); e.Input != 2_400_000_000 || e.CacheRead != 960_000_000 || e.CacheWrite != 2_400_000_000 {
		t.Errorf("qwen-max = %+v", e)
	}
	if e, _ := p.Lookup("", "legacy"); e.CacheRead != 500_000_000 {
		t.Errorf("cached_input not read as cache_read: %+v", e)
	}
	if e, _ := p.Lookup("bailian", "qwen-max"); e.Input != 2e9 || e.Upstream != "bailian" {
		t.Errorf("upstream price = %+v", e)
	}
	for _, bad := range []string{"currency: USD\nprices: {}\n", "prices:\n  m: {input: -1}\n", "prices:\n  m: {input: x}\n", "nonsense: 1\n"} {
		if _, err := ParsePrices([]byte(bad), SourceFile, "CNY"); err == nil {
			t.Errorf("ParsePrices(%q) accepted", bad)
		}
	}
}

func TestPrecedence(t *testing.T) {
	p := NewPricer(Builtin())
	p.SetFrom([]Entry{{Model: "gpt-4o", Rate: Rate{Input: 2}, Source: SourceFile}})
	if e, _ := p.Lookup("", "gpt-4o"); e.Input != 2 {
		t.Errorf("file did not override builtin: %+v", e)
	}
	list, err := PricesFromModelList("openrouter", []byte(`{"data":[
		{"id":"openai/gpt-4o","pricing":{"prompt":"0.0000025","completion":"0.00001","input_cache_read":"0.00000125"}},
		{"id":"openrouter/auto","pricing":{"prompt":"-1","completion":"-1"}},
		{"id":"meta-llama/llama-3.3-70b-instruct:free","pricing":{"prompt":"0","completion":"0"}},
		{"id":"no-pricing"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("model list entries = %+v, want 2", list)
	}
	p.SetUpstreamList("openrouter", list)
	p.SetOverrides([]Entry{
		{Model: "gpt-4o", Rate: Rate{Input: 3}, Source: SourceOverride},
		{Model: "gpt-4o", Upstream: "cheap", Rate: Rate{Input: 1}, Source: SourceOverride},
	})
	tests := []struct {
		upstream, model string
		input           int64
		source          string
	}{
		{"", "gpt-4o", 3, SourceOverride},
		{"main", "gpt-4o", 3, SourceOverride},
		{"cheap", "gpt-4o", 1, SourceOverride},
		{"openrouter", "openai/gpt-4o", 2_500_000_000, "upstream:openrouter"},
		{"openrouter", "meta-llama/llama-3.3-70b-instruct:free", 0, "upstream:openrouter"},
		{"openrouter", "claude-sonnet-4-6", 3_000_000_000, SourceBuiltin},
	}
	for _, tc := range tests {
		e, ok := p.Lookup(tc.upstream, tc.model)
		if !ok || e.Input != tc.input || e.Source != tc.source {
			t.Errorf("Lookup(%q, %q) = %+v, %v; want input %d from %s", tc.upstream, tc.model, e, ok, tc.input, tc.source)
		}
	}
	if p.Has("", "meta-llama/llama-3.3-70b-instruct:free") || !p.HasAnywhere("meta-llama/llama-3.3-70b-instruct:free") {
		t.Error("an upstream-only price must count for HasAnywhere only")
	}
	if got, _ := p.MaxCost("openai/gpt-4o", Tokens{Prompt: 1_000_000}); got != 2_500_000_000 {
		t.Errorf("MaxCost = %d, want the dearest upstream's", got)
	}
	// Clearing overrides restores the lower layers.
	p.SetOverrides(nil)
	if e, _ := p.Lookup("cheap", "gpt-4o"); e.Input != 2 {
		t.Errorf("after clearing overrides: %+v", e)
	}
	if len(p.Entries()) == 0 {
		t.Error("no entries listed")
	}
}

func FuzzParsePrices(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "litellm_prices.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("prices:\n  m: {input: 1, output: 2}\n"))
	f.Add([]byte(`{"m":{"input_cost_per_token":"1e-999999"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParsePrices(b, SourceFile, "USD")
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Input < 0 || e.Output < 0 || e.CacheRead < 0 || e.CacheWrite < 0 {
				t.Fatalf("negative rate %+v", e)
			}
		}
	})
}
