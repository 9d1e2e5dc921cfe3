package limit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures a Redis backend.
type RedisOptions struct {
	// Prefix starts every Redis key the backend writes. Default "tollgate:".
	// Give each limited dimension its own prefix (for example
	// "tollgate:rpm:" and "tollgate:tpm:") when several backends share a
	// Redis database and their callers use the same keys.
	Prefix string
	// Spend seeds each key's budget from the ledger once per period (the
	// first replica to reserve in a period reads it; the others reuse it).
	// Nil starts every period at zero spend.
	Spend SpendSource
	// Location is the time zone of budget periods (nil: UTC).
	Location *time.Location
	// Now is the clock used to find the current budget period; nil means
	// time.Now. Rate limits use the Redis server's clock so that replicas
	// agree.
	Now func() time.Time
	// FailClosed makes a Redis error deny the request (Allow returns
	// Allowed=false, Acquire ok=false, Reserve the error). The default,
	// false, fails open: the request is admitted, because an outage of the
	// limiter should not become an outage of the gateway. Either way the
	// failure is counted (Failures) and passed to OnFailure.
	FailClosed bool
	// OnFailure, if set, is called with every failed call (so the server
	// can log and count a metric), including those failed without asking
	// Redis within a DownFor window. It must be quick and safe for
	// concurrent use.
	OnFailure func(error)
	// ConcurrencyTTL bounds how long a concurrency slot survives a replica
	// that died without releasing it; it is renewed on every Acquire of the
	// key. Default 10 minutes; keep it above the longest request.
	ConcurrencyTTL time.Duration
	// TotalBudgetTTL is how long an idle "total" budget stays cached in
	// Redis before it is read from the ledger again. Default 7 days.
	TotalBudgetTTL time.Duration
	// DownFor is how long Redis is not asked after a failure: calls in that
	// window fail (open or closed, per FailClosed) at once instead of each
	// waiting for its own timeout, so a partitioned Redis costs requests
	// nothing but the first few waits. Default 1s.
	DownFor time.Duration
}

// Redis is the shared backend for several replicas: it implements Limiter,
// Concurrency and Budget with one Lua script (one round trip) per call.
type Redis struct {
	client   redis.UniversalClient
	opts     RedisOptions
	failures atomic.Uint64
	// downUntil (unix nanoseconds) is when Redis is asked again after a
	// failure.
	downUntil atomic.Int64

	// seeding shares one ledger read among the callers of this replica that
	// find the same budget period uninitialised at once (at midnight, every
	// busy key does), keyed by budget key.
	seedMu  sync.Mutex
	seeding map[string]*spendCall

	// rateNow, when set (tests only), replaces the Redis server's clock
	// for rate limits so the GCRA maths can be checked exactly.
	rateNow func() time.Time
}

// NewRedis returns a Redis backend using client, which the caller owns.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = "tollgate:"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ConcurrencyTTL <= 0 {
		opts.ConcurrencyTTL = 10 * time.Minute
	}
	if opts.TotalBudgetTTL <= 0 {
		opts.TotalBudgetTTL = 7 * 24 * time.Hour
	}
	if opts.DownFor <= 0 {
		opts.DownFor = time.Second
	}
	return &Redis{client: client, opts: opts, seeding: make(map[string]*spendCall)}
}

// Failures reports how many Redis calls have failed since the start.
func (r *Redis) Failures() uint64 { return r.failures.Load() }

// fail records a Redis error and reports whether to fail open. Errors
// caused by the caller's context ending are not Redis failures and are
// returned as they are.
func (r *Redis) fail(ctx context.Context, err error) (open bool, wrapped error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	r.failures.Add(1)
	if !errors.Is(err, errDown) {
		r.downUntil.Store(time.Now().Add(r.opts.DownFor).UnixNano())
	}
	if r.opts.OnFailure != nil {
		r.opts.OnFailure(err)
	}
	return !r.opts.FailClosed, fmt.Errorf("limit: redis: %w", err)
}

// errDown is the failure of a call not sent because Redis failed moments ago.
var errDown = errors.New("not asked: failed within the last moments")

// down reports whether Redis is in its window of not being asked.
func (r *Redis) down() bool { return time.Now().UnixNano() < r.downUntil.Load() }

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string, limitPerMinute, n int) (Decision, error) {
	if limitPerMinute <= 0 {
		return Decision{Allowed: true}, nil
	}
	n, _ = normalize(limitPerMinute, n)
	vals, err := r.rate(ctx, key, limitPerMinute, n, "a")
	if err != nil {
		open, err := r.fail(ctx, err)
		if open {
			return Decision{Allowed: true, Limit: limitPerMinute, Remaining: limitPerMinute}, nil
		}
		return Decision{Limit: limitPerMinute}, err
	}
	return Decision{
		Allowed:    vals[0] == 1,
		Limit:      limitPerMinute,
		Remaining:  int(vals[1]),
		RetryAfter: time.Duration(vals[2]) * time.Microsecond,
		Reset:      time.Duration(vals[3]) * time.Microsecond,
	}, nil
}

// Refund implements Limiter.
func (r *Redis) Refund(ctx context.Context, key string, limitPerMinute, n int) error {
	if limitPerMinute <= 0 || n == 0 {
		return nil
	}
	if _, err := r.rate(ctx, key, limitPerMinute, n, "r"); err != nil {
		_, err = r.fail(ctx, err)
		return err
	}
	return nil
}

func (r *Redis) rate(ctx context.Context, key string, limit, n int, mode string) ([4]int64, error) {
	now := ""
	if r.rateNow != nil {
		now = strconv.FormatInt(r.rateNow().UnixMicro(), 10)
	}
	if r.down() {
		return [4]int64{}, errDown
	}
	res, err := rateScript.Run(ctx, r.client, []string{r.opts.Prefix + "rate:" + key}, limit, n, mode, now).Int64Slice()
	if err != nil {
		return [4]int64{}, err
	}
	if len(res) != 4 {
		return [4]int64{}, fmt.Errorf("rate script returned %d values", len(res))
	}
	return [4]int64(res), nil
}

// Acquire implements Concurrency.
func (r *Redis) Acquire(ctx context.Context, key string, maxInFlight int) (func(), bool, error) {
	noop := func() {}
	if maxInFlight <= 0 {
		return noop, true, nil
	}
	k := r.opts.Prefix + "conc:" + key
	ttl := int64(r.opts.ConcurrencyTTL / time.Second)
	if r.down() {
		open, err := r.fail(ctx, errDown)
		if open {
			return noop, true, nil
		}
		return nil, false, err
	}
	got, err := acquireScript.Run(ctx, r.client, []string{k}, maxInFlight, max(ttl, 1)).Int()
	if err != nil {
		open, err := r.fail(ctx, err)
		if open {
			return noop, true, nil
		}
		return nil, false, err
	}
	if got != 1 {
		return nil, false, nil
	}
	var done atomic.Bool
	return func() {
		if !done.CompareAndSwap(false, true) {
			return
		}
		// The request's context may be gone by now; releasing must not be.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := releaseScript.Run(ctx, r.client, []string{k}).Err(); err != nil {
			r.fail(ctx, err)
		}
	}, true, nil
}

// budgetKey names the hash holding one key's budget for one period.
func (r *Redis) budgetKey(keyID, period string, start time.Time) string {
	if period == PeriodTotal {
		return r.opts.Prefix + "budget:" + keyID + ":total"
	}
	return r.opts.Prefix + "budget:" + keyID + ":" + period + ":" + start.Format("20060102")
}

// Reserve implements Budget.
func (r *Redis) Reserve(ctx context.Context, keyID, period string, limitNano, amountNano int64) (Reservation, error) {
	res := Reservation{KeyID: keyID, Period: period, Amount: max(amountNano, 0)}
	if limitNano <= 0 || period == "" {
		return res, nil
	}
	start, err := PeriodStartIn(period, r.opts.Now(), r.opts.Location)
	if err != nil {
		return res, err
	}
	res.Start, res.End, res.Limit = start, PeriodEnd(period, start), limitNano
	key := r.budgetKey(keyID, period, start)
	var expireAt int64 // ms; a little after the period ends, so late Settles still land
	if end := res.End; !end.IsZero() {
		expireAt = end.Add(time.Hour).UnixMilli()
	}
	ttl := int64(r.opts.TotalBudgetTTL / time.Second)

	vals, err := r.reserve(ctx, key, limitNano, res.Amount, "", expireAt, ttl)
	if err == nil && vals[0] == -1 {
		// First reservation of the period anywhere: seed it from the ledger.
		spent, err := r.seedSpend(ctx, key, keyID, start)
		if err != nil {
			return res, fmt.Errorf("limit: reading spend of key %s: %w", keyID, err)
		}
		vals, err = r.reserve(ctx, key, limitNano, res.Amount, strconv.FormatInt(spent, 10), expireAt, ttl)
	}
	if err != nil {
		open, err := r.fail(ctx, err)
		if open {
			return res, nil // admitted but not held: Settle is a no-op
		}
		return res, err
	}
	res.Spent, res.Reserved = vals[1], vals[2]
	if vals[0] != 1 {
		return res, ErrBudgetExceeded
	}
	res.Reserved -= res.Amount // the script reports it after this reservation
	res.held = true
	return res, nil
}

// spendCall is one ledger read, shared by concurrent callers.
type spendCall struct {
	done  chan struct{}
	spent int64
	err   error
	at    time.Time // when it completed
}

// seedKeep is how long a completed ledger read is reused: long enough for
// every caller that saw the period uninitialised to pick it up.
const seedKeep = 10 * time.Second

// seedSpend reads keyID's spend since start from the SpendSource, once for
// all concurrent callers asking about the same budget key.
func (r *Redis) seedSpend(ctx context.Context, key, keyID string, start time.Time) (int64, error) {
	if r.opts.Spend == nil {
		return 0, nil
	}
	now := time.Now()
	r.seedMu.Lock()
	for k, c := range r.seeding { // small: only periods seeded in the last seconds
		if !c.at.IsZero() && now.Sub(c.at) > seedKeep {
			delete(r.seeding, k)
		}
	}
	c := r.seeding[key]
	if c == nil {
		c = &spendCall{done: make(chan struct{})}
		r.seeding[key] = c
		r.seedMu.Unlock()
		// Not cancelled with this request: other callers wait for the answer.
		c.spent, c.err = r.opts.Spend.KeySpend(context.WithoutCancel(ctx), keyID, start)
		r.seedMu.Lock()
		if c.err != nil {
			delete(r.seeding, key) // let the next caller try again
		}
		c.at = time.Now()
		r.seedMu.Unlock()
		close(c.done)
		return c.spent, c.err
	}
	r.seedMu.Unlock()
	select {
	case <-c.done:
		return c.spent, c.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// reserve runs the script and returns {status, spent, reserved}.
func (r *Redis) reserve(ctx context.Context, key string, limit, amount int64, init string, expireAt, ttl int64) ([3]int64, error) {
	if r.down() {
		return [3]int64{}, errDown
	}
	vals, err := reserveScript.Run(ctx, r.client, []string{key}, limit, amount, init, expireAt, ttl).Int64Slice()
	if err != nil {
		return [3]int64{}, err
	}
	if len(vals) != 3 {
		return [3]int64{}, errors.New("reserve script returned a wrong answer")
	}
	return [3]int64(vals), nil
}

// Settle implements Budget.
func (r *Redis) Settle(ctx context.Context, res Reservation, actualNano int64) error {
	if !res.held {
		return nil
	}
	key := r.budgetKey(res.KeyID, res.Period, res.Start)
	if err := settleScript.Run(ctx, r.client, []string{key}, res.Amount, actualNano).Err(); err != nil {
		_, err = r.fail(ctx, err)
		return err
	}
	return nil
}

// Interface guards.
var (
	_ Limiter     = (*Redis)(nil)
	_ Concurrency = (*Redis)(nil)
	_ Budget      = (*Redis)(nil)
)
