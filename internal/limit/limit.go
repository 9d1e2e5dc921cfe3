// Package limit enforces per-key rate limits (requests and tokens per minute),
// concurrency caps and spend budgets. Two backends implement the same
// interfaces: Memory for a single replica and Redis for replicas that must
// share their counters.
//
// Rate limits use GCRA (the generic cell rate algorithm, the same maths as
// github.com/go-redis/redis_rate): a bucket of `limit` units refills at
// `limit` units per minute, and the whole bucket may be spent at once.
//
// Keys are opaque strings chosen by the caller. A limiter instance holds one
// namespace, so callers that limit several dimensions either use one instance
// per dimension (cheapest: the key can be the gateway key id as is, with no
// per-request string building) or prefix the key themselves.
package limit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrBudgetExceeded is returned by Budget.Reserve when spent + reserved +
// the amount asked for would pass the key's budget for the current period.
// The Reservation returned with it carries the state (Limit, Spent,
// Reserved) to explain which: the budget is used up, or this request's
// reservation does not fit in what remains.
var ErrBudgetExceeded = errors.New("the budget of this API key for the current period does not cover this request")

// Decision is the answer of a rate limiter.
type Decision struct {
	// Allowed reports whether the units were taken.
	Allowed bool
	// Limit is the bucket size (the limit per minute asked for).
	Limit int
	// Remaining is how many units could be taken right now after this call.
	Remaining int
	// Reset is the time until the bucket is full again.
	Reset time.Duration
	// RetryAfter is, when denied, the time until the same request would be
	// admitted; 0 when allowed.
	RetryAfter time.Duration
}

// Limiter is a per-key GCRA rate limiter.
type Limiter interface {
	// Allow takes n units from the per-minute bucket `key` (limit per
	// minute, burst = limit). n may be 0 to just read state; n above the
	// limit is clamped to the limit so an oversized request is admitted
	// once the bucket is full instead of never (Refund with a negative n
	// then records the real usage as debt). limitPerMinute <= 0 means
	// unlimited: always allowed.
	Allow(ctx context.Context, key string, limitPerMinute, n int) (Decision, error)
	// Refund gives back n (or takes more when n<0) after real usage is
	// known (TPM correction). Best effort.
	Refund(ctx context.Context, key string, limitPerMinute, n int) error
}

// Concurrency caps the number of requests in flight per key.
type Concurrency interface {
	// Acquire takes one slot of key if fewer than max are taken. When ok,
	// release must be called exactly once when the request ends (calling it
	// again is harmless). max <= 0 means unlimited.
	Acquire(ctx context.Context, key string, max int) (release func(), ok bool, err error)
}

// Budget enforces spend limits per key and period.
type Budget interface {
	// Reserve admits a request if spent+reserved+amount <= limit for the
	// key's current period; returns ErrBudgetExceeded otherwise. A zero
	// amount (cost unknown in advance) is admitted while spent+reserved is
	// below the limit. limitNano <= 0 or an empty period means no budget:
	// the reservation is admitted and settling it is a no-op. An error
	// reading the SpendSource is returned (wrapped) whatever the backend's
	// failure policy, since it is the database, not the limiter, failing.
	Reserve(ctx context.Context, keyID, period string, limitNano, amountNano int64) (Reservation, error)
	// Settle replaces the reservation with the actual cost (actual may be >
	// or < amount). Call it once per reservation, with a context that
	// outlives the client's request (context.WithoutCancel), since it runs
	// after the response.
	Settle(ctx context.Context, r Reservation, actualNano int64) error
}

// SpendSource reports what a key has already spent since a time; the store
// implements it from the ledger. Budgets read it once per key and period.
type SpendSource interface {
	KeySpend(ctx context.Context, keyID string, since time.Time) (int64, error)
}

// Reservation is an admitted budget reservation, passed back to Settle.
type Reservation struct {
	KeyID  string
	Period string    // "day", "month" or "total"
	Start  time.Time // start of the period the reservation counts against
	End    time.Time // when the period ends; zero for "total"
	Amount int64     // nano-units reserved

	// The budget's state when Reserve ran, before this reservation: its
	// limit, the settled spend of the period and what requests in flight
	// hold. Zero when the backend could not tell (it failed open).
	Limit, Spent, Reserved int64

	held bool // false when nothing was reserved (no budget, or failed open)
}

// Remaining is what the budget had left for new reservations when Reserve
// ran (never negative).
func (r Reservation) Remaining() int64 { return max(r.Limit-r.Spent-r.Reserved, 0) }

// Held reports whether the reservation holds budget that Settle will adjust.
func (r Reservation) Held() bool { return r.held }

// Budget periods.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
	PeriodTotal = "total"
)

// PeriodStart returns the start of the budget period containing now in UTC:
// midnight for "day", the first of the month for "month", and the zero time
// for "total". PeriodStartIn does the same in a time zone.
func PeriodStart(period string, now time.Time) (time.Time, error) {
	return PeriodStartIn(period, now, time.UTC)
}

// PeriodStartIn returns the start of the budget period containing now in
// loc (nil means UTC): local midnight for "day" (Asia/Shanghai's day starts
// at 16:00 UTC), the first of the local month for "month", the zero time
// for "total". On a day that starts in a DST gap, time.Date moves midnight
// forward, which is still the first instant of that local day.
func PeriodStartIn(period string, now time.Time, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	switch period {
	case PeriodDay:
		return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc), nil
	case PeriodMonth:
		return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc), nil
	case PeriodTotal:
		return time.Time{}, nil
	}
	return time.Time{}, fmt.Errorf("limit: unknown budget period %q (want day, month or total)", period)
}

// PeriodEnd returns when the period starting at start ends (in start's
// location, so a local day is a calendar day even across DST), or the zero
// time for "total".
func PeriodEnd(period string, start time.Time) time.Time {
	switch period {
	case PeriodDay:
		return start.AddDate(0, 0, 1)
	case PeriodMonth:
		return start.AddDate(0, 1, 0)
	}
	return time.Time{}
}

// admits reports whether a budget with the given state admits amount.
func admits(spent, reserved, limit, amount int64) bool {
	if amount <= 0 {
		return spent+reserved < limit
	}
	return spent+reserved+amount <= limit
}

// gcra holds the result of one GCRA step, in nanoseconds.
type gcra struct {
	allowed    bool
	newTAT     int64
	remaining  int64
	reset      int64
	retryAfter int64
}

// gcraStep computes GCRA for a bucket whose theoretical arrival time is tat
// (0 = none) at now, taking n units; emission is the time one unit takes to
// refill. It is shared by Memory and mirrored by the Redis script.
func gcraStep(tat, now, emission int64, limit, n int) gcra {
	tat = max(tat, now)
	newTAT := tat + emission*int64(n)
	diff := now - (newTAT - emission*int64(limit)) // how far the bucket is from overflow
	if diff < 0 {
		return gcra{newTAT: tat, reset: tat - now, retryAfter: -diff}
	}
	return gcra{allowed: true, newTAT: newTAT, remaining: diff / emission, reset: newTAT - now}
}

// normalize clamps n into [0, limit] and returns the emission interval.
func normalize(limit, n int) (int, int64) {
	return min(max(n, 0), limit), emissionOf(limit)
}

// emissionOf is the refill time of one unit in nanoseconds, at least 1 so
// absurd limits cannot divide by zero.
func emissionOf(limit int) int64 {
	return max(int64(time.Minute)/int64(limit), 1)
}
