package limit

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// memShards spreads buckets over independent locks so that concurrent
// requests for different keys rarely contend. A power of two.
const memShards = 32

// sweepEvery is how often a shard drops its idle buckets. A bucket whose
// theoretical arrival time has passed is full, which is exactly what a
// missing bucket means, so dropping it changes no decision.
const sweepEvery = time.Minute

// MemoryOptions configures a Memory backend.
type MemoryOptions struct {
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
	// Spend seeds each key's budget from the ledger once per period; nil
	// starts every period at zero spend.
	Spend SpendSource
	// Location is the time zone of budget periods (nil: UTC).
	Location *time.Location
}

// Memory is the single-replica backend: it implements Limiter, Concurrency
// and Budget with in-process state. The zero value is not usable; call
// NewMemory.
type Memory struct {
	now    func() time.Time
	spend  SpendSource
	loc    *time.Location
	seed   maphash.Seed
	shards [memShards]memShard

	concMu sync.Mutex
	conc   map[string]int

	budgetMu sync.Mutex
	budgets  map[string]*budgetState
}

type memShard struct {
	mu      sync.Mutex
	tat     map[string]int64 // key -> theoretical arrival time, unix ns
	sweepAt int64
	_       [40]byte // keep shards on separate cache lines
}

type budgetState struct {
	mu       sync.Mutex
	loaded   bool
	start    time.Time
	spent    int64
	reserved int64
}

// NewMemory returns an in-memory backend.
func NewMemory(opts MemoryOptions) *Memory {
	m := &Memory{
		now:     opts.Now,
		spend:   opts.Spend,
		loc:     opts.Location,
		seed:    maphash.MakeSeed(),
		conc:    make(map[string]int),
		budgets: make(map[string]*budgetState),
	}
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.shards {
		m.shards[i].tat = make(map[string]int64)
	}
	return m
}

func (m *Memory) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)&(memShards-1)]
}

// Allow implements Limiter. It does not allocate once the key's bucket exists.
func (m *Memory) Allow(_ context.Context, key string, limitPerMinute, n int) (Decision, error) {
	if limitPerMinute <= 0 {
		return Decision{Allowed: true}, nil
	}
	n, emission := normalize(limitPerMinute, n)
	now := m.now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	if now >= s.sweepAt {
		s.sweep(now)
	}
	g := gcraStep(s.tat[key], now, emission, limitPerMinute, n)
	if g.allowed && n > 0 {
		s.tat[key] = g.newTAT
	}
	s.mu.Unlock()
	return Decision{
		Allowed:    g.allowed,
		Limit:      limitPerMinute,
		Remaining:  int(g.remaining),
		Reset:      time.Duration(g.reset),
		RetryAfter: time.Duration(g.retryAfter),
	}, nil
}

// Refund implements Limiter.
func (m *Memory) Refund(_ context.Context, key string, limitPerMinute, n int) error {
	if limitPerMinute <= 0 || n == 0 {
		return nil
	}
	emission := emissionOf(limitPerMinute)
	now := m.now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	tat := max(s.tat[key], now) - emission*int64(n)
	if tat <= now {
		delete(s.tat, key) // full again
		return nil
	}
	s.tat[key] = tat
	return nil
}

// sweep drops full buckets; s.mu must be held.
func (s *memShard) sweep(now int64) {
	for k, tat := range s.tat {
		if tat <= now {
			delete(s.tat, k)
		}
	}
	s.sweepAt = now + int64(sweepEvery)
}

// Acquire implements Concurrency.
func (m *Memory) Acquire(_ context.Context, key string, maxInFlight int) (func(), bool, error) {
	if maxInFlight <= 0 {
		return func() {}, true, nil
	}
	m.concMu.Lock()
	defer m.concMu.Unlock()
	if m.conc[key] >= maxInFlight {
		return nil, false, nil
	}
	m.conc[key]++
	var done atomic.Bool
	return func() {
		if !done.CompareAndSwap(false, true) {
			return
		}
		m.concMu.Lock()
		defer m.concMu.Unlock()
		if m.conc[key] <= 1 {
			delete(m.conc, key)
		} else {
			m.conc[key]--
		}
	}, true, nil
}

// InFlight reports how many slots of key are taken (for tests and status pages).
func (m *Memory) InFlight(key string) int {
	m.concMu.Lock()
	defer m.concMu.Unlock()
	return m.conc[key]
}

// Reserve implements Budget. The first call for a key in a period reads its
// spend from the SpendSource while holding only that key's lock, so other
// keys are not delayed by the query; concurrent calls for the same key wait
// and then see the loaded state, so they cannot overshoot together.
func (m *Memory) Reserve(ctx context.Context, keyID, period string, limitNano, amountNano int64) (Reservation, error) {
	r := Reservation{KeyID: keyID, Period: period, Amount: max(amountNano, 0)}
	if limitNano <= 0 || period == "" {
		return r, nil
	}
	start, err := PeriodStartIn(period, m.now(), m.loc)
	if err != nil {
		return r, err
	}
	r.Start, r.End, r.Limit = start, PeriodEnd(period, start), limitNano
	m.budgetMu.Lock()
	st := m.budgets[keyID]
	if st == nil {
		st = &budgetState{}
		m.budgets[keyID] = st
	}
	m.budgetMu.Unlock()

	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.loaded || !st.start.Equal(start) {
		var spent int64
		if m.spend != nil {
			spent, err = m.spend.KeySpend(ctx, keyID, start)
			if err != nil {
				return r, fmt.Errorf("limit: reading spend of key %s: %w", keyID, err)
			}
		}
		// A new period forgets the old one's reservations: their Settle
		// carries the old start and is ignored.
		st.loaded, st.start, st.spent, st.reserved = true, start, spent, 0
	}
	r.Spent, r.Reserved = st.spent, st.reserved
	if !admits(st.spent, st.reserved, limitNano, r.Amount) {
		return r, ErrBudgetExceeded
	}
	st.reserved += r.Amount
	r.held = true
	return r, nil
}

// Settle implements Budget.
func (m *Memory) Settle(_ context.Context, r Reservation, actualNano int64) error {
	if !r.held {
		return nil
	}
	m.budgetMu.Lock()
	st := m.budgets[r.KeyID]
	m.budgetMu.Unlock()
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.loaded || !st.start.Equal(r.Start) {
		return nil // the period rolled over; the ledger has the cost
	}
	st.reserved = max(st.reserved-r.Amount, 0)
	st.spent += actualNano
	return nil
}

// Spent reports the spend and outstanding reservations the backend holds for
// keyID in its current state (zero when not loaded).
func (m *Memory) Spent(keyID string) (spent, reserved int64) {
	m.budgetMu.Lock()
	st := m.budgets[keyID]
	m.budgetMu.Unlock()
	if st == nil {
		return 0, 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.spent, st.reserved
}

// Interface guards.
var (
	_ Limiter     = (*Memory)(nil)
	_ Concurrency = (*Memory)(nil)
	_ Budget      = (*Memory)(nil)
)
