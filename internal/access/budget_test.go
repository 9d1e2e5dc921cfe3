package access

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/store"
)

func oerr(t *testing.T, err error) *openai.Error {
	t.Helper()
	oe, ok := errors.AsType[*openai.Error](err)
	if !ok {
		t.Fatalf("error %v is not an openai.Error", err)
	}
	return oe
}

func TestUnpricedModel(t *testing.T) {
	pB, kB := key(t, store.Key{Name: "budget", BudgetNano: 1e9, BudgetPeriod: "day"})
	pF, kF := key(t, store.Key{Name: "free"})
	var logs bytes.Buffer
	var refused, allowed int
	g := newGate(t, kB, kF)
	g.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	g.OnUnpriced = func(r bool) {
		if r {
			refused++
		} else {
			allowed++
		}
	}

	// A key with a budget is refused, twice, but the log says it once.
	for range 2 {
		_, err := g.Admit(t.Context(), call(pB, "mystery-model", 10))
		oe := oerr(t, err)
		if oe.Status != 403 || oe.Code != "model_not_priced" || !strings.Contains(oe.Message, `"mystery-model"`) ||
			!strings.Contains(oe.Message, "no price") {
			t.Fatalf("refusal = %d %s %q; want 403 model_not_priced naming the model", oe.Status, oe.Code, oe.Message)
		}
	}
	if n := strings.Count(logs.String(), "mystery-model"); n != 1 || refused != 2 {
		t.Errorf("logged %d times, counted %d refusals; want 1 and 2\n%s", n, refused, logs.String())
	}
	// A key without a budget is not concerned.
	if _, err := g.Admit(t.Context(), call(pF, "mystery-model", 10)); err != nil {
		t.Errorf("key without budget: %v", err)
	}
	// limits.unpriced: allow serves it.
	g.AllowUnpriced = true
	tk, err := g.Admit(t.Context(), call(pB, "mystery-model", 10))
	if err != nil || allowed != 1 {
		t.Fatalf("with unpriced allowed: %v (allowed %d)", err, allowed)
	}
	tk.Settle(&ledger.Record{})
}

func TestUnpricedTarget(t *testing.T) {
	p, k := key(t, store.Key{Name: "budget", BudgetNano: 1e12, BudgetPeriod: "day"})
	g := newGate(t, k)
	g.Targets = func(model string) []Target {
		if model == "smart" { // an alias: priced at one upstream, not at the other
			return []Target{{"a", "m"}, {"b", "m-unpriced"}}
		}
		return nil
	}
	_, err := g.Admit(t.Context(), call(p, "smart", 10))
	if oe := oerr(t, err); oe.Status != 403 || !strings.Contains(oe.Message, "m-unpriced") {
		t.Errorf("alias with an unpriced target = %d %q; want 403 naming m-unpriced", oe.Status, oe.Message)
	}
	g.Prices.SetOverrides([]ledger.Entry{{Model: "m-unpriced", Upstream: "b", Rate: ledger.Rate{Output: 5e9}}})
	tk, err := g.Admit(t.Context(), call(p, "smart", 10))
	if err != nil {
		t.Fatalf("alias with every target priced: %v", err)
	}
	tk.Settle(&ledger.Record{})
}

func withHead(c *proxy.Call, maxTokens, n int64) *proxy.Call {
	c.Head.MaxTokens, c.Head.N = maxTokens, n
	return c
}

func TestBudgetExplainsItself(t *testing.T) {
	// Budget 0.05 per day; "m" costs 1000 nano-units a token; the default
	// max_tokens (100) reserves 10 + 100 tokens = 110000. Make the default
	// big enough not to fit: 60000 tokens = 0.06.
	p, k := key(t, store.Key{Name: "small", BudgetNano: 50_000_000, BudgetPeriod: "day"})
	g := newGate(t, k)
	g.Defaults.MaxTokens = 60_000
	g.Currency = "CNY"
	sh, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 3, 1, 20, 30, 0, 0, sh)
	g.Now = func() time.Time { return now }

	tk, err := g.Admit(t.Context(), call(p, "m", 10))
	oe := oerr(t, err)
	for _, want := range []string{"0.06001 CNY", "0.05 CNY", "Lower max_tokens", "default of 60000"} {
		if !strings.Contains(oe.Message, want) {
			t.Errorf("message %q lacks %q", oe.Message, want)
		}
	}
	if strings.Contains(oe.Message, "used up") || oe.Status != 429 || oe.Code != "insufficient_quota" {
		t.Errorf("a fresh key's refusal = %d %s %q; must not say the budget is used up", oe.Status, oe.Code, oe.Message)
	}
	if h := tk.Header; h.Get(HeaderBudgetRemaining) != "0.05" || h.Get(HeaderBudgetLimit) != "0.05" || h.Get(HeaderBudgetCurrency) != "CNY" {
		t.Errorf("budget headers = %v", h)
	}

	// n multiplies the completion reserved: 4 x 15000 does not fit, 1 x 15000 does.
	if _, err := g.Admit(t.Context(), withHead(call(p, "m", 10), 15_000, 4)); !strings.Contains(oerr(t, err).Message, "n=4") {
		t.Errorf("n=4 refusal = %v; want it explained", err)
	}
	tk, err = g.Admit(t.Context(), withHead(call(p, "m", 10), 15_000, 1))
	if err != nil {
		t.Fatalf("max_tokens 15000: %v", err)
	}
	tk.Settle(&ledger.Record{CostNanoUSD: 50_000_000})

	_, err = g.Admit(t.Context(), withHead(call(p, "m", 10), 1, 1))
	oe = oerr(t, err)
	if !strings.Contains(oe.Message, "used up") || !strings.Contains(oe.Message, "resets in") || oe.Header.Get("Retry-After") == "" {
		t.Errorf("spent budget: %q (headers %v); want 'used up', when it resets, Retry-After", oe.Message, oe.Header)
	}
}

func TestBudgetWarn(t *testing.T) {
	p, k := key(t, store.Key{Name: "w", BudgetNano: 10_000_000, BudgetPeriod: "month"})
	g := newGate(t, k)
	var logs bytes.Buffer
	warned := 0
	g.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	g.BudgetWarn = 0.8
	g.OnBudgetWarn = func() { warned++ }
	spend := []int64{5_000_000, 3_500_000, 100_000, 100_000}
	for _, cost := range spend {
		tk, err := g.Admit(t.Context(), withHead(call(p, "m", 1), 1, 1))
		if err != nil {
			t.Fatal(err)
		}
		tk.Settle(&ledger.Record{CostNanoUSD: cost})
	}
	// Spend passed 80% after the second call: the third and fourth admits
	// see it, and only the first of them warns.
	if warned != 1 || strings.Count(logs.String(), "budget nearly used") != 1 {
		t.Errorf("warned %d times; want once\n%s", warned, logs.String())
	}
}
