package auth_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/tollgate/tollgate/internal/auth"
	"github.com/tollgate/tollgate/internal/limit"
)

// Example shows the per-request checks a server runs before proxying: who
// is calling, may they use the model, are they within their rate, in-flight
// and budget limits. Each limited dimension gets its own limiter so that the
// key id can be used as the bucket key without building strings.
func Example() {
	var (
		keys     *auth.Cache       // auth.NewCache(store, 0, logger), Reload, then go Run(ctx)
		rpm      limit.Limiter     // limit.NewMemory(...) or limit.NewRedis(client, RedisOptions{Prefix: "tollgate:rpm:"})
		inFlight limit.Concurrency // the same backends implement Concurrency and Budget
		budget   limit.Budget
		logger   *slog.Logger
	)
	_ = func(w http.ResponseWriter, r *http.Request, model string, estimatedCostNano int64) {
		k, err := keys.Lookup(auth.KeyFromRequest(r))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized) // messages are safe for clients
			return
		}
		if !auth.ModelAllowed(k, model) {
			http.Error(w, "model not allowed for this key", http.StatusForbidden)
			return
		}
		d, err := rpm.Allow(r.Context(), k.ID, k.RPM, 1)
		if err != nil || !d.Allowed {
			w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfter.Seconds()+0.999)))
			http.Error(w, "rate limit reached", http.StatusTooManyRequests)
			return
		}
		release, ok, err := inFlight.Acquire(r.Context(), k.ID, k.MaxParallel)
		if err != nil || !ok {
			http.Error(w, "too many requests in flight", http.StatusTooManyRequests)
			return
		}
		defer release()
		res, err := budget.Reserve(r.Context(), k.ID, k.BudgetPeriod, k.BudgetNano, estimatedCostNano)
		if errors.Is(err, limit.ErrBudgetExceeded) {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		} else if err != nil {
			logger.Error("budget check failed", "key_id", k.ID, "err", err)
		}
		// ... proxy the request, learn its real cost ...
		var actualCostNano int64
		if err := budget.Settle(context.WithoutCancel(r.Context()), res, actualCostNano); err != nil {
			logger.Warn("settling budget failed", "key_id", k.ID, "err", err)
		}
	}
}
