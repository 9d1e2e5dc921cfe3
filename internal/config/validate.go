package config

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/upstream"
)

// Upper bounds: far above any sane setting, low enough that a typo (an extra
// digit, a unit mix-up) is caught and arithmetic on them cannot overflow.
const (
	maxRate       = 1_000_000_000 // rpm, tpm, ip_rpm
	maxParallel   = 1_000_000
	maxMaxTokens  = 10_000_000
	maxBodyLimit  = 1 << 30 // 1 GiB
	maxRetries    = 10
	maxDuration   = 30 * 24 * time.Hour
	maxRetention  = 100 * 365 * 24 * time.Hour
	maxLogSizeMB  = 1 << 20
	maxLogAgeDays = 100 * 365
	maxChatWindow = 100_000
)

// setting names a setting by its YAML path and, when it has one, its
// environment variable, so a message points wherever the value came from.
func setting(yamlPath, envVar string) string {
	if envVar == "" {
		return yamlPath
	}
	return yamlPath + " (" + envVar + ")"
}

func intRange(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		if lo == 0 && v < 0 {
			return fmt.Errorf("%s %d: must not be negative (0 means unlimited/off)", name, v)
		}
		return fmt.Errorf("%s %d: want %d..%d", name, v, lo, hi)
	}
	return nil
}

func durRange(name string, d, lo, hi time.Duration) error {
	switch {
	case d < lo && lo == 0:
		return fmt.Errorf("%s %v: must not be negative", name, d)
	case d < lo:
		return fmt.Errorf("%s %v: must be at least %v", name, d, lo)
	case d > hi:
		return fmt.Errorf("%s %v: must be at most %v", name, d, hi)
	}
	return nil
}

// validateRanges checks every numeric setting; the first problem wins.
func (c *Config) validateRanges() error {
	if err := validateListen(setting("listen", "TOLLGATE_LISTEN/PORT"), c.Listen); err != nil {
		return err
	}
	for _, addr := range []struct{ name, v string }{
		{setting("metrics_listen", "TOLLGATE_METRICS_LISTEN"), c.MetricsListen},
		{setting("debug_listen", "TOLLGATE_DEBUG_LISTEN"), c.DebugListen},
	} {
		if addr.v == "" {
			continue
		}
		if err := validateListen(addr.name, addr.v); err != nil {
			return err
		}
	}
	checks := []error{
		intRange(setting("max_retries", "TOLLGATE_MAX_RETRIES"), c.MaxRetries, 0, maxRetries),
		durRange(setting("timeout", "TOLLGATE_TIMEOUT"), c.Timeout, time.Millisecond, maxDuration),
		durRange(setting("idle_timeout", "TOLLGATE_IDLE_TIMEOUT"), c.IdleTimeout, time.Millisecond, maxDuration),
		durRange(setting("drain_timeout", "TOLLGATE_DRAIN_TIMEOUT"), c.DrainTimeout, 0, maxDuration),
		durRange(setting("retention", "TOLLGATE_RETENTION"), c.Retention, 0, maxRetention),
		durRange(setting("log.flush_interval", "TOLLGATE_LOG_FLUSH"), c.Log.FlushInterval, 0, time.Minute),
		intRange(setting("limits.rpm", "TOLLGATE_RPM"), c.Limits.RPM, 0, maxRate),
		intRange(setting("limits.tpm", "TOLLGATE_TPM"), c.Limits.TPM, 0, maxRate),
		intRange(setting("limits.ip_rpm", "TOLLGATE_IP_RPM"), c.Limits.IPRPM, 0, maxRate),
		intRange(setting("limits.max_parallel", "TOLLGATE_MAX_PARALLEL"), c.Limits.MaxParallel, 0, maxParallel),
		intRange(setting("limits.default_max_tokens", ""), c.Limits.DefaultMaxTokens, 1, maxMaxTokens),
		intRange(setting("log.max_size_mb", ""), c.Log.MaxSizeMB, 0, maxLogSizeMB),
		intRange(setting("log.max_age_days", ""), c.Log.MaxAgeDay, 0, maxLogAgeDays),
		intRange(setting("chat.context_messages", ""), c.Chat.ContextMessages, 0, maxChatWindow),
		intRange(setting("chat.keep_messages", ""), c.Chat.KeepMessages, 0, maxChatWindow),
		intRange(setting("chat.context_tokens", ""), c.Chat.ContextTokens, 0, maxMaxTokens),
		c.validateBreaker(),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if c.MaxBody <= 0 || c.MaxBody > maxBodyLimit {
		return fmt.Errorf("%s %d: want 1..%d bytes (e.g. 32MiB)", setting("max_body", "TOLLGATE_MAX_BODY"), c.MaxBody, maxBodyLimit)
	}
	for name, p := range c.Prices {
		if _, err := p.Rate(); err != nil {
			return fmt.Errorf("prices[%q]: %w (amounts per 1M tokens, from 0)", name, err)
		}
	}
	return nil
}

func (c *Config) validateBreaker() error {
	b := c.Breaker
	switch {
	case b.ConsecutiveFailures > 1000:
		return fmt.Errorf("breaker.consecutive_failures %d: want at most 1000 (negative disables)", b.ConsecutiveFailures)
	case math.IsNaN(b.FailureRatio) || b.FailureRatio > 1:
		return fmt.Errorf("breaker.failure_ratio %v: want at most 1 (negative disables)", b.FailureRatio)
	case b.MinRequests < 0 || b.MinRequests > 1_000_000:
		return fmt.Errorf("breaker.min_requests %d: want 0..1000000", b.MinRequests)
	}
	if err := durRange("breaker.window", b.Window, 0, 24*time.Hour); err != nil {
		return err
	}
	return durRange("breaker.cool_down", b.CoolDown, 0, 24*time.Hour)
}

// validateListen checks a host:port with a numeric port in 0..65535.
func validateListen(name, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: want host:port such as :3000 or 127.0.0.1:3000", name, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s %q: port must be a number from 0 to 65535", name, addr)
	}
	return nil
}

// validateUpstreams checks upstreams, aliases, routing and breaker as the
// pool will, so `config check` and startup fail the same way.
func (c *Config) validateUpstreams() error {
	if len(c.Upstreams) == 0 && len(c.Models) == 0 {
		return nil
	}
	_, err := upstream.NewPool(upstream.Options{
		Upstreams: c.UpstreamConfigs(), Aliases: c.Models, Routing: c.Routing, Breaker: c.Breaker,
	}, nil)
	return err
}
