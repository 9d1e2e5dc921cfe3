package ledger

// BuiltinCurrency is the currency of the built-in table, LiteLLM's file and
// OpenRouter-style model lists: all are list prices in US dollars.
const BuiltinCurrency = "USD"

// builtinRows are public list prices in USD per 1M tokens: input, cache
// read, cache write, output ("" = the input price). They are the providers'
// own published prices for their first-party APIs, at the base tier (for
// tiered models such as Gemini 2.5 Pro: prompts up to 200K tokens; for
// Anthropic: 5-minute cache writes at 1.25x input). They drift: load
// current ones with prices_from, or override any entry in the config.
var builtinRows = [][5]string{
	// Anthropic (anthropic.com/pricing)
	{"claude-opus-4-6", "5", "0.50", "6.25", "25"},
	{"claude-opus-4-5", "5", "0.50", "6.25", "25"},
	{"claude-opus-4-1", "15", "1.50", "18.75", "75"},
	{"claude-opus-4", "15", "1.50", "18.75", "75"},
	{"claude-sonnet-4-6", "3", "0.30", "3.75", "15"},
	{"claude-sonnet-4-5", "3", "0.30", "3.75", "15"},
	{"claude-sonnet-4", "3", "0.30", "3.75", "15"},
	{"claude-3-7-sonnet", "3", "0.30", "3.75", "15"},
	{"claude-3-5-sonnet", "3", "0.30", "3.75", "15"},
	{"claude-haiku-4-5", "1", "0.10", "1.25", "5"},
	{"claude-3-5-haiku", "0.80", "0.08", "1", "4"},
	// OpenAI (openai.com/api/pricing); cache writes are not billed apart.
	{"gpt-4o", "2.50", "1.25", "", "10"},
	{"gpt-4o-mini", "0.15", "0.075", "", "0.60"},
	{"gpt-4.1", "2", "0.50", "", "8"},
	{"gpt-4.1-mini", "0.40", "0.10", "", "1.60"},
	{"gpt-4.1-nano", "0.10", "0.025", "", "0.40"},
	{"gpt-5", "1.25", "0.125", "", "10"},
	{"gpt-5.1", "1.25", "0.125", "", "10"},
	{"gpt-5-mini", "0.25", "0.025", "", "2"},
	{"gpt-5-nano", "0.05", "0.005", "", "0.40"},
	{"o3", "2", "0.50", "", "8"},
	{"o3-mini", "1.10", "0.55", "", "4.40"},
	{"o4-mini", "1.10", "0.275", "", "4.40"},
	{"text-embedding-3-small", "0.02", "", "", "0"},
	{"text-embedding-3-large", "0.13", "", "", "0"},
	// DeepSeek (api-docs.deepseek.com/quick_start/pricing): the current
	// API models (V3.2) and the older V3 and R1 list prices under the names
	// aggregators sell them as.
	{"deepseek-chat", "0.28", "0.028", "", "0.42"},
	{"deepseek-reasoner", "0.28", "0.028", "", "0.42"},
	{"deepseek-v3", "0.27", "0.07", "", "1.10"},
	{"deepseek-r1", "0.55", "0.14", "", "2.19"},
	// Alibaba Qwen, international (Model Studio, Singapore) list prices.
	{"qwen-max", "1.60", "", "", "6.40"},
	{"qwen-plus", "0.40", "", "", "1.20"},
	{"qwen-turbo", "0.05", "", "", "0.20"},
	// Zhipu GLM (z.ai/pricing)
	{"glm-4.6", "0.60", "0.11", "", "2.20"},
	{"glm-4.5", "0.60", "0.11", "", "2.20"},
	{"glm-4.5-air", "0.20", "0.03", "", "1.10"},
	// Moonshot Kimi (platform.moonshot.ai)
	{"kimi-k2", "0.60", "0.15", "", "2.50"},
	{"kimi-k2-0905-preview", "0.60", "0.15", "", "2.50"},
	{"kimi-k2-thinking", "0.60", "0.15", "", "2.50"},
	// Google Gemini (ai.google.dev/pricing), prompts up to 200K tokens.
	{"gemini-2.5-pro", "1.25", "0.125", "", "10"},
	{"gemini-2.5-flash", "0.30", "0.03", "", "2.50"},
	{"gemini-2.5-flash-lite", "0.10", "0.01", "", "0.40"},
}

// Builtin returns the built-in price table (in BuiltinCurrency).
func Builtin() []Entry {
	out := make([]Entry, 0, len(builtinRows))
	for _, r := range builtinRows {
		spec := PriceSpec{Input: r[1], CacheRead: r[2], CacheWrite: r[3], Output: r[4]}
		rate, err := spec.Rate()
		if err != nil {
			panic("ledger: bad built-in price of " + r[0] + ": " + err.Error()) // a test covers every row
		}
		out = append(out, Entry{Model: r[0], Rate: rate, Source: SourceBuiltin})
	}
	return out
}
