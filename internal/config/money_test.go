package config

import (
	"strings"
	"testing"
	"time"
)

func TestMoneySettings(t *testing.T) {
	yaml := `currency: cny
timezone: Asia/Shanghai
prices_from: https://example.invalid/prices.json
prices:
  qwen-max: {input: 2.4, output: 9.6, cache_read: 0.0375}
upstream_prices:
  bailian:
    qwen-max: {input: "2", output: 8}
limits:
  unpriced: allow
  budget_warn: 0.9
`
	env := map[string]string{"TAOTOKEN_API_KEY": "k", "TOLLGATE_PRICES_REFRESH": "30m"}
	cfg, err := Load(Sources{ConfigFile: "c.yaml", ReadFile: func(string) ([]byte, error) { return []byte(yaml), nil },
		Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Currency != "CNY" || cfg.PricesRefresh != 30*time.Minute || cfg.Limits.Unpriced != "allow" || cfg.Limits.BudgetWarn != 0.9 {
		t.Errorf("cfg = %q %v %q %v", cfg.Currency, cfg.PricesRefresh, cfg.Limits.Unpriced, cfg.Limits.BudgetWarn)
	}
	// Amounts keep their literal text: exact decimals, no float.
	if p := cfg.Prices["qwen-max"]; p.CacheRead != "0.0375" || p.Input != "2.4" {
		t.Errorf("price text = %+v", p)
	}
	if loc, err := cfg.Location(); err != nil || loc.String() != "Asia/Shanghai" {
		t.Errorf("Location = %v, %v", loc, err)
	}

	d := Default()
	if d.Currency != "USD" || d.Timezone != "UTC" || d.Limits.Unpriced != "deny" || d.Limits.BudgetWarn != 0.8 || d.PricesRefresh != time.Hour {
		t.Errorf("defaults = %q %q %q %v %v", d.Currency, d.Timezone, d.Limits.Unpriced, d.Limits.BudgetWarn, d.PricesRefresh)
	}
	for name, mut := range map[string]func(*Config){
		"TOLLGATE_TIMEZONE": func(c *Config) { c.Timezone = "Mars/Olympus" },
		"TOLLGATE_CURRENCY": func(c *Config) { c.Currency = "dollars" },
		"limits.unpriced":   func(c *Config) { c.Limits.Unpriced = "maybe" },
		"budget_warn":       func(c *Config) { c.Limits.BudgetWarn = 1.5 },
	} {
		c := Default()
		c.Upstream.APIKey = "k"
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: Validate = %v; want an error naming it", name, err)
		}
	}
}
