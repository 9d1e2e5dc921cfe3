package upstream

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
)

// Config is one upstream as written in YAML. Its field comments are the user
// documentation.
type Config struct {
	// Name identifies the upstream in logs, metrics, the admin API and usage
	// records. Required, unique, no whitespace. Health state survives a config
	// reload for an upstream that keeps its name and base_url.
	Name string `yaml:"name"`
	// BaseURL is the OpenAI-compatible API root, e.g. https://taotoken.net/api
	// or https://api.openai.com/v1. The request URL is BaseURL followed by the
	// path after /v1 (BaseURL + "/chat/completions"). Required; absolute http or
	// https; must not carry credentials (use api_key or headers).
	BaseURL string `yaml:"base_url"`
	// APIKey is sent as "Authorization: Bearer <api_key>". Empty sends no
	// Authorization header (a local vLLM or Ollama). Never logged or shown.
	APIKey string `yaml:"api_key"`
	// Models lists the model ids this upstream serves, as clients name them
	// (before model_map). Entries may be globs: '*' matches any run of
	// characters including '/', '?' one character. Empty means ["*"]: every
	// model.
	Models []string `yaml:"models"`
	// Weight is the relative share of traffic under the weighted strategy and
	// the tie-breaker under the others. 0 or unset means 1; negative is an
	// error. To keep an upstream as a pure fallback use the priority strategy
	// or an alias.
	Weight int `yaml:"weight"`
	// MaxParallel caps the attempts in flight to this upstream at once
	// (streams count until they end). 0 means unlimited. When full, the
	// router prefers other upstreams and the attempt waits briefly for a slot.
	MaxParallel int `yaml:"max_parallel"`
	// Timeout bounds one attempt until the response headers arrive (time to
	// first byte), e.g. 30s. 0 means only the request's own deadline applies.
	// A streaming body is not cut by it.
	Timeout time.Duration `yaml:"timeout"`
	// Headers are extra request headers sent to this upstream, e.g.
	// HTTP-Referer for OpenRouter or api-key for Azure. They are applied after
	// Authorization, so they may replace it; an empty value removes the
	// header (e.g. Authorization: "" when the key goes in api-key). Values
	// are treated as secrets.
	Headers map[string]string `yaml:"headers"`
	// ModelMap renames models for this upstream: the key is the model id the
	// client asked for (or the alias target), the value the id sent upstream,
	// e.g. {"gpt-4o": "openai/gpt-4o"}. Unmapped models are sent unchanged.
	ModelMap map[string]string `yaml:"model_map"`
	// Prices overrides, for the lowest_cost strategy, the price of a model on
	// this upstream: model id as sent upstream (after model_map) to USD per
	// million tokens. Models not listed use the gateway's price list times
	// price_factor.
	Prices map[string]float64 `yaml:"prices"`
	// PriceFactor scales the gateway's price list for this upstream under
	// lowest_cost, e.g. 0.8 for a 20% discount or 1.05 for a 5% fee. 0 or
	// unset means 1; negative is an error.
	PriceFactor float64 `yaml:"price_factor"`
	// API is the wire format the upstream speaks: "openai" (default; chat
	// completions and the rest of /v1) or "anthropic" (the Messages API).
	API string `yaml:"api"`
	// Responses is "native" when the upstream serves the OpenAI Responses
	// API (/v1/responses) itself, so requests to it are passed through;
	// empty means the gateway bridges Responses requests to chat
	// completions.
	Responses string `yaml:"responses"`
}

// Upstream wire formats accepted in Config.API.
const (
	APIOpenAI    = "openai"
	APIAnthropic = "anthropic"
)

// String describes c without its API key or header values, so that printing
// a Config by accident leaks no secret.
func (c Config) String() string {
	return fmt.Sprintf("upstream %q (%s, models %v)", c.Name, c.BaseURL, c.Models)
}

// GoString is like String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the API key or header values.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("base_url", c.BaseURL),
		slog.Any("models", c.Models),
	)
}

// Alias is a virtual model name that expands to real models, tried in order:
// the first target's upstreams, then the second target's, and so on.
type Alias struct {
	// Targets are model ids (never other aliases), in fallback order.
	// Required, non-empty; each must be served by at least one upstream.
	Targets []string `yaml:"targets"`
	// Strategy orders the upstreams serving each target; empty means the
	// routing strategy.
	Strategy string `yaml:"strategy"`
}

// Routing is the default upstream selection.
type Routing struct {
	// Strategy orders the upstreams that serve a model: priority (config
	// order), weighted (random by weight; default), lowest_latency (smallest
	// moving average of time to first byte, exploring 10% of the time),
	// lowest_cost (cheapest price for the model as sent) or least_busy (fewest
	// attempts in flight). Ties go by weight.
	Strategy string `yaml:"strategy"`
	// Fallback lets a request move on to the next candidate when an attempt
	// fails before any byte reached the client. Default true; false plans a
	// single candidate.
	Fallback *bool `yaml:"fallback"`
}

// BreakerOptions tunes the circuit breakers. Each (upstream, model) pair
// has one: a model that keeps failing on an upstream is skipped there for
// CoolDown (while a healthy alternative exists); then single probe requests
// are let through one at a time until one succeeds (closing the circuit) or
// fails (opening it for another CoolDown). A failure is a timeout or reset
// before the response headers, another transport error, or HTTP 500, 502,
// 503, 504 or 408; other 4xx are the client's fault, and a 429 cools the
// pair down for its Retry-After instead. Each client request counts once
// per pair, however often it is retried. The upstream as a whole has a
// breaker too, opened by ConsecutiveFailures connect or TLS errors (or
// resets before headers across several models) and closed by any answer.
type BreakerOptions struct {
	// ConsecutiveFailures opens the circuit after this many failures in a
	// row. Default 5; negative disables this trigger.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// FailureRatio opens the circuit when at least this share of the attempts
	// in Window failed (and there were at least MinRequests). Default 0.5;
	// negative disables this trigger; at most 1.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests is the number of attempts in Window below which
	// FailureRatio is not judged. Default 20.
	MinRequests int `yaml:"min_requests"`
	// Window is the sliding window for FailureRatio. Default 30s.
	Window time.Duration `yaml:"window"`
	// CoolDown is how long an open circuit rejects attempts before probing.
	// Default 30s.
	CoolDown time.Duration `yaml:"cool_down"`
}

// Options configures a Pool.
type Options struct {
	// Upstreams are the upstreams in config order (the priority order).
	Upstreams []Config
	// Aliases maps alias names to their targets. An alias shadows an
	// upstream model of the same name, so {"gpt-4o": {targets: [gpt-4o,
	// gpt-4o-mini]}} adds a fallback model to gpt-4o.
	Aliases map[string]Alias
	// Routing is the default strategy and fallback switch.
	Routing Routing
	// Price returns the gateway's price of a model in nano-USD per million
	// tokens, for lowest_cost. May be nil: then only per-upstream prices
	// count and unpriced upstreams sort last.
	Price func(model string) (nanoPerMillionTokens int64, ok bool)
	// Breaker tunes circuit breaking; zero fields take their defaults.
	Breaker BreakerOptions
	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
	// Rand returns a float64 in [0, 1); nil means math/rand/v2.Float64. It
	// must be safe for concurrent use.
	Rand func() float64
	// Logger receives circuit state changes; nil discards them.
	Logger *slog.Logger
	// OnStateChange, if set, is called after an upstream's circuit changes
	// state (e.g. to count transitions in metrics). It must not block and
	// must not call back into the Pool.
	OnStateChange func(upstream string, from, to State)
}

// Strategy names accepted in Routing.Strategy and Alias.Strategy.
const (
	StrategyPriority      = "priority"
	StrategyWeighted      = "weighted"
	StrategyLowestLatency = "lowest_latency"
	StrategyLowestCost    = "lowest_cost"
	StrategyLeastBusy     = "least_busy"
)

// strategy is the parsed form of a strategy name.
type strategy uint8

const (
	stratWeighted strategy = iota
	stratPriority
	stratLowestLatency
	stratLowestCost
	stratLeastBusy
)

func parseStrategy(s string) (strategy, error) {
	switch s {
	case "", StrategyWeighted:
		return stratWeighted, nil
	case StrategyPriority:
		return stratPriority, nil
	case StrategyLowestLatency:
		return stratLowestLatency, nil
	case StrategyLowestCost:
		return stratLowestCost, nil
	case StrategyLeastBusy:
		return stratLeastBusy, nil
	}
	return 0, fmt.Errorf("unknown strategy %q (want priority, weighted, lowest_latency, lowest_cost or least_busy)", s)
}

// withDefaults fills zero fields with their defaults and checks ranges.
func (b BreakerOptions) withDefaults() (BreakerOptions, error) {
	if b.ConsecutiveFailures == 0 {
		b.ConsecutiveFailures = 5
	}
	if b.FailureRatio == 0 {
		b.FailureRatio = 0.5
	}
	if b.MinRequests == 0 {
		b.MinRequests = 20
	}
	if b.Window == 0 {
		b.Window = 30 * time.Second
	}
	if b.CoolDown == 0 {
		b.CoolDown = 30 * time.Second
	}
	switch {
	case b.FailureRatio > 1 || math.IsNaN(b.FailureRatio):
		return b, fmt.Errorf("breaker: failure_ratio %v must be at most 1", b.FailureRatio)
	case b.MinRequests < 0:
		return b, fmt.Errorf("breaker: min_requests %d must not be negative", b.MinRequests)
	case b.Window < 0:
		return b, fmt.Errorf("breaker: window %v must not be negative", b.Window)
	case b.CoolDown < 0:
		return b, fmt.Errorf("breaker: cool_down %v must not be negative", b.CoolDown)
	}
	return b, nil
}

// validateConfig checks one upstream. Messages never include the API key or
// header values.
func validateConfig(i int, c *Config) error {
	if c.Name == "" {
		return fmt.Errorf("upstreams[%d]: name is required", i)
	}
	if strings.IndexFunc(c.Name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return fmt.Errorf("upstreams[%d]: name %q must not contain spaces or control characters", i, c.Name)
	}
	where := fmt.Sprintf("upstream %q", c.Name)
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Don't echo a URL we could not parse: it may hold a secret.
		return fmt.Errorf("%s: base_url must be an absolute http(s) URL such as https://taotoken.net/api", where)
	}
	if u.User != nil {
		return fmt.Errorf("%s: base_url must not contain credentials; use api_key or headers", where)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s: base_url %q must not have a query or fragment", where, u.Redacted())
	}
	if c.Weight < 0 {
		return fmt.Errorf("%s: weight %d must not be negative", where, c.Weight)
	}
	if c.MaxParallel < 0 {
		return fmt.Errorf("%s: max_parallel %d must not be negative", where, c.MaxParallel)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%s: timeout %v must not be negative", where, c.Timeout)
	}
	switch c.API {
	case "", APIOpenAI, APIAnthropic:
	default:
		return fmt.Errorf("%s: api %q: want openai or anthropic", where, c.API)
	}
	if c.Responses != "" && c.Responses != "native" {
		return fmt.Errorf("%s: responses %q: want native or empty", where, c.Responses)
	}
	if c.PriceFactor < 0 || math.IsNaN(c.PriceFactor) {
		return fmt.Errorf("%s: price_factor %v must not be negative", where, c.PriceFactor)
	}
	for _, m := range c.Models {
		if strings.TrimSpace(m) == "" {
			return fmt.Errorf("%s: models must not contain an empty entry", where)
		}
	}
	for k, v := range c.ModelMap {
		if k == "" || v == "" {
			return fmt.Errorf("%s: model_map entries need a model on both sides", where)
		}
	}
	for m, p := range c.Prices {
		if p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
			return fmt.Errorf("%s: prices[%q] must be a non-negative number", where, m)
		}
	}
	for k, v := range c.Headers {
		if !validHeaderName(k) {
			return fmt.Errorf("%s: header name %q is not a valid HTTP token", where, k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("%s: header %q value must not contain CR, LF or NUL", where, k)
		}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

var (
	// ErrNoUpstream means no configured upstream serves the requested model.
	// Plan wraps it with the model name; proxies usually answer 404
	// model_not_found.
	ErrNoUpstream = errors.New("no upstream serves model")
	// ErrCircuitOpen means the upstream's circuit breaker rejects attempts:
	// it is cooling down, or its single half-open probe is already running.
	// Move on to the next candidate.
	ErrCircuitOpen = errors.New("circuit open")
	// ErrCoolingDown means a (upstream, model) pair answered 429 and its
	// Retry-After has not passed. It matches ErrCircuitOpen with errors.Is.
	ErrCoolingDown = fmt.Errorf("%w: cooling down after 429", ErrCircuitOpen)
	// ErrTimeout marks an attempt that got no response headers within its
	// timeout. Pass an error wrapping it in Result.Err so the attempt
	// counts as a timeout, not as the client going away.
	ErrTimeout = errors.New("upstream did not answer within its timeout")
	// ErrSaturated means the upstream had no free slot (max_parallel) within
	// the wait given to Acquire. Move on to the next candidate.
	ErrSaturated = errors.New("upstream saturated")
)
