package config

import (
	"strings"
	"testing"
)

// TestValidateRanges: out-of-range values are refused from the environment
// and from YAML alike, with a message naming the setting.
func TestValidateRanges(t *testing.T) {
	base := map[string]string{"TAOTOKEN_API_KEY": "sk-x"}
	tests := []struct {
		name    string
		env     map[string]string
		yaml    string
		wantErr string // "" = valid
	}{
		{"defaults", nil, "", ""},
		{"negative rpm env", map[string]string{"TOLLGATE_RPM": "-1"}, "", "limits.rpm (TOLLGATE_RPM) -1: must not be negative"},
		{"negative rpm yaml", nil, "limits:\n  rpm: -5\n", "limits.rpm (TOLLGATE_RPM) -5"},
		{"negative tpm env", map[string]string{"TOLLGATE_TPM": "-10"}, "", "limits.tpm (TOLLGATE_TPM) -10"},
		{"negative tpm yaml", nil, "limits: {tpm: -1}\n", "limits.tpm"},
		{"negative max_parallel env", map[string]string{"TOLLGATE_MAX_PARALLEL": "-2"}, "", "limits.max_parallel (TOLLGATE_MAX_PARALLEL) -2"},
		{"negative max_parallel yaml", nil, "limits: {max_parallel: -2}\n", "limits.max_parallel"},
		{"negative ip_rpm", map[string]string{"TOLLGATE_IP_RPM": "-2"}, "", "limits.ip_rpm"},
		{"negative default_max_tokens", nil, "limits: {default_max_tokens: -1}\n", "limits.default_max_tokens -1: want 1..10000000"},
		{"zero default_max_tokens", nil, "limits: {default_max_tokens: 0}\n", "limits.default_max_tokens 0"},
		{"huge rpm", nil, "limits: {rpm: 99999999999}\n", "limits.rpm"},
		{"max_retries", map[string]string{"TOLLGATE_MAX_RETRIES": "11"}, "", "max_retries (TOLLGATE_MAX_RETRIES) 11: want 0..10"},
		{"negative max_retries yaml", nil, "max_retries: -1\n", "max_retries (TOLLGATE_MAX_RETRIES) -1"},
		{"negative timeout", nil, "timeout: -5s\n", "timeout (TOLLGATE_TIMEOUT) -5s: must be at least 1ms"},
		{"zero idle", map[string]string{"TOLLGATE_IDLE_TIMEOUT": "0s"}, "", "idle_timeout (TOLLGATE_IDLE_TIMEOUT)"},
		{"negative drain", nil, "drain_timeout: -1s\n", "drain_timeout (TOLLGATE_DRAIN_TIMEOUT) -1s: must not be negative"},
		{"huge timeout", nil, "timeout: 9000h\n", "must be at most"},
		{"negative retention", nil, "retention: -1h\n", "retention"},
		{"max_body zero", nil, "max_body: 0\n", "max_body (TOLLGATE_MAX_BODY) 0"},
		{"max_body huge", map[string]string{"TOLLGATE_MAX_BODY": "8GiB"}, "", "max_body (TOLLGATE_MAX_BODY)"},
		{"port", map[string]string{"TOLLGATE_LISTEN": ":99999"}, "", "port must be a number from 0 to 65535"},
		{"listen", nil, "listen: nowhere\n", `listen (TOLLGATE_LISTEN/PORT) "nowhere"`},
		{"metrics listen", nil, "metrics_listen: ':-1'\n", "metrics_listen (TOLLGATE_METRICS_LISTEN)"},
		{"negative log size", nil, "log: {max_size_mb: -1}\n", "log.max_size_mb"},
		{"negative chat", nil, "chat: {keep_messages: -1}\n", "chat.keep_messages"},
		{"breaker ratio", nil, "breaker: {failure_ratio: 1.5}\n", "breaker.failure_ratio 1.5"},
		{"breaker min_requests", nil, "breaker: {min_requests: -3}\n", "breaker.min_requests -3"},
		{"breaker cool_down", nil, "breaker: {cool_down: -1s}\n", "breaker.cool_down -1s"},
		{"negative weight", nil, "upstreams:\n  - {name: a, base_url: 'http://127.0.0.1:1', weight: -1}\n", `upstream "a": weight -1 must not be negative`},
		{"negative upstream max_parallel", nil, "upstreams:\n  - {name: a, base_url: 'http://127.0.0.1:1', max_parallel: -1}\n", "max_parallel -1"},
		{"bad api", nil, "upstreams:\n  - {name: a, base_url: 'http://127.0.0.1:1', api: soap}\n", `api "soap": want openai or anthropic`},
		{"negative price", nil, "prices:\n  m: {input: -1}\n", `prices["m"]`},
		{"valid upstreams", nil, "upstreams:\n  - {name: a, base_url: 'http://127.0.0.1:1', api: anthropic, responses: native}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range base {
				e[k] = v
			}
			for k, v := range tt.env {
				e[k] = v
			}
			src := Sources{Lookup: env(e), ReadFile: files{"c.yaml": tt.yaml}.read}
			if tt.yaml != "" {
				src.ConfigFile = "c.yaml"
			}
			cfg, err := Load(src)
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v; want valid", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestYAMLKeysAndVars(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{"typo at top level", nil, "default_model: x\nmax_retires: 3\n",
			`config file c.yaml: line 2: unknown key "max_retires" (did you mean "max_retries"?)`, nil},
		{"typo nested", nil, "limits:\n  rpm: 1\n  tmp: 5\n", `line 3: unknown key "tmp" in limits (did you mean "tpm"?)`, nil},
		{"typo in upstream", nil, "upstreams:\n  - name: a\n    base_url: http://x\n    api_kye: k\n",
			`line 4: unknown key "api_kye" in upstreams[0] (did you mean "api_key"?)`, nil},
		{"typo in alias", nil, "models:\n  auto:\n    target: [a]\n", `line 3: unknown key "target" in models.auto (did you mean "targets"?)`, nil},
		{"no suggestion", nil, "completely_unrelated: 1\n", `line 1: unknown key "completely_unrelated"`, nil},
		{"type error without Go names", nil, "timeout: soon\n", `line 1: "soon" is not a duration such as 30s`, nil},
		{"int type error", nil, "limits: {rpm: lots}\n", `line 1: "lots" is not a whole number`, nil},
		{"unset var", nil, "taotoken:\n  api_key: ${UPSTREAM_KEY}\n", `line 2: ${UPSTREAM_KEY} is not set or empty`, nil},
		{"empty var", map[string]string{"UPSTREAM_KEY": ""}, "taotoken:\n  api_key: ${UPSTREAM_KEY}\n", `${UPSTREAM_KEY} is not set`, nil},
		{"var in a comment is ignored", map[string]string{"K": "sk-1"}, "# old: ${GONE}\nadmin_token: ${K}\n", "",
			func(t *testing.T, c Config) {
				if c.AdminToken != "sk-1" {
					t.Errorf("admin token = %q", c.AdminToken)
				}
			}},
		{"default", nil, "limits:\n  rpm: ${RPM:-60}\ndefault_model: ${M:-gpt-4o}\n", "",
			func(t *testing.T, c Config) {
				if c.Limits.RPM != 60 || c.DefaultModel != "gpt-4o" {
					t.Errorf("rpm %d model %q; want 60 gpt-4o", c.Limits.RPM, c.DefaultModel)
				}
			}},
		{"value can't inject structure", map[string]string{"M": "x\nauth: disabled"}, "default_model: ${M}\n", "",
			func(t *testing.T, c Config) {
				if c.Auth != "enabled" || c.DefaultModel != "x\nauth: disabled" {
					t.Errorf("auth %q model %q: an env value changed the YAML structure", c.Auth, c.DefaultModel)
				}
			}},
		{"empty file", nil, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{"TAOTOKEN_API_KEY": "sk-x"}
			for k, v := range tt.env {
				e[k] = v
			}
			cfg, err := Load(Sources{ConfigFile: "c.yaml", Lookup: env(e), ReadFile: files{"c.yaml": tt.yaml}.read})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v; want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v; want one containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "config.") || err != nil && strings.Contains(err.Error(), "time.") {
				t.Errorf("error %q names a Go type", err)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"max_retires", "max_retries", 1}, {"tmp", "tpm", 1},
		{"kitten", "sitting", 3}, {"rpm", "rpm", 0},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
