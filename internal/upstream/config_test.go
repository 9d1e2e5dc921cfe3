package upstream

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// TestConfigYAML checks the YAML field names users write.
func TestConfigYAML(t *testing.T) {
	const doc = `
upstreams:
  - name: taotoken
    base_url: https://taotoken.net/api
    api_key: sk-yaml-secret-000
    models: ["gpt-4o*", "deepseek-chat"]
    weight: 3
    max_parallel: 8
    timeout: 45s
    headers: {HTTP-Referer: "https://app.example"}
    model_map: {gpt-4o: openai/gpt-4o}
    prices: {openai/gpt-4o: 6.25}
    price_factor: 0.9
models:
  smart: {targets: [gpt-4o, deepseek-chat], strategy: priority}
routing: {strategy: lowest_latency, fallback: false}
breaker: {consecutive_failures: 3, failure_ratio: 0.4, min_requests: 10, window: 1m, cool_down: 15s}
`
	var got struct {
		Upstreams []Config         `yaml:"upstreams"`
		Models    map[string]Alias `yaml:"models"`
		Routing   Routing          `yaml:"routing"`
		Breaker   BreakerOptions   `yaml:"breaker"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	wantUp := Config{
		Name: "taotoken", BaseURL: "https://taotoken.net/api", APIKey: "sk-yaml-secret-000",
		Models: []string{"gpt-4o*", "deepseek-chat"}, Weight: 3, MaxParallel: 8, Timeout: 45 * time.Second,
		Headers: map[string]string{"HTTP-Referer": "https://app.example"}, ModelMap: map[string]string{"gpt-4o": "openai/gpt-4o"},
		Prices: map[string]float64{"openai/gpt-4o": 6.25}, PriceFactor: 0.9,
	}
	if diff := cmp.Diff([]Config{wantUp}, got.Upstreams); diff != "" {
		t.Errorf("upstreams mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(BreakerOptions{3, 0.4, 10, time.Minute, 15 * time.Second}, got.Breaker); diff != "" {
		t.Errorf("breaker mismatch (-want +got):\n%s", diff)
	}
	var logs bytes.Buffer
	p, err := NewPool(Options{Upstreams: got.Upstreams, Aliases: got.Models, Routing: got.Routing, Breaker: got.Breaker,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	if plan, _ := p.Plan("smart"); len(plan) != 1 || plan[0].Model != "openai/gpt-4o" {
		t.Errorf("Plan(smart) = %v; want one candidate (fallback off) sending openai/gpt-4o", names(plan))
	}
	for range 3 {
		run(t, p.Upstream("taotoken"), failResult)
	}
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "upstream", got.Upstreams[0])
	printed := fmt.Sprintf("%v %+v %#v %s %v", got.Upstreams[0], got.Upstreams[0], got.Upstreams[0], got.Upstreams, got)
	for _, s := range []string{printed, logs.String()} {
		if strings.Contains(s, "sk-yaml-secret") {
			t.Errorf("secret printed: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "to=open") {
		t.Errorf("logs lack the circuit opening: %s", logs.String())
	}
}
