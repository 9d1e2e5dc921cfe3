package access

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/limit"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/store"
)

type keyList []store.Key

func (k keyList) ListKeys(context.Context) ([]store.Key, error) { return k, nil }

type noSpend struct{}

func (noSpend) KeySpend(context.Context, string, time.Time) (int64, error) { return 0, nil }

// newGate returns a gate over the given keys, with memory limits.
func newGate(t *testing.T, keys ...store.Key) *Gate {
	t.Helper()
	cache := auth.NewCache(keyList(keys), time.Hour, nil)
	if err := cache.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := limit.NewMemory(limit.MemoryOptions{Spend: noSpend{}})
	return &Gate{
		Keys: cache, RPM: limit.NewMemory(limit.MemoryOptions{}), TPM: limit.NewMemory(limit.MemoryOptions{}),
		IP: limit.NewMemory(limit.MemoryOptions{}), Parallel: b, Budget: b,
		Defaults: Defaults{MaxTokens: 100},
		Price: func(model string, p, c int64) (int64, bool) {
			return p*1000 + c*1000, model != "free-unknown"
		},
	}
}

func key(t *testing.T, k store.Key) (string, store.Key) {
	plain, hash, prefix := auth.GenerateKey()
	k.Hash, k.Prefix = hash, prefix
	if k.ID == "" {
		k.ID = "id-" + k.Name
	}
	return plain, k
}

func call(plain, model string, prompt int64) *proxy.Call {
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	if plain != "" {
		r.Header.Set("Authorization", "Bearer "+plain)
	}
	return &proxy.Call{Request: r, Endpoint: "/v1/chat/completions", Head: proxy.Head{Model: model, Metered: true}, ClientIP: "10.0.0.1", PromptTokens: func() int64 { return prompt }}
}

func status(err error) int {
	if oe, ok := errors.AsType[*openai.Error](err); ok {
		return oe.Status
	}
	if err != nil {
		return -1
	}
	return 200
}

func TestGateDecisions(t *testing.T) {
	pOK, kOK := key(t, store.Key{Name: "ok", Models: []string{"gpt-4o*"}})
	pRPM, kRPM := key(t, store.Key{Name: "rpm", RPM: 1})
	pPar, kPar := key(t, store.Key{Name: "par", MaxParallel: 1})
	pTPM, kTPM := key(t, store.Key{Name: "tpm", TPM: 50})
	g := newGate(t, kOK, kRPM, kPar, kTPM)
	ctx := t.Context()

	tests := []struct {
		name   string
		c      *proxy.Call
		want   int
		header string // a response header that must be set
	}{
		{"allowed", call(pOK, "gpt-4o-mini", 10), 200, ""},
		{"model outside the key's globs", call(pOK, "claude-sonnet-4-6", 10), 403, ""},
		{"no key", call("", "gpt-4o", 10), 401, ""},
		{"unknown key", call("tg-UNKNOWN", "gpt-4o", 10), 401, ""},
		{"rpm first", call(pRPM, "m", 1), 200, "X-Ratelimit-Remaining-Requests"},
		{"rpm second", call(pRPM, "m", 1), 429, "Retry-After"},
		{"tpm within", call(pTPM, "m", 40), 200, "X-Ratelimit-Remaining-Tokens"},
		{"tpm over", call(pTPM, "m", 40), 429, "Retry-After"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, err := g.Admit(ctx, tt.c)
			if got := status(err); got != tt.want {
				t.Fatalf("Admit = %d (%v); want %d", got, err, tt.want)
			}
			if tt.header != "" {
				h := tk.Header
				if oe, ok := errors.AsType[*openai.Error](err); ok && oe.Header.Get(tt.header) != "" {
					h = oe.Header
				}
				if h.Get(tt.header) == "" {
					t.Errorf("header %s missing (ticket %v)", tt.header, tk.Header)
				}
			}
			if err == nil && tk.Settle != nil {
				tk.Settle(&ledger.Record{TotalTokens: tt.c.PromptTokens()})
			}
		})
	}

	t.Run("parallel", func(t *testing.T) {
		first, err := g.Admit(ctx, call(pPar, "m", 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Admit(ctx, call(pPar, "m", 1)); status(err) != 429 {
			t.Fatalf("second parallel call = %v; want 429", err)
		}
		first.Settle(&ledger.Record{})
		if tk, err := g.Admit(ctx, call(pPar, "m", 1)); err != nil {
			t.Fatalf("after release: %v", err)
		} else {
			tk.Settle(&ledger.Record{})
		}
	})
}

func TestGateBudget(t *testing.T) {
	// Each call reserves (10+100)*1000 = 110000 nano; the budget fits two.
	plain, k := key(t, store.Key{Name: "b", BudgetNano: 250_000, BudgetPeriod: "total"})
	g := newGate(t, k)
	var admitted int
	for range 5 {
		tk, err := g.Admit(t.Context(), call(plain, "m", 10))
		if err != nil {
			oe, _ := errors.AsType[*openai.Error](err)
			if oe == nil || oe.Status != 429 || oe.Type != openai.TypeInsufficient {
				t.Fatalf("refusal %v; want 429 insufficient_quota", err)
			}
			continue
		}
		admitted++
		tk.Settle(&ledger.Record{CostNanoUSD: 100_000})
	}
	if admitted != 2 {
		t.Errorf("admitted %d calls; want 2 (spend may never exceed the budget)", admitted)
	}
}

func TestAnonymousIPLimit(t *testing.T) {
	g := newGate(t)
	g.Keys = nil
	g.Defaults.IPRPM = 2
	var codes []int
	for range 3 {
		_, err := g.Admit(t.Context(), call("", "m", 1))
		codes = append(codes, status(err))
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("codes %v; want [200 200 429]", codes)
	}
}

func TestFormatReset(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{{120 * time.Millisecond, "120ms"}, {time.Second, "1s"}, {6 * time.Minute, "6m0s"}, {1500 * time.Millisecond, "2s"}}
	for _, tt := range tests {
		if got := formatReset(tt.d); got != tt.want {
			t.Errorf("formatReset(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
}
