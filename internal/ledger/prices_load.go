package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PriceSpec is a price as people write it: decimal amounts in the
// deployment currency per 1M tokens, as text (YAML numbers are read as their
// literal text, so 0.0375 is exactly 0.0375, never a float's neighbour).
// An empty CacheRead or CacheWrite means "the input price": no provider
// bills cached tokens at zero, and an omitted field must not make them free.
type PriceSpec struct {
	Input      string `yaml:"input" json:"input"`
	Output     string `yaml:"output" json:"output"`
	CacheRead  string `yaml:"cache_read" json:"cache_read"`
	CacheWrite string `yaml:"cache_write" json:"cache_write"`
	// CachedInput is the older name of CacheRead.
	CachedInput string `yaml:"cached_input" json:"cached_input"`
}

// Rate converts the spec to nano-units per 1M tokens, exactly (an amount
// finer than 1e-9 per 1M tokens is rounded half up).
func (s PriceSpec) Rate() (Rate, error) {
	const scale = 1_000_000_000 // amount per 1M → nano-units per 1M
	var r Rate
	var err error
	if r.Input, err = parseAmount(s.Input, scale); err != nil {
		return r, fmt.Errorf("input: %w", err)
	}
	if r.Output, err = parseAmount(s.Output, scale); err != nil {
		return r, fmt.Errorf("output: %w", err)
	}
	read := cmpOr(s.CacheRead, s.CachedInput)
	r.CacheRead, r.CacheWrite = r.Input, r.Input
	if read != "" {
		if r.CacheRead, err = parseAmount(read, scale); err != nil {
			return r, fmt.Errorf("cache_read: %w", err)
		}
	}
	if s.CacheWrite != "" {
		if r.CacheWrite, err = parseAmount(s.CacheWrite, scale); err != nil {
			return r, fmt.Errorf("cache_write: %w", err)
		}
	}
	return r, nil
}

func cmpOr(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}

// maxAmount bounds a parsed amount so that no rate times a plausible token
// count comes near overflow: 1e15 nano-units per 1M tokens is $1M per 1M.
const maxAmount = 1e15

// parseAmount parses a non-negative decimal ("3", "0.0375", "1.875e-08",
// "$2.50") and returns it times scale, rounded half up. Empty is 0.
func parseAmount(s string, scale int64) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "$")
	if s == "" {
		return 0, nil
	}
	if strings.ContainsAny(s, "/") || len(s) > 64 {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	var r big.Rat
	if _, ok := r.SetString(s); !ok {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	r.Mul(&r, new(big.Rat).SetInt64(scale))
	// Round half up: floor(r + 1/2).
	r.Add(&r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if !q.IsInt64() || q.Int64() > maxAmount {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return q.Int64(), nil
}

// PricesFile is our own price file format (YAML, or the same as JSON).
// Prices are per 1M tokens in Currency (the deployment currency when empty).
//
//	currency: USD
//	prices:
//	  gpt-4o: {input: 2.50, cache_read: 1.25, output: 10}
//	upstream_prices:
//	  openrouter:
//	    anthropic/claude-sonnet-4.5: {input: 3, output: 15}
type PricesFile struct {
	Currency       string                          `yaml:"currency" json:"currency"`
	Prices         map[string]PriceSpec            `yaml:"prices" json:"prices"`
	UpstreamPrices map[string]map[string]PriceSpec `yaml:"upstream_prices" json:"upstream_prices"`
}

// Entries converts the file's prices, tagged with source.
func (f PricesFile) Entries(source string) ([]Entry, error) {
	var out []Entry
	add := func(up, model string, s PriceSpec) error {
		r, err := s.Rate()
		if err != nil {
			if up != "" {
				return fmt.Errorf("price of %q at %q: %w", model, up, err)
			}
			return fmt.Errorf("price of %q: %w", model, err)
		}
		out = append(out, Entry{Model: model, Upstream: up, Rate: r, Source: source})
		return nil
	}
	for _, m := range sortedKeys(f.Prices) {
		if err := add("", m, f.Prices[m]); err != nil {
			return nil, err
		}
	}
	for _, up := range sortedKeys(f.UpstreamPrices) {
		for _, m := range sortedKeys(f.UpstreamPrices[up]) {
			if err := add(up, m, f.UpstreamPrices[up][m]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ParsePrices reads a price file in either format, told apart by content:
// LiteLLM's model_prices_and_context_window.json (a JSON object whose
// entries carry input_cost_per_token / output_cost_per_token; prices in
// USD per token) or a PricesFile. currency is the deployment's: a file in
// another currency is refused rather than silently mispriced.
func ParsePrices(b []byte, source, currency string) ([]Entry, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' && isLiteLLM(b) {
		if !strings.EqualFold(currency, BuiltinCurrency) {
			return nil, fmt.Errorf("LiteLLM prices are in %s, but the deployment currency is %s", BuiltinCurrency, currency)
		}
		return parseLiteLLM(b, source)
	}
	var f PricesFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("neither LiteLLM JSON nor a tollgate price file: %s", strings.Join(strings.Fields(err.Error()), " "))
	}
	if f.Currency != "" && !strings.EqualFold(f.Currency, currency) {
		return nil, fmt.Errorf("prices are in %s, but the deployment currency is %s", f.Currency, currency)
	}
	return f.Entries(source)
}

// litellmModel is the part of a LiteLLM entry we read. json.Number keeps the
// literal text, so 1.875e-08 is parsed exactly.
type litellmModel struct {
	Input      json.Number `json:"input_cost_per_token"`
	Output     json.Number `json:"output_cost_per_token"`
	CacheRead  json.Number `json:"cache_read_input_token_cost"`
	CacheWrite json.Number `json:"cache_creation_input_token_cost"`
}

func isLiteLLM(b []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return false
	}
	for k, v := range top {
		if k != "sample_spec" && (bytes.Contains(v, []byte(`"input_cost_per_token"`)) || bytes.Contains(v, []byte(`"output_cost_per_token"`))) {
			return true
		}
	}
	return false
}

// nativePrefixes are LiteLLM key prefixes of the model makers' own APIs:
// their prices are the list prices of the bare model id. Cloud resellers
// (azure/, bedrock/, vertex_ai/, ...) are kept under their full key only,
// since their prices differ by region and contract.
var nativePrefixes = []string{"openai/", "anthropic/", "deepseek/", "gemini/", "xai/", "mistral/",
	"moonshot/", "dashscope/", "zai/", "groq/"}

// litellmNames returns the ids a LiteLLM key is known by, with a rank per
// id: 0 the key itself, 1 a maker's prefix stripped, 2 an OpenRouter path
// stripped, 3 any of those without a date suffix. For each id the lowest
// rank wins.
func litellmNames(key string) []struct {
	id   string
	rank int
} {
	type n = struct {
		id   string
		rank int
	}
	out := []n{{key, 0}}
	for _, p := range nativePrefixes {
		if rest, ok := strings.CutPrefix(key, p); ok && rest != "" {
			out = append(out, n{rest, 1})
			break
		}
	}
	if rest, ok := strings.CutPrefix(key, "openrouter/"); ok && strings.Contains(rest, "/") {
		out = append(out, n{rest, 2})
		if i := strings.LastIndexByte(rest, '/'); i+1 < len(rest) {
			out = append(out, n{rest[i+1:], 2})
		}
	}
	for _, x := range out {
		if base, ok := trimDateSuffix(x.id); ok {
			out = append(out, n{base, 3})
		}
	}
	return out
}

func parseLiteLLM(b []byte, source string) ([]Entry, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("LiteLLM prices: %w", err)
	}
	type best struct {
		e    Entry
		rank int
	}
	byID := map[string]best{}
	for _, key := range sortedKeys(top) {
		if key == "sample_spec" {
			continue
		}
		var m litellmModel
		if json.Unmarshal(top[key], &m) != nil || (m.Input == "" && m.Output == "") {
			continue // not a priced model (image, audio, ...) or not an object: skip, do not fail the file
		}
		r, err := litellmRate(m)
		if err != nil {
			continue
		}
		for _, n := range litellmNames(strings.ToLower(key)) {
			if cur, ok := byID[n.id]; ok && cur.rank <= n.rank {
				continue
			}
			byID[n.id] = best{Entry{Model: n.id, Rate: r, Source: source}, n.rank}
		}
	}
	out := make([]Entry, 0, len(byID))
	for _, id := range sortedKeys(byID) {
		out = append(out, byID[id].e)
	}
	if len(out) == 0 {
		return nil, errors.New("LiteLLM prices: no priced model found")
	}
	return out, nil
}

// perTokenScale turns USD per token into nano-units per 1M tokens.
const perTokenScale = 1_000_000_000_000_000

func litellmRate(m litellmModel) (Rate, error) {
	var r Rate
	var err error
	if r.Input, err = parseAmount(m.Input.String(), perTokenScale); err != nil {
		return r, err
	}
	if r.Output, err = parseAmount(m.Output.String(), perTokenScale); err != nil {
		return r, err
	}
	r.CacheRead, r.CacheWrite = r.Input, r.Input
	if m.CacheRead != "" {
		if r.CacheRead, err = parseAmount(m.CacheRead.String(), perTokenScale); err != nil {
			return r, err
		}
	}
	if m.CacheWrite != "" {
		if r.CacheWrite, err = parseAmount(m.CacheWrite.String(), perTokenScale); err != nil {
			return r, err
		}
	}
	return r, nil
}

// PricesFromModelList reads OpenRouter-style pricing from an upstream's
// /v1/models answer: {"data":[{"id":..,"pricing":{"prompt":"0.000003",
// "completion":"0.000015","input_cache_read":..,"input_cache_write":..}}]},
// amounts in USD per token. Models without pricing, or with a negative
// ("variable") price, are left out. The entries apply at upstream only.
func PricesFromModelList(upstream string, body []byte) ([]Entry, error) {
	var list struct {
		Data []struct {
			ID      string `json:"id"`
			Pricing *struct {
				Prompt     json.Number `json:"prompt"`
				Completion json.Number `json:"completion"`
				CacheRead  json.Number `json:"input_cache_read"`
				CacheWrite json.Number `json:"input_cache_write"`
			} `json:"pricing"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("model list of %s: %w", upstream, err)
	}
	var out []Entry
	for _, m := range list.Data {
		if m.ID == "" || m.Pricing == nil || (m.Pricing.Prompt == "" && m.Pricing.Completion == "") {
			continue
		}
		p := m.Pricing
		r, err := litellmRate(litellmModel{Input: p.Prompt, Output: p.Completion, CacheRead: p.CacheRead, CacheWrite: p.CacheWrite})
		if err != nil {
			continue // "-1": priced per request by the router; unknown per token
		}
		out = append(out, Entry{Model: m.ID, Upstream: upstream, Rate: r, Source: SourceUpstreamPrefix + upstream})
	}
	return out, nil
}
