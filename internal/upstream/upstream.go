// Package upstream chooses where a request goes: it holds the configured
// OpenAI-compatible upstreams, expands model aliases, orders the candidate
// upstreams for a model by a routing strategy (priority, weighted,
// lowest_latency, lowest_cost, least_busy), and tracks each upstream's health
// and each (upstream, model) pair's health with circuit breakers, 429
// cool-downs, a max_parallel limit and latency averages.
//
// The proxy's attempt loop uses it like this:
//
//	plan, err := pool.Plan(model) // ordered candidates, or ErrNoUpstream; one plan per request
//	for _, t := range plan {
//		att, err := t.Acquire(ctx, wait) // ErrCircuitOpen, ErrCoolingDown, ErrSaturated: next candidate
//		... send t.Model to t.Upstream.URL(path) with t.Upstream.SetHeaders ...
//		att.Done(upstream.Result{Status: code, Err: err, TTFB: ttfb, RetryAfter: ra})
//	}
//
// Health is kept per (upstream, model) pair: one failing model never takes
// the others down. See Classify for what counts, and docs/health.md.
//
// The package does no I/O of its own and starts no goroutines.
package upstream

import (
	"net/http"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// Upstream is one configured upstream. It is safe for concurrent use; its
// configuration is immutable and its health lives in a shared state object
// that survives config reloads.
type Upstream struct {
	name        string
	baseURL     string // without trailing slashes
	auth        string // "Bearer <key>", or "" for none
	headers     []header
	secrets     []string // values scrubbed from error text
	models      []string // globs as configured; never empty
	modelMap    map[string]string
	prices      map[string]float64 // nano-USD per 1M tokens, by model as sent
	priceFactor float64
	weight      float64
	maxParallel int
	timeout     time.Duration
	api         string // APIOpenAI or APIAnthropic
	native      bool   // serves /v1/responses itself

	env *env
	h   *health
}

type header struct{ key, value string }

func newUpstream(c Config, e *env, h *health) *Upstream {
	u := &Upstream{
		name:        c.Name,
		baseURL:     strings.TrimRight(c.BaseURL, "/"),
		models:      c.Models,
		modelMap:    c.ModelMap,
		priceFactor: c.PriceFactor,
		weight:      float64(c.Weight),
		maxParallel: c.MaxParallel,
		timeout:     c.Timeout,
		api:         c.API,
		native:      c.Responses == "native",
		env:         e,
		h:           h,
	}
	if len(u.models) == 0 {
		u.models = []string{"*"}
	}
	if u.api == "" {
		u.api = APIOpenAI
	}
	if u.weight == 0 {
		u.weight = 1
	}
	if u.priceFactor == 0 {
		u.priceFactor = 1
	}
	if c.APIKey != "" {
		u.auth = "Bearer " + c.APIKey
		u.secrets = append(u.secrets, c.APIKey)
	}
	for k, v := range c.Headers {
		u.headers = append(u.headers, header{textproto.CanonicalMIMEHeaderKey(k), v})
		// Short values (e.g. "1") would scrub innocent text; real secrets are long.
		if len(v) >= 8 {
			u.secrets = append(u.secrets, v)
		}
	}
	if len(c.Prices) > 0 {
		u.prices = make(map[string]float64, len(c.Prices))
		for m, usd := range c.Prices {
			u.prices[m] = usd * 1e9
		}
	}
	return u
}

// Name returns the upstream's configured name.
func (u *Upstream) Name() string { return u.name }

// BaseURL returns the configured base URL without trailing slashes. It never
// holds credentials (NewPool rejects them).
func (u *Upstream) BaseURL() string { return u.baseURL }

// Weight returns the effective weight (at least 1).
func (u *Upstream) Weight() int { return int(u.weight) }

// MaxParallel returns the in-flight cap; 0 means unlimited.
func (u *Upstream) MaxParallel() int { return u.maxParallel }

// URL returns the upstream URL for an API path such as "/chat/completions"
// (the part after /v1 in the client's request). Exactly one slash joins base
// and path whatever either carries.
func (u *Upstream) URL(path string) string {
	return u.baseURL + "/" + strings.TrimLeft(path, "/")
}

// SetHeaders sets the upstream's credentials and configured headers on an
// outgoing request: "Authorization: Bearer <api_key>" when a key is set, then
// each configured header (which may replace Authorization; an empty value
// removes the header). It does not
// remove the client's headers; the caller strips those first.
func (u *Upstream) SetHeaders(h http.Header) {
	switch {
	case u.auth == "":
	case u.api == APIAnthropic: // Anthropic's API takes the key as x-api-key
		h["X-Api-Key"] = []string{strings.TrimPrefix(u.auth, "Bearer ")}
	default:
		h["Authorization"] = []string{u.auth}
	}
	for _, kv := range u.headers {
		if kv.value == "" {
			delete(h, kv.key)
			continue
		}
		h[kv.key] = []string{kv.value}
	}
}

// API returns the wire format the upstream speaks: APIOpenAI or
// APIAnthropic.
func (u *Upstream) API() string { return u.api }

// NativeResponses reports whether the upstream serves the OpenAI Responses
// API itself (responses: native), so /v1/responses is passed through.
func (u *Upstream) NativeResponses() bool { return u.native }

// Timeout returns the per-attempt time-to-first-byte limit; 0 means none
// beyond the request's own deadline.
func (u *Upstream) Timeout() time.Duration { return u.timeout }

// serves reports whether u serves model (as the client or alias named it).
func (u *Upstream) serves(model string) bool {
	for _, g := range u.models {
		if g == model || (isGlob(g) && matchGlob(g, model)) {
			return true
		}
	}
	return false
}

// mapModel returns the model id to send upstream.
func (u *Upstream) mapModel(model string) string {
	if m, ok := u.modelMap[model]; ok {
		return m
	}
	return model
}

// price returns the price of model (as sent) on u in nano-USD per million
// tokens, or +Inf when unknown, so unpriced upstreams sort last.
func (u *Upstream) price(model string) float64 {
	if p, ok := u.prices[model]; ok {
		return p
	}
	if u.env.price != nil {
		if p, ok := u.env.price(model); ok {
			return float64(p) * u.priceFactor
		}
	}
	return inf
}

// scrub removes secrets from s and bounds its length, for last_error.
func (u *Upstream) scrub(s string) string {
	for _, sec := range u.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	const maxLen = 300
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
