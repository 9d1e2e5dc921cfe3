package access

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/limit"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/proxy"
	"github.com/tollgate/tollgate/internal/store"
)

// Target is one place a requested model may be served: an upstream and the
// model id sent there (after alias expansion and the upstream's model map).
type Target struct {
	Upstream, Model string
}

// Budget response headers, in the style of x-ratelimit-*: amounts are
// decimal text in the deployment currency (named by the -currency header);
// remaining is what the budget had left before this request's reservation.
const (
	HeaderBudgetLimit     = "X-Tollgate-Budget-Limit"
	HeaderBudgetRemaining = "X-Tollgate-Budget-Remaining"
	HeaderBudgetReset     = "X-Tollgate-Budget-Reset"
	HeaderBudgetCurrency  = "X-Tollgate-Budget-Currency"
)

// maxLoggedUnpriced bounds the models whose first unpriced call is logged,
// so a client inventing model names cannot grow memory or flood the log.
const maxLoggedUnpriced = 1000

// estimate is a budget reservation being worked out.
type estimate struct {
	model      string
	prompt     int64 // estimated prompt tokens
	completion int64 // completion tokens reserved: max_tokens (or the default) times n
	defaulted  bool  // max_tokens was absent, the default was assumed
	n          int64
	amount     int64 // nano-units
	priced     bool
}

// estimateCost prices the worst case of c: the prompt estimate at the input
// price plus max_tokens (or the default) times n choices at the output
// price, at the dearest place the model may be served. priced is false if
// any of those places has no price: the budget could not count a call
// served there.
func (g *Gate) estimateCost(c *proxy.Call) estimate {
	e := estimate{model: c.Head.Model, n: max(c.Head.N, 1), completion: c.Head.MaxTokens}
	if e.completion <= 0 {
		e.completion, e.defaulted = g.Defaults.MaxTokens, true
	}
	if g.Prices == nil {
		e.priced = true
		return e
	}
	e.prompt = c.PromptTokens()
	t := ledger.Tokens{Prompt: e.prompt, Completion: e.completion * e.n}
	var targets []Target
	if g.Targets != nil {
		targets = g.Targets(e.model)
	}
	if len(targets) == 0 {
		e.amount, e.priced = g.Prices.MaxCost(e.model, t)
		return e
	}
	e.priced = true
	for _, tg := range targets {
		nano, ok := g.Prices.Cost(tg.Upstream, tg.Model, t)
		if !ok {
			e.priced, e.model = false, tg.Model
			return e
		}
		e.amount = max(e.amount, nano)
	}
	return e
}

// reserveBudget refuses an unpriced model (unless allowed), reserves the
// worst case and sets the budget headers. It returns the reservation, or
// the error to send.
func (g *Gate) reserveBudget(ctx context.Context, c *proxy.Call, key *store.Key, t *proxy.Ticket) (limit.Reservation, error) {
	e := g.estimateCost(c)
	if !e.priced {
		g.noteUnpriced(e.model, !g.AllowUnpriced)
		if !g.AllowUnpriced {
			return limit.Reservation{}, openai.NewError(http.StatusForbidden, openai.TypePermission, "model_not_priced",
				fmt.Sprintf("the model %q has no price, so this API key's budget cannot be applied to it; "+
					"ask the gateway operator to add a price for it (see `tollgate prices`)", e.model))
		}
	}
	r, err := g.Budget.Reserve(ctx, key.ID, key.BudgetPeriod, key.BudgetNano, e.amount)
	if err != nil && !errors.Is(err, limit.ErrBudgetExceeded) {
		if g.Logger != nil {
			g.Logger.Error("budget check failed", "key_id", key.ID, "error", err)
		}
		return r, openai.NewError(http.StatusServiceUnavailable, openai.TypeServer, "budget_unavailable",
			"the budget of this API key could not be checked; try again shortly")
	}
	g.setBudgetHeaders(t, r)
	if err != nil {
		return r, g.budgetExceeded(r, e)
	}
	g.maybeWarn(key, r)
	return r, nil
}

func (g *Gate) currency() string {
	if g.Currency == "" {
		return ledger.BuiltinCurrency
	}
	return g.Currency
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Gate) setBudgetHeaders(t *proxy.Ticket, r limit.Reservation) {
	if r.Limit <= 0 {
		return // the backend failed open: nothing true to say
	}
	if t.Header == nil {
		t.Header = make(http.Header, 4)
	}
	h := t.Header
	h[HeaderBudgetLimit] = []string{ledger.FormatAmount(r.Limit)}
	h[HeaderBudgetRemaining] = []string{ledger.FormatAmount(r.Remaining())}
	h[HeaderBudgetCurrency] = []string{g.currency()}
	if !r.End.IsZero() {
		h[HeaderBudgetReset] = []string{formatReset(max(r.End.Sub(g.now()), 0))}
	}
}

// budgetExceeded explains a refused reservation: a budget used up, or a
// reservation (mostly max_tokens) too large for what remains.
func (g *Gate) budgetExceeded(r limit.Reservation, e estimate) *openai.Error {
	cur := g.currency()
	amt := func(n int64) string { return ledger.FormatAmount(n) + " " + cur }
	budget := amt(r.Limit) + " " + periodText(r.Period)
	reset := ""
	if !r.End.IsZero() {
		reset = fmt.Sprintf(" It resets in %s (at %s).", resetText(max(r.End.Sub(g.now()), 0)).String(),
			r.End.Format("2006-01-02 15:04 MST"))
	}
	var msg string
	if r.Spent >= r.Limit {
		msg = fmt.Sprintf("this API key has used up its budget of %s (%s spent).%s", budget, amt(r.Spent), reset)
	} else {
		size := "max_tokens " + strconv.FormatInt(e.completion, 10)
		if e.defaulted {
			size = "no max_tokens, so the default of " + strconv.FormatInt(e.completion, 10) + " is assumed"
		}
		if e.n > 1 {
			size += fmt.Sprintf(", times n=%d choices", e.n)
		}
		msg = fmt.Sprintf("this request would reserve up to %s of this API key's budget (%s, plus about %d prompt tokens, at %q's price), "+
			"but only %s of its %s budget remains (%s spent, %s held by requests in flight). "+
			"Lower max_tokens (or max_completion_tokens) so the reservation fits.%s",
			amt(e.amount), size, e.prompt, e.model, amt(r.Remaining()), budget, amt(r.Spent), amt(r.Reserved), reset)
	}
	err := openai.NewError(http.StatusTooManyRequests, openai.TypeInsufficient, "insufficient_quota", msg)
	if !r.End.IsZero() {
		err.Header = http.Header{"Retry-After": {ceilSeconds(r.End.Sub(g.now()))}}
	}
	return err
}

// formatReset is a duration shown to people: seconds dropped past a minute.
type resetText time.Duration

func (d resetText) String() string {
	t := time.Duration(d)
	if t >= time.Minute {
		t = t.Truncate(time.Minute)
	}
	return t.String()
}

func periodText(p string) string {
	switch p {
	case limit.PeriodDay:
		return "per day"
	case limit.PeriodMonth:
		return "per month"
	}
	return "in total"
}

// maybeWarn logs and counts, once per key and period, that the key's
// settled spend reached BudgetWarn of its budget.
func (g *Gate) maybeWarn(key *store.Key, r limit.Reservation) {
	if g.BudgetWarn <= 0 || r.Limit <= 0 || float64(r.Spent) < g.BudgetWarn*float64(r.Limit) {
		return
	}
	if prev, ok := g.warned.Load(key.ID); ok && prev.(time.Time).Equal(r.Start) {
		return
	}
	if prev, loaded := g.warned.Swap(key.ID, r.Start); loaded && prev.(time.Time).Equal(r.Start) {
		return // another request won the race
	}
	if g.Logger != nil {
		g.Logger.Warn("API key budget nearly used", "key_id", key.ID, "key_name", key.Name,
			"spent", ledger.FormatAmount(r.Spent), "budget", ledger.FormatAmount(r.Limit), "currency", g.currency(),
			"period", r.Period, "threshold", g.BudgetWarn)
	}
	if g.OnBudgetWarn != nil {
		g.OnBudgetWarn()
	}
}

// noteUnpriced counts an unpriced call by a key with a budget and logs the
// first one of each model.
func (g *Gate) noteUnpriced(model string, refused bool) {
	if g.OnUnpriced != nil {
		g.OnUnpriced(refused)
	}
	if g.Logger == nil {
		return
	}
	if _, seen := g.loggedUnpriced.Load(model); seen || g.loggedCount.Load() >= maxLoggedUnpriced {
		return
	}
	if _, seen := g.loggedUnpriced.LoadOrStore(strings.Clone(model), struct{}{}); seen {
		return
	}
	g.loggedCount.Add(1)
	action := "served without counting against the budget (limits.unpriced: allow)"
	if refused {
		action = "refused (limits.unpriced: deny)"
	}
	g.Logger.Warn("a key with a budget called a model without a price; add a price (prices_from or prices)",
		"model", model, "action", action)
}
