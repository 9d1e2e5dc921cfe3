package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewPoolValidation(t *testing.T) {
	const secret = "sk-very-secret-key-123"
	good := func() Config { return Config{Name: "a", BaseURL: "https://taotoken.net/api", APIKey: secret} }
	with := func(f func(*Config)) []Config { c := good(); f(&c); return []Config{c} }
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no upstreams", Options{}, "no upstreams configured"},
		{"empty name", Options{Upstreams: with(func(c *Config) { c.Name = "" })}, "upstreams[0]: name is required"},
		{"space in name", Options{Upstreams: with(func(c *Config) { c.Name = "a b" })}, "must not contain spaces"},
		{"duplicate name", Options{Upstreams: []Config{good(), good()}}, `upstreams[1]: name "a" is used twice`},
		{"relative url", Options{Upstreams: with(func(c *Config) { c.BaseURL = "/api" })}, "base_url must be an absolute http(s) URL"},
		{"ftp url", Options{Upstreams: with(func(c *Config) { c.BaseURL = "ftp://x/api" })}, "base_url must be an absolute http(s) URL"},
		{"credentials in url", Options{Upstreams: with(func(c *Config) { c.BaseURL = "https://u:" + secret + "@x/api" })}, "must not contain credentials"},
		{"query in url", Options{Upstreams: with(func(c *Config) { c.BaseURL = "https://x/api?k=1" })}, "must not have a query"},
		{"negative weight", Options{Upstreams: with(func(c *Config) { c.Weight = -1 })}, "weight -1 must not be negative"},
		{"negative max_parallel", Options{Upstreams: with(func(c *Config) { c.MaxParallel = -2 })}, "max_parallel -2"},
		{"negative timeout", Options{Upstreams: with(func(c *Config) { c.Timeout = -time.Second })}, "timeout -1s"},
		{"negative price_factor", Options{Upstreams: with(func(c *Config) { c.PriceFactor = -1 })}, "price_factor"},
		{"negative price", Options{Upstreams: with(func(c *Config) { c.Prices = map[string]float64{"m": -1} })}, `prices["m"]`},
		{"empty model", Options{Upstreams: with(func(c *Config) { c.Models = []string{"gpt", " "} })}, "models must not contain an empty entry"},
		{"bad header name", Options{Upstreams: with(func(c *Config) { c.Headers = map[string]string{"X Bad": secret} })}, `header name "X Bad"`},
		{"header value newline", Options{Upstreams: with(func(c *Config) { c.Headers = map[string]string{"X-Key": secret + "\nX: y"} })}, `header "X-Key" value`},
		{"unknown strategy", Options{Upstreams: []Config{good()}, Routing: Routing{Strategy: "fastest"}}, `routing: unknown strategy "fastest"`},
		{"alias no targets", Options{Upstreams: []Config{good()}, Aliases: map[string]Alias{"smart": {}}}, `alias "smart": targets must not be empty`},
		{"alias glob name", Options{Upstreams: []Config{good()}, Aliases: map[string]Alias{"gpt*": {Targets: []string{"x"}}}}, `alias "gpt*": name must be`},
		{"alias bad strategy", Options{Upstreams: []Config{good()}, Aliases: map[string]Alias{"s": {Targets: []string{"x"}, Strategy: "nope"}}}, `alias "s": unknown strategy`},
		{"alias unserved target", Options{
			Upstreams: with(func(c *Config) { c.Models = []string{"gpt-4o"} }),
			Aliases:   map[string]Alias{"smart": {Targets: []string{"gpt-4o", "claude"}}},
		}, `alias "smart": target "claude" is served by no upstream`},
		{"breaker ratio", Options{Upstreams: []Config{good()}, Breaker: BreakerOptions{FailureRatio: 1.5}}, "failure_ratio 1.5 must be at most 1"},
		{"breaker cool_down", Options{Upstreams: []Config{good()}, Breaker: BreakerOptions{CoolDown: -1}}, "cool_down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPool(tt.opts, nil)
			if err == nil {
				t.Fatalf("NewPool succeeded; want error containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("NewPool error = %q; want it to contain %q", msg, tt.want)
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, secret) {
				t.Errorf("NewPool error is not a clean one-liner without secrets: %q", msg)
			}
		})
	}
	if _, err := NewPool(Options{Upstreams: []Config{good()}}, nil); err != nil {
		t.Errorf("NewPool(valid) = %v", err)
	}
}

func TestPlanPriorityAndModelMap(t *testing.T) {
	cfg := ups("a", "b", "c")
	cfg[0].Models = []string{"gpt-4o*"}
	cfg[1].Models = []string{"claude-*"}
	cfg[2].ModelMap = map[string]string{"gpt-4o": "openai/gpt-4o"}
	p := mustPool(t, Options{Upstreams: cfg, Routing: Routing{Strategy: StrategyPriority}})
	tests := []struct {
		model string
		want  []string
	}{
		{"gpt-4o", []string{"a:gpt-4o", "c:openai/gpt-4o"}},
		{"gpt-4o-mini", []string{"a:gpt-4o-mini", "c:gpt-4o-mini"}},
		{"claude-3.5-sonnet", []string{"b:claude-3.5-sonnet", "c:claude-3.5-sonnet"}},
		{"llama", []string{"c:llama"}},
	}
	for _, tt := range tests {
		for range 3 { // also from the cache
			plan, err := p.Plan(tt.model)
			if err != nil {
				t.Fatalf("Plan(%q): %v", tt.model, err)
			}
			if diff := cmp.Diff(tt.want, names(plan)); diff != "" {
				t.Errorf("Plan(%q) mismatch (-want +got):\n%s", tt.model, diff)
			}
			for _, tg := range plan {
				if tg.Alias != "" {
					t.Errorf("Plan(%q) target Alias = %q; want empty", tt.model, tg.Alias)
				}
			}
		}
	}
}

func TestPlanNoUpstream(t *testing.T) {
	cfg := ups("a")
	cfg[0].Models = []string{"gpt-4o"}
	p := mustPool(t, Options{Upstreams: cfg})
	_, err := p.Plan("claude")
	if !errors.Is(err, ErrNoUpstream) || !strings.Contains(err.Error(), `"claude"`) {
		t.Errorf("Plan(claude) error = %v; want ErrNoUpstream naming the model", err)
	}
}

func TestPlanWeightedSplit(t *testing.T) {
	cfg := ups("a", "b", "c")
	cfg[0].Weight, cfg[1].Weight, cfg[2].Weight = 1, 3, 6
	p := mustPool(t, Options{Upstreams: cfg, Rand: seededRand(42)})
	const n = 10000
	firsts := map[string]int{}
	seconds := map[string]int{}
	for range n {
		plan, err := p.Plan("m")
		if err != nil {
			t.Fatal(err)
		}
		if len(plan) != 3 || plan[0].Upstream == plan[1].Upstream || plan[1].Upstream == plan[2].Upstream || plan[0].Upstream == plan[2].Upstream {
			t.Fatalf("Plan = %v; want each upstream once", names(plan))
		}
		firsts[plan[0].Upstream.Name()]++
		seconds[plan[1].Upstream.Name()]++
	}
	for name, share := range map[string]float64{"a": 0.1, "b": 0.3, "c": 0.6} {
		got := float64(firsts[name]) / n
		if math.Abs(got-share) > 0.05*share {
			t.Errorf("upstream %s first in %.3f of plans; want %.3f ±5%%", name, got, share)
		}
	}
	// Fallbacks are weight-ordered too: c is the likeliest second choice
	// after a... P(second=c) = .1*6/9 + .3*6/7 ≈ .324; P(second=a) = .3*1/7 + .6*1/4 ≈ .193.
	if seconds["c"] <= seconds["a"] {
		t.Errorf("second choices %v; want c more often than a", seconds)
	}
}

func TestPlanLowestLatency(t *testing.T) {
	p := mustPool(t, Options{Upstreams: ups("slow", "fast"), Routing: Routing{Strategy: StrategyLowestLatency}, Rand: seededRand(7)})
	// With no samples both are "untried" and sort first in weighted order.
	seen := map[string]bool{}
	for range 50 {
		seen[first(t, p, "m")] = true
	}
	if !seen["slow"] || !seen["fast"] {
		t.Fatalf("untried upstreams first: saw %v; want both", seen)
	}
	slow, fast := p.Upstream("slow"), p.Upstream("fast")
	run(t, slow, Result{Status: 200, TTFB: 800 * time.Millisecond})
	// fast has no sample yet, so it must be tried first.
	for range 20 {
		if got := first(t, p, "m"); got != "fast" {
			t.Fatalf("first = %s; want the untried upstream fast", got)
		}
	}
	for range 10 {
		run(t, fast, Result{Status: 200, TTFB: 50 * time.Millisecond})
		run(t, slow, Result{Status: 200, TTFB: 900 * time.Millisecond})
	}
	counts := map[string]int{}
	for range 1000 {
		counts[first(t, p, "m")]++
	}
	// 90% exploit (fast) + half of the 10% exploration ≈ 95%.
	if counts["fast"] < 900 || counts["slow"] < 10 {
		t.Errorf("first choices %v; want fast ≥ 900 and slow still explored", counts)
	}
	// Latency changes: fast degrades, slow recovers; traffic follows.
	for range 30 {
		run(t, fast, Result{Status: 200, TTFB: 2 * time.Second})
		run(t, slow, Result{Status: 200, TTFB: 20 * time.Millisecond})
	}
	clear(counts)
	for range 1000 {
		counts[first(t, p, "m")]++
	}
	if counts["slow"] < 900 {
		t.Errorf("after recovery first choices %v; want slow ≥ 900", counts)
	}
	// Failures and 4xx do not count as latency samples.
	if st := p.Upstream("slow").status(time.Now()); st.LatencyMS > 100 {
		t.Errorf("slow latency = %v ms; want the recent fast samples", st.LatencyMS)
	}
}

func TestPlanLeastBusy(t *testing.T) {
	p := mustPool(t, Options{Upstreams: ups("a", "b", "c"), Routing: Routing{Strategy: StrategyLeastBusy}})
	var held []*Attempt
	hold := func(name string, n int) {
		for range n {
			a, err := p.Upstream(name).Acquire(t.Context(), 0)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, a)
		}
	}
	hold("a", 3)
	hold("b", 1)
	hold("c", 2)
	for range 20 {
		plan, _ := p.Plan("m")
		if diff := cmp.Diff([]string{"b:m", "c:m", "a:m"}, names(plan)); diff != "" {
			t.Fatalf("Plan mismatch (-want +got):\n%s", diff)
		}
	}
	for _, a := range held {
		a.Done(okResult)
	}
	// All idle: ties are broken by weight, so every upstream gets first place.
	seen := map[string]bool{}
	for range 100 {
		seen[first(t, p, "m")] = true
	}
	if len(seen) != 3 {
		t.Errorf("idle least_busy first choices = %v; want all three", seen)
	}
}

func TestPlanLowestCost(t *testing.T) {
	prices := map[string]int64{"gpt-4o": 10e9, "openai/gpt-4o": 9e9}
	cfg := ups("list", "mapped", "discount", "override", "unpriced")
	cfg[1].ModelMap = map[string]string{"gpt-4o": "openai/gpt-4o"} // priced as sent: 9
	cfg[2].PriceFactor = 0.85                                      // 8.5
	cfg[3].Prices = map[string]float64{"gpt-4o": 8}                // 8
	cfg[4].ModelMap = map[string]string{"gpt-4o": "mystery"}       // unknown: last
	p := mustPool(t, Options{
		Upstreams: cfg,
		Routing:   Routing{Strategy: StrategyLowestCost},
		Price:     func(m string) (int64, bool) { v, ok := prices[m]; return v, ok },
	})
	want := []string{"override:gpt-4o", "discount:gpt-4o", "mapped:openai/gpt-4o", "list:gpt-4o", "unpriced:mystery"}
	for range 10 {
		plan, _ := p.Plan("gpt-4o")
		if diff := cmp.Diff(want, names(plan)); diff != "" {
			t.Fatalf("Plan mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestPlanAlias(t *testing.T) {
	cfg := ups("a", "b", "c")
	cfg[0].Models = []string{"gpt-4o"}
	cfg[1].Models = []string{"gpt-4o", "gpt-4o-mini"}
	cfg[1].ModelMap = map[string]string{"gpt-4o-mini": "openai/gpt-4o-mini"}
	cfg[2].Models = []string{"deepseek-*"}
	aliases := map[string]Alias{
		"smart":  {Targets: []string{"gpt-4o", "deepseek-chat", "gpt-4o-mini"}, Strategy: StrategyPriority},
		"gpt-4o": {Targets: []string{"gpt-4o", "gpt-4o-mini"}}, // shadows the model: adds a fallback
	}
	tests := []struct {
		name     string
		fallback *bool
		model    string
		want     []string
	}{
		{"alias in order", nil, "smart", []string{"a:gpt-4o", "b:gpt-4o", "c:deepseek-chat", "b:openai/gpt-4o-mini"}},
		{"alias shadows model", nil, "gpt-4o", []string{"a:gpt-4o", "b:gpt-4o", "b:openai/gpt-4o-mini"}},
		{"fallback off alias", boolp(false), "smart", []string{"a:gpt-4o"}},
		{"fallback off model", boolp(false), "deepseek-r1", []string{"c:deepseek-r1"}},
		{"fallback on model", boolp(true), "gpt-4o-mini", []string{"b:openai/gpt-4o-mini"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPool(t, Options{Upstreams: cfg, Aliases: aliases,
				Routing: Routing{Strategy: StrategyPriority, Fallback: tt.fallback}})
			plan, err := p.Plan(tt.model)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, names(plan)); diff != "" {
				t.Errorf("Plan(%q) mismatch (-want +got):\n%s", tt.model, diff)
			}
			_, isAlias := aliases[tt.model]
			for _, tg := range plan {
				if isAlias && tg.Alias != tt.model {
					t.Errorf("target Alias = %q; want %q", tg.Alias, tt.model)
				}
			}
		})
	}
}

func TestPlanAliasSkipsOpenUpstreams(t *testing.T) {
	clk := newFakeClock()
	cfg := ups("a", "b")
	cfg[0].Models = []string{"big"}
	cfg[1].Models = []string{"small"}
	p := mustPool(t, Options{Upstreams: cfg, Now: clk.Now, Routing: Routing{Fallback: boolp(false)},
		Aliases: map[string]Alias{"auto": {Targets: []string{"big", "small"}}}})
	for range 5 {
		runModel(t, p.Upstream("a"), "big", failResult)
	}
	// (a, big) is open: the plan starts with the next target, and with fallback
	// off that single candidate is the usable one.
	plan, _ := p.Plan("auto")
	if diff := cmp.Diff([]string{"b:small"}, names(plan)); diff != "" {
		t.Errorf("Plan mismatch (-want +got):\n%s", diff)
	}
}

func TestModels(t *testing.T) {
	cfg := ups("a", "b", "c")
	cfg[0].Models = []string{"gpt-4o", "gpt-4o-mini"}
	cfg[1].Models = []string{"gpt-4o", "claude-*", "deepseek-chat"}
	// c serves "*" by default: nothing exact to list.
	p := mustPool(t, Options{Upstreams: cfg, Aliases: map[string]Alias{
		"smart": {Targets: []string{"gpt-4o"}}, "gpt-4o": {Targets: []string{"gpt-4o"}},
	}})
	want := []string{"deepseek-chat", "gpt-4o", "gpt-4o-mini", "smart"}
	if diff := cmp.Diff(want, p.Models()); diff != "" {
		t.Errorf("Models mismatch (-want +got):\n%s", diff)
	}
	p.Models()[0] = "mutated"
	if p.Models()[0] != "deepseek-chat" {
		t.Errorf("Models returned the pool's own slice")
	}
}

func TestURLAndHeaders(t *testing.T) {
	tests := []struct {
		base, path, want string
	}{
		{"https://taotoken.net/api", "/chat/completions", "https://taotoken.net/api/chat/completions"},
		{"https://taotoken.net/api/", "/chat/completions", "https://taotoken.net/api/chat/completions"},
		{"https://taotoken.net/api//", "chat/completions", "https://taotoken.net/api/chat/completions"},
		{"http://127.0.0.1:8000", "/models", "http://127.0.0.1:8000/models"},
		{"https://api.openai.com/v1", "/embeddings", "https://api.openai.com/v1/embeddings"},
	}
	for _, tt := range tests {
		p := mustPool(t, Options{Upstreams: []Config{{Name: "a", BaseURL: tt.base}}})
		if got := p.Upstream("a").URL(tt.path); got != tt.want {
			t.Errorf("URL(%q) with base %q = %q; want %q", tt.path, tt.base, got, tt.want)
		}
	}

	p := mustPool(t, Options{Upstreams: []Config{
		{Name: "keyed", BaseURL: "https://x", APIKey: "sk-abc", Headers: map[string]string{"http-referer": "https://app"}},
		{Name: "keyless", BaseURL: "http://127.0.0.1:11434/v1"},
		{Name: "azure", BaseURL: "https://y", APIKey: "sk-abc", Headers: map[string]string{"Authorization": "", "api-key": "az"}},
	}})
	headerTests := []struct {
		name string
		want map[string][]string
	}{
		{"keyed", map[string][]string{"Authorization": {"Bearer sk-abc"}, "Http-Referer": {"https://app"}, "Accept": {"x"}}},
		{"keyless", map[string][]string{"Accept": {"x"}}},
		{"azure", map[string][]string{"Api-Key": {"az"}, "Accept": {"x"}}},
	}
	for _, tt := range headerTests {
		h := map[string][]string{"Accept": {"x"}}
		p.Upstream(tt.name).SetHeaders(h)
		if diff := cmp.Diff(tt.want, h); diff != "" {
			t.Errorf("SetHeaders(%s) mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	if got := p.Upstream("keyed").Timeout(); got != 0 {
		t.Errorf("Timeout() = %v; want 0", got)
	}
}

func TestStatusHasNoSecrets(t *testing.T) {
	const key = "sk-live-0123456789abcdef"
	const hdr = "hdr-secret-value-xyz"
	cfg := Config{Name: "a", BaseURL: "https://x/api/", APIKey: key, Headers: map[string]string{"X-Api-Key": hdr}, MaxParallel: 4, Weight: 2}
	clk := newFakeClock()
	p := mustPool(t, Options{Upstreams: []Config{cfg}, Now: clk.Now})
	u := p.Upstream("a")
	run(t, u, Result{Err: fmt.Errorf("dial tcp: auth %s / %s refused", key, hdr)})
	b, err := json.Marshal(p.Status())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), fmt.Sprint(cfg), fmt.Sprintf("%v", cfg)} {
		if strings.Contains(s, key) || strings.Contains(s, hdr) {
			t.Fatalf("output contains a secret: %s", s)
		}
	}
	got := p.Status()[0]
	want := Status{
		Name: "a", BaseURL: "https://x/api", API: "openai", Models: []string{"*"}, Weight: 2, State: StateClosed,
		MaxParallel: 4, ErrorRatio: 1, Requests: 1, Failures: 1,
		LastError: "transport: dial tcp: auth [redacted] / [redacted] refused", LastErrorAt: clk.Now(),
		ModelHealth: []ModelStatus{{
			Model: "m", State: StateClosed, ConsecutiveFailures: 1, ErrorRatio: 1, Requests: 1, Failures: 1,
			LastError: "transport: dial tcp: auth [redacted] / [redacted] refused", LastErrorAt: clk.Now(),
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Status mismatch (-want +got):\n%s", diff)
	}
	for _, field := range []string{`"base_url"`, `"in_flight"`, `"latency_ms"`, `"error_ratio"`, `"last_error_at"`, `"max_parallel"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("Status JSON lacks %s: %s", field, b)
		}
	}
}

func TestRouteCacheBounded(t *testing.T) {
	p := mustPool(t, Options{Upstreams: ups("a")})
	for i := range 3 * maxCachedRoutes {
		if _, err := p.Plan(fmt.Sprintf("model-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.RLock()
	n := len(p.cache)
	p.mu.RUnlock()
	if n > maxCachedRoutes {
		t.Errorf("route cache holds %d entries; want ≤ %d", n, maxCachedRoutes)
	}
	long := strings.Repeat("x", 10000)
	if plan, err := p.Plan(long); err != nil || len(plan) != 1 {
		t.Fatalf("Plan(long) = %v, %v", plan, err)
	}
	p.mu.RLock()
	_, cached := p.cache[long]
	p.mu.RUnlock()
	if cached {
		t.Errorf("a 10000-byte model name was cached")
	}
}

func BenchmarkPlan(b *testing.B) {
	cfg := ups("a", "b", "c")
	cfg[0].Weight, cfg[1].Weight, cfg[2].Weight = 5, 3, 2
	cfg[1].ModelMap = map[string]string{"gpt-4o": "openai/gpt-4o"}
	p, err := NewPool(Options{Upstreams: cfg}, nil) // real clock and math/rand/v2
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		plan, err := p.Plan("gpt-4o")
		if err != nil || len(plan) != 3 {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequest is one request's health bookkeeping: Plan, Acquire of
// the first target, Done.
func BenchmarkRequest(b *testing.B) {
	cfg := ups("a", "b", "c")
	p, err := NewPool(Options{Upstreams: cfg}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		plan, err := p.Plan("gpt-4o")
		if err != nil {
			b.Fatal(err)
		}
		a, err := plan[0].Acquire(b.Context(), 0)
		if err != nil {
			b.Fatal(err)
		}
		a.Done(Result{Status: 200, TTFB: time.Millisecond})
	}
}
