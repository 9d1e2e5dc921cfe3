// Package access decides who may call what, how often and up to how much: it
// joins the gateway key cache (auth) with rate limits, parallel caps and
// budgets (limit) into the proxy's Gate.
package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/limit"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/store"
)

// Defaults are the global limits; a key's own non-zero values override them.
// Zero means unlimited.
type Defaults struct {
	RPM, TPM, MaxParallel int
	// IPRPM limits requests per client IP when auth is disabled.
	IPRPM int
	// MaxTokens is the completion size assumed when reserving budget for a
	// request without max_tokens.
	MaxTokens int64
}

// Gate implements proxy.Gate.
type Gate struct {
	// Keys answers key lookups from memory; nil means auth is disabled.
	Keys *auth.Cache
	// RPM, TPM and IP are separate limiter namespaces.
	RPM, TPM, IP limit.Limiter
	Parallel     limit.Concurrency
	Budget       limit.Budget
	Defaults     Defaults
	// Prices prices budget reservations and tells which models have a
	// price; nil reserves nothing up front and treats every model as priced.
	Prices *ledger.Pricer
	// Targets lists where a model may be served (alias expansion, model
	// maps); nil or empty: the model itself at its dearest price anywhere.
	Targets func(model string) []Target
	// AllowUnpriced serves a key with a budget a model without a price
	// (limits.unpriced: allow); by default it is refused with 403, since
	// the budget could not count it.
	AllowUnpriced bool
	// BudgetWarn is the fraction of a budget whose settled spend is logged
	// and counted (OnBudgetWarn) once per key and period; 0 turns it off.
	BudgetWarn float64
	// Currency names the deployment currency in messages and headers
	// (default USD).
	Currency string
	// Now is the clock for "resets in" texts; nil means time.Now.
	Now func() time.Time
	// Logger receives budget warnings and the first unpriced call of each
	// model; nil logs nothing.
	Logger *slog.Logger
	// OnUnpriced is called for every call of a model without a price by a
	// key with a budget (refused or not), for a metric.
	OnUnpriced func(refused bool)
	// OnBudgetWarn is called when a key's spend reaches BudgetWarn, once
	// per key and period, for a metric.
	OnBudgetWarn func()

	warned         sync.Map // key id → period start (time.Time) last warned about
	loggedUnpriced sync.Map // model → struct{}: first unpriced call logged
	loggedCount    atomic.Int64
}

var _ proxy.Gate = (*Gate)(nil)

var _ proxy.Authenticator = (*Gate)(nil)

// Authenticate checks the request's gateway key (none without keys),
// before the engine reads the body.
func (g *Gate) Authenticate(_ context.Context, r *http.Request) (proxy.Caller, error) {
	if g.Keys == nil {
		return proxy.Caller{}, nil
	}
	key, err := g.lookup(r)
	if err != nil {
		return proxy.Caller{}, err
	}
	return proxy.Caller{KeyID: key.ID, KeyName: key.Name, Auth: key}, nil
}

func (g *Gate) lookup(r *http.Request) (*store.Key, error) {
	key, err := g.Keys.Lookup(auth.KeyFromRequest(r))
	if err != nil {
		if errors.Is(err, auth.ErrNotReady) {
			return nil, openai.NewError(http.StatusServiceUnavailable, openai.TypeServer, "keys_not_ready", err.Error())
		}
		return nil, openai.NewError(http.StatusUnauthorized, openai.TypeAuthentication, "invalid_api_key", err.Error())
	}
	return key, nil
}

// Admit checks the key (unless Authenticate did), the model, the limits and
// the budget, in that order.
func (g *Gate) Admit(ctx context.Context, c *proxy.Call) (*proxy.Ticket, error) {
	if g.Keys == nil {
		return g.admitAnonymous(ctx, c)
	}
	key, _ := c.Auth.(*store.Key)
	if key == nil {
		var err error
		if key, err = g.lookup(c.Request); err != nil {
			return nil, err
		}
	}
	t := &proxy.Ticket{KeyID: key.ID, KeyName: key.Name} // Header is made by the first limit that sets one
	if c.Head.Model != "" && !auth.ModelAllowed(key, c.Head.Model) {
		return t, openai.NewError(http.StatusForbidden, openai.TypePermission, "model_not_allowed",
			fmt.Sprintf("this API key may not use the model %q", c.Head.Model))
	}
	return g.admitKey(ctx, c, key, t)
}

func (g *Gate) admitAnonymous(ctx context.Context, c *proxy.Call) (*proxy.Ticket, error) {
	if g.Defaults.IPRPM <= 0 || g.IP == nil {
		return nil, nil
	}
	t := &proxy.Ticket{}
	d, _ := g.IP.Allow(ctx, c.ClientIP, g.Defaults.IPRPM, 1)
	setHeaders(t, "requests", d)
	if !d.Allowed {
		return t, rateLimited(d, "requests per minute for this client address")
	}
	return t, nil
}

func (g *Gate) admitKey(ctx context.Context, c *proxy.Call, key *store.Key, t *proxy.Ticket) (*proxy.Ticket, error) {
	rpm := orDefault(key.RPM, g.Defaults.RPM)
	tpm := orDefault(key.TPM, g.Defaults.TPM)
	par := orDefault(key.MaxParallel, g.Defaults.MaxParallel)

	if rpm > 0 && g.RPM != nil {
		d, _ := g.RPM.Allow(ctx, key.ID, rpm, 1)
		setHeaders(t, "requests", d)
		if !d.Allowed {
			return t, rateLimited(d, "requests per minute")
		}
	}
	tokens := 0
	if tpm > 0 && g.TPM != nil {
		tokens = int(c.PromptTokens())
		d, _ := g.TPM.Allow(ctx, key.ID, tpm, tokens)
		setHeaders(t, "tokens", d)
		if !d.Allowed {
			return t, rateLimited(d, "tokens per minute")
		}
	}
	var release func()
	if par > 0 && g.Parallel != nil {
		rel, ok, _ := g.Parallel.Acquire(ctx, key.ID, par)
		if !ok {
			e := openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, "rate_limit_exceeded",
				fmt.Sprintf("this API key already has %d requests in flight", par))
			e.Header = http.Header{"Retry-After": {"1"}}
			return t, e
		}
		release = rel
	}
	var res limit.Reservation
	if key.BudgetNano > 0 && g.Budget != nil {
		r, err := g.reserveBudget(ctx, c, key, t)
		if err != nil {
			if release != nil {
				release()
			}
			return t, err
		}
		res = r
	}
	if release == nil && !(tpm > 0 && g.TPM != nil) && !res.Held() {
		return t, nil // nothing to settle: no closure per request
	}
	t.Settle = func(rec *ledger.Record) {
		if release != nil {
			release()
		}
		sctx := context.WithoutCancel(ctx)
		if tpm > 0 && g.TPM != nil && rec.TotalTokens > 0 {
			// Give back what the estimate over-took, or take what it missed.
			_ = g.TPM.Refund(sctx, key.ID, tpm, tokens-int(rec.TotalTokens))
		}
		if res.Held() {
			_ = g.Budget.Settle(sctx, res, rec.CostNanoUSD)
		}
	}
	return t, nil
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func rateLimited(d limit.Decision, what string) *openai.Error {
	e := openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, "rate_limit_exceeded",
		fmt.Sprintf("rate limit reached: %d %s; retry after %s", d.Limit, what, ceilSeconds(d.RetryAfter)+"s"))
	e.Header = http.Header{"Retry-After": {ceilSeconds(d.RetryAfter)}}
	return e
}

func ceilSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// setHeaders writes OpenAI's x-ratelimit-* headers for one dimension
// ("requests" or "tokens") into the ticket's header, made on first use.
func setHeaders(t *proxy.Ticket, dim string, d limit.Decision) {
	if d.Limit <= 0 {
		return
	}
	if t.Header == nil {
		t.Header = make(http.Header, 6)
	}
	limitName, remainingName, resetName := "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"
	if dim != "requests" {
		limitName, remainingName, resetName = "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens"
	}
	// Constant, canonical names: none is built per request.
	t.Header[limitName] = []string{strconv.Itoa(d.Limit)}
	t.Header[remainingName] = []string{strconv.Itoa(max(d.Remaining, 0))}
	t.Header[resetName] = []string{formatReset(d.Reset)}
}

// formatReset renders a duration the way OpenAI does ("1s", "6m0s", "120ms").
func formatReset(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return d.Round(time.Second).String()
}
