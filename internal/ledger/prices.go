package ledger

import (
	"fmt"
	"math"
	"strings"
)

// Price is what one token costs, in nano-USD (1e-9 USD) per token, so that
// cost is exact integer math. A list price of $X per 1M tokens is X*1000
// nano-USD per token: $2.50/1M = 2500, $0.15/1M = 150.
type Price struct {
	InputNano       int64 // uncached prompt tokens
	CachedInputNano int64 // prompt tokens served from the provider's prompt cache
	OutputNano      int64 // completion tokens, reasoning included
}

// PriceUSD is a price as configured: USD per 1M tokens.
type PriceUSD struct {
	Input float64 `yaml:"input" json:"input"`
	// CachedInput of 0 means "same as Input": no provider bills cached
	// tokens at zero, and an omitted YAML field must not make them free.
	CachedInput float64 `yaml:"cached_input" json:"cached_input"`
	Output      float64 `yaml:"output" json:"output"`
}

// Tokens are the counts a price applies to.
type Tokens struct {
	Prompt     int64 // all prompt tokens, cached included
	Completion int64 // all completion tokens, reasoning included
	Cached     int64 // part of Prompt read from the prompt cache
	Reasoning  int64 // part of Completion; informational, billed as output
}

// Prices is an immutable model → price table, safe for concurrent use.
type Prices struct {
	m map[string]Price
}

// builtinPrices are list prices (USD per 1M tokens: input, cached input,
// output) as we know them; they change, so every entry can be overridden
// (or new models added) with NewPrices.
func builtinPrices() map[string]PriceUSD {
	return map[string]PriceUSD{
		// Anthropic
		"claude-sonnet-4-6": {3, 0.30, 15},
		"claude-sonnet-4-5": {3, 0.30, 15},
		"claude-opus-4-1":   {15, 1.50, 75},
		"claude-haiku-4-5":  {1, 0.10, 5},
		// OpenAI
		"gpt-4o":                 {2.50, 1.25, 10},
		"gpt-4o-mini":            {0.15, 0.075, 0.60},
		"gpt-4.1":                {2, 0.50, 8},
		"gpt-4.1-mini":           {0.40, 0.10, 1.60},
		"gpt-4.1-nano":           {0.10, 0.025, 0.40},
		"gpt-5":                  {1.25, 0.125, 10},
		"gpt-5-mini":             {0.25, 0.025, 2},
		"o3-mini":                {1.10, 0.55, 4.40},
		"o4-mini":                {1.10, 0.275, 4.40},
		"text-embedding-3-small": {0.02, 0, 0},
		"text-embedding-3-large": {0.13, 0, 0},
		// Alibaba Qwen (international list prices)
		"qwen-plus":  {0.40, 0, 1.20},
		"qwen-turbo": {0.05, 0, 0.20},
		"qwen-max":   {1.60, 0, 6.40},
		// DeepSeek
		"deepseek-chat":     {0.28, 0.028, 0.42},
		"deepseek-reasoner": {0.28, 0.028, 0.42},
		// Google
		"gemini-2.5-pro":   {1.25, 0.125, 10},
		"gemini-2.5-flash": {0.30, 0.03, 2.50},
	}
}

// NewPrices returns the built-in table with overrides applied (an override
// replaces the whole entry). Keys are matched case-insensitively.
func NewPrices(overrides map[string]PriceUSD) (*Prices, error) {
	p := &Prices{m: make(map[string]Price)}
	for name, u := range builtinPrices() {
		p.m[name] = u.nano()
	}
	for name, u := range overrides {
		if u.Input < 0 || u.CachedInput < 0 || u.Output < 0 || math.IsNaN(u.Input+u.CachedInput+u.Output) ||
			math.IsInf(u.Input+u.CachedInput+u.Output, 0) {
			return nil, fmt.Errorf("ledger: price of %q: negative or not a number", name)
		}
		p.m[strings.ToLower(name)] = u.nano()
	}
	return p, nil
}

// usdPerMillionToNano converts USD per 1M tokens to nano-USD per token,
// rounding half up to the nearest integer. The epsilon absorbs binary
// floating point error so that e.g. 0.0375 ($/1M) becomes 38, not 37.
func usdPerMillionToNano(usd float64) int64 {
	return int64(math.Floor(usd*1000 + 0.5 + 1e-9))
}

func (u PriceUSD) nano() Price {
	cached := u.CachedInput
	if cached == 0 {
		cached = u.Input
	}
	return Price{
		InputNano:       usdPerMillionToNano(u.Input),
		CachedInputNano: usdPerMillionToNano(cached),
		OutputNano:      usdPerMillionToNano(u.Output),
	}
}

// trimDateSuffix strips the snapshot suffix of dated model names
// ("gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022").
func trimDateSuffix(m string) (string, bool) {
	digits := func(s string) bool {
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	if n := len(m); n > 11 && m[n-11] == '-' && m[n-6] == '-' && m[n-3] == '-' &&
		digits(m[n-10:n-6]) && digits(m[n-5:n-3]) && digits(m[n-2:]) {
		return m[:n-11], true
	}
	if n := len(m); n > 9 && m[n-9] == '-' && digits(m[n-8:]) {
		return m[:n-9], true
	}
	return m, false
}

// Lookup finds the price of model: an exact (case-insensitive) match first,
// then without a vendor prefix ("openai/gpt-4o" → "gpt-4o"), then without a
// date snapshot suffix.
func (p *Prices) Lookup(model string) (Price, bool) {
	m := strings.ToLower(strings.TrimSpace(model))
	if pr, ok := p.m[m]; ok {
		return pr, true
	}
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
		if pr, ok := p.m[m]; ok {
			return pr, true
		}
	}
	if base, ok := trimDateSuffix(m); ok {
		if pr, ok := p.m[base]; ok {
			return pr, true
		}
	}
	return Price{}, false
}

// Cost returns the cost of u on model in nano-USD: cached prompt tokens at
// the cached price, the rest of the prompt at the input price, completion
// (reasoning included) at the output price. priced is false for a model
// with no price; nano is then 0, meaning unknown, not free.
func (p *Prices) Cost(model string, u Tokens) (nano int64, priced bool) {
	pr, ok := p.Lookup(model)
	if !ok {
		return 0, false
	}
	cached := min(max(u.Cached, 0), max(u.Prompt, 0))
	uncached := max(u.Prompt, 0) - cached
	return uncached*pr.InputNano + cached*pr.CachedInputNano + max(u.Completion, 0)*pr.OutputNano, true
}
