// Package config holds tollgate's typed configuration, its defaults, and the
// loading rules: flags > environment > YAML file > .env file > defaults.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/upstream"
)

// Defaults.
const (
	DefaultBaseURL      = "https://taotoken.net/api"
	DefaultPort         = 3000
	DefaultModel        = "claude-sonnet-4-6"
	DefaultMaxRetries   = 2
	DefaultTimeout      = 10 * time.Minute
	DefaultMaxBody      = 32 << 20
	DefaultDrainTimeout = 30 * time.Second
	DefaultDB           = "./tollgate.db"
	DefaultRetention    = 90 * 24 * time.Hour
)

// Config is the whole configuration. Field comments are the reference: YAML
// key, environment variable, default.
type Config struct {
	// Listen is the address to serve on. YAML listen, env TOLLGATE_LISTEN
	// (overrides PORT), default ":3000" (PORT=3000).
	Listen string `yaml:"listen"`
	// Env is "production" (default) or "development" (env TOLLGATE_ENV);
	// development adds error details to /api responses.
	Env string `yaml:"env"`
	// DefaultModel is used when a request names no model. Env TOLLGATE_DEFAULT_MODEL.
	DefaultModel string `yaml:"default_model"`
	// MaxRetries is how many times a failed attempt is retried (so 1+MaxRetries
	// attempts at most). Env TOLLGATE_MAX_RETRIES, default 2.
	MaxRetries int `yaml:"max_retries"`
	// Timeout is the whole-request deadline. Env TOLLGATE_TIMEOUT, default 10m.
	Timeout time.Duration `yaml:"timeout"`
	// IdleTimeout ends a response (a stream above all) whose upstream sends
	// nothing for this long. Env TOLLGATE_IDLE_TIMEOUT, default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxBody bounds request bodies, in bytes ("32MiB" accepted). Env TOLLGATE_MAX_BODY.
	MaxBody ByteSize `yaml:"max_body"`
	// DrainTimeout bounds graceful shutdown. Env TOLLGATE_DRAIN_TIMEOUT, default 30s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Demo starts an in-process fake upstream instead of a real one (flag --demo).
	Demo bool `yaml:"demo"`

	// Upstream is the single default upstream (env TAOTOKEN_API_KEY,
	// TAOTOKEN_BASE_URL), used when Upstreams is empty.
	Upstream struct {
		APIKey  string `yaml:"api_key"`
		BaseURL string `yaml:"base_url"`
	} `yaml:"taotoken"`
	// Upstreams, when set, replace the single default upstream.
	Upstreams []upstream.Config `yaml:"upstreams"`
	// Models are aliases: a name clients use, expanded to target models.
	Models map[string]upstream.Alias `yaml:"models"`
	// Routing is the default strategy and fallback switch.
	Routing upstream.Routing `yaml:"routing"`
	// Breaker tunes the per-upstream circuit breaker (defaults: open after 5
	// consecutive failures or 50% of >= 20 attempts in 30s; 30s cool-down).
	Breaker upstream.BreakerOptions `yaml:"breaker"`

	Database struct {
		// URL: a file path, sqlite://PATH or postgres://... Env TOLLGATE_DB, default ./tollgate.db.
		URL string `yaml:"url"`
		// InlineWriter keeps SQLite's ledger inserts inside the gateway
		// process instead of its writer process (docs/perf.md). Env
		// TOLLGATE_DB_INLINE_WRITER, default false.
		InlineWriter bool `yaml:"inline_writer"`
	} `yaml:"database"`
	// Retention of raw ledger rows. Env TOLLGATE_RETENTION, default 90d.
	Retention time.Duration `yaml:"retention"`
	// LogBodies stores request/response bodies in the ledger (message content
	// removed unless LogContent). Env TOLLGATE_LOG_BODIES, TOLLGATE_LOG_CONTENT.
	LogBodies  bool `yaml:"log_bodies"`
	LogContent bool `yaml:"log_content"`
	// Currency is the one billing currency of the deployment (ISO code):
	// prices, budgets and reports are in it. Env TOLLGATE_CURRENCY, default
	// USD. The built-in prices, LiteLLM files and upstream model lists are
	// in USD and are used only when it is USD.
	Currency string `yaml:"currency"`
	// Timezone (IANA name) of budget periods, daily groups and report
	// times. Env TOLLGATE_TIMEZONE, default UTC.
	Timezone string `yaml:"timezone"`
	// PricesFrom loads prices from a file path or http(s) URL: LiteLLM's
	// model_prices_and_context_window.json or a tollgate price YAML
	// (detected by content). Env TOLLGATE_PRICES.
	PricesFrom string `yaml:"prices_from"`
	// PricesRefresh is how often PricesFrom is reloaded (0: never). Env
	// TOLLGATE_PRICES_REFRESH, default 1h.
	PricesRefresh time.Duration `yaml:"prices_refresh"`
	// Prices override or extend every other price source, per 1M tokens in
	// Currency: {model: {input, output, cache_read, cache_write}}.
	Prices map[string]Price `yaml:"prices"`
	// UpstreamPrices are prices at one upstream, winning there over Prices:
	// {upstream name: {model: price}}.
	UpstreamPrices map[string]map[string]Price `yaml:"upstream_prices"`

	// AdminToken enables the admin API (Bearer token). Env TOLLGATE_ADMIN_TOKEN.
	AdminToken string `yaml:"admin_token"`
	// Auth is "enabled" (default) or "disabled" (env TOLLGATE_AUTH).
	Auth string `yaml:"auth"`
	// RedisURL shares limits and budgets between replicas. Env TOLLGATE_REDIS_URL.
	RedisURL string `yaml:"redis_url"`
	Limits   Limits `yaml:"limits"`
	// TrustedProxies are the CIDRs or addresses of reverse proxies whose
	// X-Forwarded-For is believed for the client IP (ledger, per-IP limits).
	// Env TOLLGATE_TRUSTED_PROXIES (comma-separated); default none.
	TrustedProxies []string `yaml:"trusted_proxies"`

	Log  Log  `yaml:"log"`
	Chat Chat `yaml:"chat"`
	// MetricsListen serves /metrics on a separate address when set (env TOLLGATE_METRICS_LISTEN).
	MetricsListen string `yaml:"metrics_listen"`
	// DebugListen serves net/http/pprof at /debug/pprof/ on this address when
	// set (env TOLLGATE_DEBUG_LISTEN); keep it on loopback.
	DebugListen string `yaml:"debug_listen"`
	// DisableMetrics turns the Prometheus metrics off (env TOLLGATE_DISABLE_METRICS).
	DisableMetrics bool `yaml:"disable_metrics"`
	// DisableLedger stops writing usage rows to the database (env
	// TOLLGATE_DISABLE_LEDGER): for measuring the ledger's cost, not for
	// production. Records still reach the in-memory ring and the limits.
	DisableLedger bool `yaml:"disable_ledger"`
	// NetHTTPStreams keeps event streams on net/http's connection handling
	// instead of taking their connections (streamconn; env
	// TOLLGATE_NETHTTP_STREAMS): ~10 KB more memory per open stream, for
	// comparison or if a client misbehaves with taken connections.
	NetHTTPStreams bool `yaml:"nethttp_streams"`
}

// Price is a price entry per 1M tokens in the deployment currency; amounts
// are read as exact decimals (cached_input is the older name of cache_read).
type Price = ledger.PriceSpec

// Limits are global defaults; a key's own values override them. 0 = unlimited.
type Limits struct {
	RPM         int `yaml:"rpm"`          // env TOLLGATE_RPM
	TPM         int `yaml:"tpm"`          // env TOLLGATE_TPM
	MaxParallel int `yaml:"max_parallel"` // env TOLLGATE_MAX_PARALLEL
	IPRPM       int `yaml:"ip_rpm"`       // per client IP on unauthenticated routes; env TOLLGATE_IP_RPM
	// FailPolicy when Redis is unreachable: "fail_open" (default) or "fail_closed". Env TOLLGATE_LIMIT_FAIL_POLICY.
	FailPolicy string `yaml:"fail_policy"`
	// DefaultMaxTokens is the completion size assumed for budget reservations
	// when a request sets no max_tokens (default 1024).
	DefaultMaxTokens int `yaml:"default_max_tokens"`
	// Unpriced decides what a key with a budget may do with a model that has
	// no price: "deny" (default: refused with 403, since its spend could not
	// be counted) or "allow" (served, recorded at no cost). Env TOLLGATE_UNPRICED.
	Unpriced string `yaml:"unpriced"`
	// BudgetWarn is the fraction of a budget at which a key's spend is
	// logged and counted as a warning, once per key and period (default
	// 0.8; 0 turns it off). Env TOLLGATE_BUDGET_WARN.
	BudgetWarn float64 `yaml:"budget_warn"`
}

// Log configures logging.
type Log struct {
	Format    string `yaml:"format"`     // json (default) or text; env TOLLGATE_LOG_FORMAT
	Level     string `yaml:"level"`      // debug, info (default), warn, error; env TOLLGATE_LOG_LEVEL
	File      string `yaml:"file"`       // also write to this file, rotated; env TOLLGATE_LOG_FILE
	ErrorFile string `yaml:"error_file"` // errors only, rotated; env TOLLGATE_LOG_ERROR_FILE
	MaxSizeMB int    `yaml:"max_size_mb"`
	MaxAgeDay int    `yaml:"max_age_days"`
	// FlushInterval buffers log output and writes it at least this often
	// (default 100ms; 0 writes each line at once). Env TOLLGATE_LOG_FLUSH.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Chat configures the /api/chat conversation API.
type Chat struct {
	ContextMessages int    `yaml:"context_messages"` // history messages sent upstream, default 10
	KeepMessages    int    `yaml:"keep_messages"`    // history messages kept, default 20
	ContextTokens   int    `yaml:"context_tokens"`   // optional token budget for the context, 0 = none
	SystemPrompt    string `yaml:"system_prompt"`
}

// Default returns the configuration with every default applied.
func Default() Config {
	var c Config
	c.Listen = ":" + strconv.Itoa(DefaultPort)
	c.Env = "production"
	c.DefaultModel = DefaultModel
	c.MaxRetries = DefaultMaxRetries
	c.Timeout = DefaultTimeout
	c.IdleTimeout = 2 * time.Minute
	c.MaxBody = DefaultMaxBody
	c.DrainTimeout = DefaultDrainTimeout
	c.Upstream.BaseURL = DefaultBaseURL
	c.Database.URL = DefaultDB
	c.Retention = DefaultRetention
	c.Auth = "enabled"
	c.Limits.FailPolicy = "fail_open"
	c.Limits.DefaultMaxTokens = 1024
	c.Limits.Unpriced = "deny"
	c.Limits.BudgetWarn = 0.8
	c.Currency = "USD"
	c.Timezone = "UTC"
	c.PricesRefresh = time.Hour
	c.Log.Format = "json"
	c.Log.Level = "info"
	c.Log.MaxSizeMB = 100
	c.Log.MaxAgeDay = 14
	c.Log.FlushInterval = 100 * time.Millisecond
	c.Chat.ContextMessages = 10
	c.Chat.KeepMessages = 20
	return c
}

// ErrMissingAPIKey is returned by Validate when no upstream key is configured.
var ErrMissingAPIKey = errors.New("TAOTOKEN_API_KEY is not set: set it to your upstream API key (or run `tollgate serve --demo`)")

// Validate checks the configuration. The first problem found is returned as
// one line naming the setting.
func (c *Config) Validate() error {
	if err := c.validateRanges(); err != nil {
		return err
	}
	if c.Env != "production" && c.Env != "development" {
		return fmt.Errorf("TOLLGATE_ENV %q: want production or development", c.Env)
	}
	if strings.TrimSpace(c.DefaultModel) == "" {
		return errors.New("TOLLGATE_DEFAULT_MODEL is empty")
	}
	if c.Auth != "enabled" && c.Auth != "disabled" {
		return fmt.Errorf("TOLLGATE_AUTH %q: want enabled or disabled", c.Auth)
	}
	if p := c.Limits.FailPolicy; p != "fail_open" && p != "fail_closed" {
		return fmt.Errorf("limits.fail_policy %q: want fail_open or fail_closed", p)
	}
	if p := c.Limits.Unpriced; p != "deny" && p != "allow" {
		return fmt.Errorf("limits.unpriced (TOLLGATE_UNPRICED) %q: want deny or allow", p)
	}
	if w := c.Limits.BudgetWarn; w < 0 || w >= 1 {
		return fmt.Errorf("limits.budget_warn (TOLLGATE_BUDGET_WARN) %v: want a fraction from 0 (off) to below 1, e.g. 0.8", w)
	}
	c.Currency = strings.ToUpper(c.Currency)
	if !validCurrency(c.Currency) {
		return fmt.Errorf("TOLLGATE_CURRENCY %q: want a three-letter currency code such as USD or CNY", c.Currency)
	}
	if _, err := c.Location(); err != nil {
		return err
	}
	if c.PricesRefresh < 0 {
		return fmt.Errorf("TOLLGATE_PRICES_REFRESH %v: must not be negative", c.PricesRefresh)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		return fmt.Errorf("TOLLGATE_LOG_FORMAT %q: want json or text", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("TOLLGATE_LOG_LEVEL %q: want debug, info, warn or error", c.Log.Level)
	}
	if err := c.validateUpstreams(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.Demo || len(c.Upstreams) > 0 {
		return nil
	}
	if c.Upstream.APIKey == "" {
		return ErrMissingAPIKey
	}
	if u, err := url.Parse(c.Upstream.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("TAOTOKEN_BASE_URL %q: want an absolute http(s) URL", c.Upstream.BaseURL)
	}
	return nil
}

// validCurrency accepts an ISO 4217-shaped code: three ASCII letters.
func validCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// Location loads Timezone (empty means UTC).
func (c *Config) Location() (*time.Location, error) {
	if c.Timezone == "" || c.Timezone == "UTC" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("TOLLGATE_TIMEZONE %q: want an IANA time zone such as Asia/Shanghai: %w", c.Timezone, err)
	}
	return loc, nil
}

// UpstreamConfigs returns the configured upstreams, or the single default one.
func (c *Config) UpstreamConfigs() []upstream.Config {
	if len(c.Upstreams) > 0 {
		return c.Upstreams
	}
	return []upstream.Config{{
		Name:    "taotoken",
		BaseURL: c.Upstream.BaseURL,
		APIKey:  c.Upstream.APIKey,
		Models:  []string{"*"},
		Weight:  1,
	}}
}
