// Package config holds tollgate's typed configuration, its defaults, and the
// loading rules: flags > environment > YAML file > .env file > defaults.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	} `yaml:"database"`
	// Retention of raw ledger rows. Env TOLLGATE_RETENTION, default 90d.
	Retention time.Duration `yaml:"retention"`
	// LogBodies stores request/response bodies in the ledger (message content
	// removed unless LogContent). Env TOLLGATE_LOG_BODIES, TOLLGATE_LOG_CONTENT.
	LogBodies  bool `yaml:"log_bodies"`
	LogContent bool `yaml:"log_content"`
	// Prices override or extend the built-in price table (USD per 1M tokens).
	Prices map[string]Price `yaml:"prices"`

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
}

// Price is a YAML price entry in USD per 1M tokens.
type Price struct {
	Input       float64 `yaml:"input"`
	CachedInput float64 `yaml:"cached_input"`
	Output      float64 `yaml:"output"`
}

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
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if c.Env != "production" && c.Env != "development" {
		return fmt.Errorf("TOLLGATE_ENV %q: want production or development", c.Env)
	}
	if c.MaxRetries < 0 || c.MaxRetries > 10 {
		return fmt.Errorf("TOLLGATE_MAX_RETRIES %d: want 0..10", c.MaxRetries)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("TOLLGATE_TIMEOUT %v: must be positive", c.Timeout)
	}
	if c.IdleTimeout <= 0 {
		return fmt.Errorf("TOLLGATE_IDLE_TIMEOUT %v: must be positive", c.IdleTimeout)
	}
	if c.MaxBody <= 0 {
		return fmt.Errorf("TOLLGATE_MAX_BODY %d: must be positive", c.MaxBody)
	}
	if c.DrainTimeout < 0 {
		return fmt.Errorf("TOLLGATE_DRAIN_TIMEOUT %v: must not be negative", c.DrainTimeout)
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
	if c.Log.Format != "json" && c.Log.Format != "text" {
		return fmt.Errorf("TOLLGATE_LOG_FORMAT %q: want json or text", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("TOLLGATE_LOG_LEVEL %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Chat.ContextMessages < 0 || c.Chat.KeepMessages < 0 {
		return errors.New("chat.context_messages and chat.keep_messages must not be negative")
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
