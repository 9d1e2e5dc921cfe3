package config

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// files is an in-memory file system for Sources.ReadFile.
type files map[string]string

func (f files) read(name string) ([]byte, error) {
	s, ok := f[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(s), nil
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedence(t *testing.T) {
	fsys := files{
		".env":     "TOLLGATE_DEFAULT_MODEL=from-dotenv\nTOLLGATE_MAX_RETRIES=5\nTOLLGATE_TIMEOUT=1m\nTAOTOKEN_API_KEY=sk-dotenv\nPORT=4000\n",
		"cfg.yaml": "default_model: from-yaml\nmax_retries: 4\n",
	}
	tests := []struct {
		name      string
		env       map[string]string
		flags     map[string]string
		file      string
		wantModel string
		wantRetry int
		wantTO    time.Duration
		wantAddr  string
	}{
		{"defaults and dotenv", nil, nil, "", "from-dotenv", 5, time.Minute, ":4000"},
		{"yaml over dotenv", nil, nil, "cfg.yaml", "from-yaml", 4, time.Minute, ":4000"},
		{"env over yaml", map[string]string{"TOLLGATE_DEFAULT_MODEL": "from-env", "TOLLGATE_LISTEN": "127.0.0.1:5000"}, nil, "cfg.yaml", "from-env", 4, time.Minute, "127.0.0.1:5000"},
		{"flag over env", map[string]string{"TOLLGATE_DEFAULT_MODEL": "from-env"}, map[string]string{"TOLLGATE_DEFAULT_MODEL": "from-flag", "TOLLGATE_MAX_RETRIES": "1"}, "cfg.yaml", "from-flag", 1, time.Minute, ":4000"},
		{"config file named by env", map[string]string{"TOLLGATE_CONFIG": "cfg.yaml"}, nil, "", "from-yaml", 4, time.Minute, ":4000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(Sources{ConfigFile: tt.file, DotEnv: ".env", Lookup: env(tt.env), Flags: tt.flags, ReadFile: fsys.read})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.DefaultModel != tt.wantModel || cfg.MaxRetries != tt.wantRetry || cfg.Timeout != tt.wantTO || cfg.Listen != tt.wantAddr {
				t.Errorf("got model=%q retries=%d timeout=%v listen=%q; want %q %d %v %q",
					cfg.DefaultModel, cfg.MaxRetries, cfg.Timeout, cfg.Listen, tt.wantModel, tt.wantRetry, tt.wantTO, tt.wantAddr)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Load(Sources{Lookup: env(map[string]string{"TAOTOKEN_API_KEY": "sk-x"})})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":3000" || cfg.Upstream.BaseURL != "https://taotoken.net/api" || cfg.DefaultModel != "claude-sonnet-4-6" ||
		cfg.MaxRetries != 2 || cfg.Timeout != 10*time.Minute || cfg.MaxBody != 32<<20 || cfg.DrainTimeout != 30*time.Second {
		t.Errorf("defaults wrong: %+v", cfg)
	}
	ups := cfg.UpstreamConfigs()
	if len(ups) != 1 || ups[0].BaseURL != "https://taotoken.net/api" || ups[0].APIKey != "sk-x" {
		t.Errorf("default upstream = %v", ups)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		yaml     string
		wantLoad string // substring of the Load error
		wantVal  string // substring of the Validate error
	}{
		{"missing key", nil, "", "", "TAOTOKEN_API_KEY"},
		{"unknown yaml key", map[string]string{"TAOTOKEN_API_KEY": "k"}, "default_modle: x\n", "default_modle", ""},
		{"bad yaml value", map[string]string{"TAOTOKEN_API_KEY": "k"}, "max_retries: lots\n", "lots", ""},
		{"bad env int", map[string]string{"TAOTOKEN_API_KEY": "k", "TOLLGATE_MAX_RETRIES": "two"}, "", "TOLLGATE_MAX_RETRIES", ""},
		{"bad env duration", map[string]string{"TAOTOKEN_API_KEY": "k", "TOLLGATE_TIMEOUT": "soon"}, "", "TOLLGATE_TIMEOUT", ""},
		{"bad size", map[string]string{"TAOTOKEN_API_KEY": "k", "TOLLGATE_MAX_BODY": "big"}, "", "TOLLGATE_MAX_BODY", ""},
		{"bad port", map[string]string{"TAOTOKEN_API_KEY": "k", "PORT": "http"}, "", "PORT", ""},
		{"bad base url", map[string]string{"TAOTOKEN_API_KEY": "k", "TAOTOKEN_BASE_URL": "taotoken.net"}, "", "", "TAOTOKEN_BASE_URL"},
		{"negative retries", map[string]string{"TAOTOKEN_API_KEY": "k", "TOLLGATE_MAX_RETRIES": "-1"}, "", "", "TOLLGATE_MAX_RETRIES"},
		{"bad auth", map[string]string{"TAOTOKEN_API_KEY": "k", "TOLLGATE_AUTH": "maybe"}, "", "", "TOLLGATE_AUTH"},
		{"bad log format", map[string]string{"TAOTOKEN_API_KEY": "k", "TOLLGATE_LOG_FORMAT": "xml"}, "", "", "TOLLGATE_LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := files{"c.yaml": tt.yaml}
			file := ""
			if tt.yaml != "" {
				file = "c.yaml"
			}
			cfg, err := Load(Sources{ConfigFile: file, Lookup: env(tt.env), ReadFile: fsys.read})
			if tt.wantLoad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantLoad) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("Load error = %v; want one line mentioning %q", err, tt.wantLoad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantVal) {
				t.Fatalf("Validate error = %v; want one mentioning %q", err, tt.wantVal)
			}
		})
	}
	cfg, _ := Load(Sources{})
	if err := cfg.Validate(); !errors.Is(err, ErrMissingAPIKey) {
		t.Errorf("missing key error = %v; want ErrMissingAPIKey", err)
	}
	cfg.Demo = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("demo needs no key, got %v", err)
	}
}

func TestYAMLUpstreamsWithEnvRefs(t *testing.T) {
	fsys := files{"c.yaml": `
upstreams:
  - name: taotoken
    base_url: https://taotoken.net/api
    api_key: ${TT_KEY}
    models: ["*"]
    weight: 3
    timeout: 120s
  - name: openrouter
    base_url: https://openrouter.ai/api/v1
    api_key: ${OR_KEY}
    model_map: {claude-sonnet-4-6: anthropic/claude-sonnet-4.6}
models:
  fast: {targets: [gpt-4o-mini, qwen-turbo], strategy: lowest_latency}
routing: {strategy: weighted, fallback: true}
max_body: 8MiB
`}
	cfg, err := Load(Sources{ConfigFile: "c.yaml", Lookup: env(map[string]string{"TT_KEY": "sk-tt", "OR_KEY": "sk-or"}), ReadFile: fsys.read})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v (no TAOTOKEN_API_KEY is needed with upstreams)", err)
	}
	u := cfg.Upstreams
	if len(u) != 2 || u[0].APIKey != "sk-tt" || u[1].APIKey != "sk-or" || u[0].Timeout != 120*time.Second || u[0].Weight != 3 {
		t.Errorf("upstreams = %+v", u)
	}
	if u[1].ModelMap["claude-sonnet-4-6"] != "anthropic/claude-sonnet-4.6" {
		t.Errorf("model_map = %v", u[1].ModelMap)
	}
	if a := cfg.Models["fast"]; len(a.Targets) != 2 || a.Strategy != "lowest_latency" {
		t.Errorf("alias = %+v", a)
	}
	if cfg.MaxBody != 8<<20 {
		t.Errorf("max_body = %d", cfg.MaxBody)
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"32MiB", 32 << 20, true}, {"32mb", 32e6, true}, {"512k", 512 << 10, true},
		{"1048576", 1 << 20, true}, {"1 GiB", 1 << 30, true}, {"-1", 0, false}, {"lots", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
