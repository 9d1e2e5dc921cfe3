package config

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/auth"
)

// FuzzLoadYAML feeds arbitrary bytes to the config file loader: it must
// never panic or hang, errors are one line, and an error never echoes a
// secret-looking env value.
func FuzzLoadYAML(f *testing.F) {
	for _, s := range []string{
		"", "listen: :3000\n", "limits: {rpm: 5, tpm: -1}\n", "max_retires: 2\n",
		"upstreams:\n  - name: a\n    base_url: http://127.0.0.1:1\n    api_key: ${KEY}\n    models: ['gpt-*']\n",
		"models:\n  auto: {targets: [a, b], strategy: priority}\n", "x: &a [*a]\n", "timeout: ${T:-5s}\n",
		"a: ${UNSET}\n", "max_body: 32MiB\n", "prices: {m: {input: 1e308}}\n", "? [a]\n: b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e := map[string]string{"KEY": "sk-secret-fuzz-value", "TAOTOKEN_API_KEY": "sk-secret-fuzz-value"}
		cfg, err := Load(Sources{ConfigFile: "c.yaml", Lookup: env(e), ReadFile: files{"c.yaml": string(b)}.read})
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			if strings.Contains(err.Error(), "sk-secret-fuzz-value") {
				t.Fatalf("error echoes a secret: %v", err)
			}
			if strings.Contains(err.Error(), "\n") && !strings.Contains(string(b), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
		}
	})
}

// FuzzParseDuration covers the durations the environment and flags accept
// (auth.ParseDuration, via durVar): never negative, and what Go prints
// parses back to the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "90m", "1h30m", "30d", "7d12h", "-1s", "d", "9223372036854775807d", "1.5h", " 2m ", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c Config
		if err := durVar(func(c *Config) *time.Duration { return &c.Timeout })(&c, s); err != nil {
			return
		}
		d := c.Timeout
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v; negative", s, d)
		}
		back, err := auth.ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; its String %q parses to %v, %v", s, d, d.String(), back, err)
		}
	})
}

// FuzzParseByteSize: never negative, never overflowing, and a plain number
// parses to itself.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"32MiB", "512KB", "1048576", "1g", "-1", "9223372036854775807", "9223372036854775807k", "1.5m", "b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseByteSize(%q) = %d; negative", s, n)
		}
		back, err := ParseByteSize(strconv.FormatInt(int64(n), 10))
		if err != nil || back != n {
			t.Fatalf("ParseByteSize(%q) = %d; its decimal form parses to %d, %v", s, n, back, err)
		}
	})
}
