package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"go.yaml.in/yaml/v3"

	"github.com/tollgate/tollgate/internal/auth"
)

// Sources are the inputs Load combines. Lookup is the process environment
// (os.LookupEnv in main); Flags holds flag values that were set, keyed by the
// environment variable they override (e.g. "TOLLGATE_LISTEN").
type Sources struct {
	ConfigFile string // --config; falls back to TOLLGATE_CONFIG
	DotEnv     string // path of the .env file; "" = none
	Lookup     func(string) (string, bool)
	Flags      map[string]string
	ReadFile   func(string) ([]byte, error) // nil = os.ReadFile
}

// Load builds the configuration: defaults, then .env, then the YAML file,
// then the environment, then flags. It does not validate.
func Load(src Sources) (Config, error) {
	cfg := Default()
	readFile := src.ReadFile
	if readFile == nil {
		readFile = os.ReadFile
	}
	lookup := src.Lookup
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}

	dotenv := map[string]string{}
	if src.DotEnv != "" {
		b, err := readFile(src.DotEnv)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return cfg, fmt.Errorf("read %s: %w", src.DotEnv, err)
		default:
			m, err := godotenv.UnmarshalBytes(b)
			if err != nil {
				return cfg, fmt.Errorf("parse %s: %w", src.DotEnv, err)
			}
			dotenv = m
		}
	}
	// env sees the real environment first, then .env; used for ${VAR} in YAML.
	env := func(k string) (string, bool) {
		if v, ok := lookup(k); ok {
			return v, true
		}
		v, ok := dotenv[k]
		return v, ok
	}
	if err := applyVars(&cfg, func(k string) (string, bool) { v, ok := dotenv[k]; return v, ok }, ".env"); err != nil {
		return cfg, err
	}

	file := src.ConfigFile
	if file == "" {
		file, _ = env("TOLLGATE_CONFIG")
	}
	if file != "" {
		b, err := readFile(file)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		if err := decodeYAML(&cfg, b, env); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	if err := applyVars(&cfg, lookup, "environment"); err != nil {
		return cfg, err
	}
	flags := func(k string) (string, bool) { v, ok := src.Flags[k]; return v, ok }
	if err := applyVars(&cfg, flags, "flag"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// vars maps each environment variable to the field it sets. Flags use the same
// names, so one table serves both.
var vars = []struct {
	name string
	set  func(c *Config, v string) error
}{
	{"TAOTOKEN_API_KEY", func(c *Config, v string) error { c.Upstream.APIKey = v; return nil }},
	{"TAOTOKEN_BASE_URL", func(c *Config, v string) error { c.Upstream.BaseURL = strings.TrimRight(v, "/"); return nil }},
	{"PORT", func(c *Config, v string) error {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("%q is not a port number", v)
		}
		c.Listen = ":" + v
		return nil
	}},
	{"TOLLGATE_LISTEN", func(c *Config, v string) error { c.Listen = v; return nil }},
	{"TOLLGATE_ENV", func(c *Config, v string) error { c.Env = v; return nil }},
	{"TOLLGATE_DEFAULT_MODEL", func(c *Config, v string) error { c.DefaultModel = v; return nil }},
	{"TOLLGATE_MAX_RETRIES", intVar(func(c *Config) *int { return &c.MaxRetries })},
	{"TOLLGATE_TIMEOUT", durVar(func(c *Config) *time.Duration { return &c.Timeout })},
	{"TOLLGATE_IDLE_TIMEOUT", durVar(func(c *Config) *time.Duration { return &c.IdleTimeout })},
	{"TOLLGATE_MAX_BODY", func(c *Config, v string) error {
		n, err := ParseByteSize(v)
		c.MaxBody = n
		return err
	}},
	{"TOLLGATE_DRAIN_TIMEOUT", durVar(func(c *Config) *time.Duration { return &c.DrainTimeout })},
	{"TOLLGATE_DEMO", boolVar(func(c *Config) *bool { return &c.Demo })},
	{"TOLLGATE_DB", func(c *Config, v string) error { c.Database.URL = v; return nil }},
	{"TOLLGATE_DB_INLINE_WRITER", boolVar(func(c *Config) *bool { return &c.Database.InlineWriter })},
	{"TOLLGATE_RETENTION", durVar(func(c *Config) *time.Duration { return &c.Retention })},
	{"TOLLGATE_LOG_BODIES", boolVar(func(c *Config) *bool { return &c.LogBodies })},
	{"TOLLGATE_LOG_CONTENT", boolVar(func(c *Config) *bool { return &c.LogContent })},
	{"TOLLGATE_ADMIN_TOKEN", func(c *Config, v string) error { c.AdminToken = v; return nil }},
	{"TOLLGATE_AUTH", func(c *Config, v string) error { c.Auth = v; return nil }},
	{"TOLLGATE_REDIS_URL", func(c *Config, v string) error { c.RedisURL = v; return nil }},
	{"TOLLGATE_RPM", intVar(func(c *Config) *int { return &c.Limits.RPM })},
	{"TOLLGATE_TPM", intVar(func(c *Config) *int { return &c.Limits.TPM })},
	{"TOLLGATE_MAX_PARALLEL", intVar(func(c *Config) *int { return &c.Limits.MaxParallel })},
	{"TOLLGATE_IP_RPM", intVar(func(c *Config) *int { return &c.Limits.IPRPM })},
	{"TOLLGATE_TRUSTED_PROXIES", func(c *Config, v string) error { c.TrustedProxies = strings.Split(v, ","); return nil }},
	{"TOLLGATE_LIMIT_FAIL_POLICY", func(c *Config, v string) error { c.Limits.FailPolicy = v; return nil }},
	{"TOLLGATE_UNPRICED", func(c *Config, v string) error { c.Limits.Unpriced = strings.ToLower(v); return nil }},
	{"TOLLGATE_BUDGET_WARN", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number (e.g. 0.8)", v)
		}
		c.Limits.BudgetWarn = f
		return nil
	}},
	{"TOLLGATE_CURRENCY", func(c *Config, v string) error { c.Currency = strings.ToUpper(strings.TrimSpace(v)); return nil }},
	{"TOLLGATE_TIMEZONE", func(c *Config, v string) error { c.Timezone = strings.TrimSpace(v); return nil }},
	{"TOLLGATE_PRICES", func(c *Config, v string) error { c.PricesFrom = strings.TrimSpace(v); return nil }},
	{"TOLLGATE_PRICES_REFRESH", durVar(func(c *Config) *time.Duration { return &c.PricesRefresh })},
	{"TOLLGATE_LOG_FORMAT", func(c *Config, v string) error { c.Log.Format = v; return nil }},
	{"TOLLGATE_LOG_LEVEL", func(c *Config, v string) error { c.Log.Level = strings.ToLower(v); return nil }},
	{"TOLLGATE_LOG_FLUSH", durVar(func(c *Config) *time.Duration { return &c.Log.FlushInterval })},
	{"TOLLGATE_LOG_FILE", func(c *Config, v string) error { c.Log.File = v; return nil }},
	{"TOLLGATE_LOG_ERROR_FILE", func(c *Config, v string) error { c.Log.ErrorFile = v; return nil }},
	{"TOLLGATE_DISABLE_METRICS", boolVar(func(c *Config) *bool { return &c.DisableMetrics })},
	{"TOLLGATE_DISABLE_LEDGER", boolVar(func(c *Config) *bool { return &c.DisableLedger })},
	{"TOLLGATE_NETHTTP_STREAMS", boolVar(func(c *Config) *bool { return &c.NetHTTPStreams })},
	{"TOLLGATE_DEBUG_LISTEN", func(c *Config, v string) error { c.DebugListen = v; return nil }},
	{"TOLLGATE_METRICS_LISTEN", func(c *Config, v string) error { c.MetricsListen = v; return nil }},
	{"TOLLGATE_CHAT_SYSTEM_PROMPT", func(c *Config, v string) error { c.Chat.SystemPrompt = v; return nil }},
}

// applyVars sets every variable lookup knows. PORT is applied before
// TOLLGATE_LISTEN by table order, so the full address wins.
func applyVars(c *Config, lookup func(string) (string, bool), from string) error {
	for _, v := range vars {
		val, ok := lookup(v.name)
		if !ok || (val == "" && v.name != "TAOTOKEN_API_KEY") {
			continue
		}
		if err := v.set(c, val); err != nil {
			return fmt.Errorf("%s %s: %w", from, v.name, err)
		}
	}
	return nil
}

func intVar(f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*f(c) = n
		return nil
	}
}

func durVar(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := auth.ParseDuration(v)
		if err != nil {
			return err
		}
		*f(c) = d
		return nil
	}
}

func boolVar(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*f(c) = b
		return nil
	}
}

// ByteSize is a size in bytes; YAML and env accept "32MiB", "512KB", "1048576".
type ByteSize int64

// UnmarshalYAML parses a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseByteSize parses "32MiB", "32MB", "512k", "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   int64
	}{{"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3},
		{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (like 32MiB)", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n * mult), nil
}
