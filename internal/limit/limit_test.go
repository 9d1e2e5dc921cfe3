package limit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// start is a whole second near now, so the Redis backend's key expiries
// (computed by the server from its own clock) stay sensible.
var start = time.Now().UTC().Truncate(time.Second)

type rateStep struct {
	advance time.Duration
	refund  bool // Refund(n) instead of Allow(n)
	n       int
	want    Decision // ignored for refunds
}

func TestRateLimit(t *testing.T) {
	allow := func(n, remaining int, reset time.Duration) Decision {
		return Decision{Allowed: true, Remaining: remaining, Reset: reset}
	}
	deny := func(retry, reset time.Duration) Decision {
		return Decision{Remaining: 0, RetryAfter: retry, Reset: reset}
	}
	s := time.Second
	tests := []struct {
		name  string
		limit int
		steps []rateStep
	}{
		{"burst then refill", 60, []rateStep{
			{n: 1, want: allow(1, 59, 1*s)},
			{n: 59, want: allow(59, 0, 60*s)},
			{n: 1, want: deny(1*s, 60*s)},
			{advance: 500 * time.Millisecond, n: 1, want: deny(500*time.Millisecond, 59500*time.Millisecond)},
			{advance: 500 * time.Millisecond, n: 1, want: allow(1, 0, 60*s)},
			{advance: 30 * s, n: 0, want: allow(0, 30, 30*s)},
			{advance: 30 * s, n: 0, want: allow(0, 60, 0)},
		}},
		{"tokens per minute, n>1", 600, []rateStep{
			{n: 500, want: allow(500, 100, 50*s)},
			{n: 200, want: deny(10*s, 50*s)},
			{n: 100, want: allow(100, 0, 60*s)},
			{advance: 10 * s, n: 200, want: deny(10*s, 50*s)},
			{advance: 10 * s, n: 200, want: allow(200, 0, 60*s)},
		}},
		{"n above the limit is clamped", 10, []rateStep{
			{n: 25, want: allow(10, 0, 60*s)},
			{n: 1, want: deny(6*s, 60*s)},
			{advance: 60 * s, n: 25, want: allow(10, 0, 60*s)},
		}},
		{"refund gives back and takes more", 60, []rateStep{
			{n: 60, want: allow(60, 0, 60*s)},
			{refund: true, n: 30},
			{n: 0, want: allow(0, 30, 30*s)},
			{refund: true, n: -40},
			{n: 0, want: deny(10*s, 70*s)},
			{advance: 10 * s, n: 1, want: deny(1*s, 60*s)},
			{refund: true, n: 1000},
			{n: 0, want: allow(0, 60, 0)},
		}},
		{"unlimited", 0, []rateStep{
			{n: 1000, want: Decision{Allowed: true}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, b := range backends(t, start, nil) {
				t.Run(b.name, func(t *testing.T) {
					ctx := t.Context()
					for i, st := range tt.steps {
						b.clock.Advance(st.advance)
						if st.refund {
							if err := b.lim.Refund(ctx, "k", tt.limit, st.n); err != nil {
								t.Fatalf("step %d: Refund: %v", i, err)
							}
							continue
						}
						got, err := b.lim.Allow(ctx, "k", tt.limit, st.n)
						if err != nil {
							t.Fatalf("step %d: Allow: %v", i, err)
						}
						want := st.want
						if tt.limit > 0 {
							want.Limit = tt.limit
						}
						if diff := cmp.Diff(want, got); diff != "" {
							t.Errorf("step %d: Allow(n=%d) mismatch (-want +got):\n%s", i, st.n, diff)
						}
					}
				})
			}
		})
	}
}

func TestRateLimitKeysAreIndependent(t *testing.T) {
	for _, b := range backends(t, start, nil) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			for _, key := range []string{"a", "b"} {
				for i := range 3 {
					d, err := b.lim.Allow(ctx, key, 3, 1)
					if err != nil || !d.Allowed {
						t.Fatalf("Allow(%s) #%d = %+v, %v; want allowed", key, i, d, err)
					}
				}
			}
			if d, _ := b.lim.Allow(ctx, "a", 3, 1); d.Allowed {
				t.Errorf("Allow(a) after 3 of 3 allowed; want denied")
			}
		})
	}
}

func TestRedisRealClock(t *testing.T) {
	client, prefix := testRedis(t)
	r := NewRedis(client, RedisOptions{Prefix: prefix})
	ctx := t.Context()
	for i := range 5 {
		d, err := r.Allow(ctx, "k", 5, 1)
		if err != nil || !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("Allow #%d = %+v, %v; want allowed, remaining %d", i, d, err, 4-i)
		}
	}
	d, err := r.Allow(ctx, "k", 5, 1)
	if err != nil || d.Allowed {
		t.Fatalf("6th Allow = %+v, %v; want denied", d, err)
	}
	// One unit refills every 12 s; allow for time spent since the first call.
	if d.RetryAfter <= 11*time.Second || d.RetryAfter > 12*time.Second {
		t.Errorf("RetryAfter = %v; want about 12s", d.RetryAfter)
	}
	if d.Reset <= 59*time.Second || d.Reset > 60*time.Second {
		t.Errorf("Reset = %v; want about 60s", d.Reset)
	}
	ttl := client.PTTL(ctx, prefix+"rate:k").Val()
	if ttl <= 59*time.Second || ttl > 60*time.Second {
		t.Errorf("bucket TTL = %v; want about 60s", ttl)
	}
}

func TestConcurrency(t *testing.T) {
	for _, b := range backends(t, start, nil) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			r1, ok1, err1 := b.conc.Acquire(ctx, "k", 2)
			r2, ok2, err2 := b.conc.Acquire(ctx, "k", 2)
			if !ok1 || !ok2 || err1 != nil || err2 != nil {
				t.Fatalf("first two Acquire = %v %v, %v %v; want ok", ok1, err1, ok2, err2)
			}
			if _, ok, err := b.conc.Acquire(ctx, "k", 2); ok || err != nil {
				t.Fatalf("third Acquire = %v, %v; want full", ok, err)
			}
			if _, ok, _ := b.conc.Acquire(ctx, "other", 2); !ok {
				t.Fatalf("Acquire(other) not ok; keys must be independent")
			}
			r1()
			r1() // a second release must not free another slot
			r3, ok, err := b.conc.Acquire(ctx, "k", 2)
			if !ok || err != nil {
				t.Fatalf("Acquire after release = %v, %v; want ok", ok, err)
			}
			if _, ok, _ := b.conc.Acquire(ctx, "k", 2); ok {
				t.Fatalf("Acquire after double release ok; want full")
			}
			r2()
			r3()
			if _, ok, _ := b.conc.Acquire(ctx, "k", 0); !ok {
				t.Errorf("Acquire(max=0) not ok; want unlimited")
			}
		})
	}
}

func TestBudgetConcurrentReserve(t *testing.T) {
	for _, b := range backends(t, start, nil) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			var admitted, exceeded atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					_, err := b.bud.Reserve(ctx, "key1", PeriodDay, 50, 10)
					switch {
					case err == nil:
						admitted.Add(1)
					case errors.Is(err, ErrBudgetExceeded):
						exceeded.Add(1)
					default:
						t.Errorf("Reserve: %v", err)
					}
				})
			}
			wg.Wait()
			if admitted.Load() != 5 || exceeded.Load() != 15 {
				t.Errorf("admitted %d, exceeded %d; want 5 and 15", admitted.Load(), exceeded.Load())
			}
			if n := len(b.spend.Calls()); n != 1 {
				t.Errorf("SpendSource called %d times; want once per period", n)
			}
		})
	}
}

func TestBudgetSettleAndPeriods(t *testing.T) {
	day := time.Date(start.Year(), start.Month(), start.Day(), 23, 0, 0, 0, time.UTC)
	if day.Before(start) {
		day = day.AddDate(0, 0, 1) // stay in the future so Redis expiries hold
	}
	for _, b := range backends(t, day, map[string]int64{"seeded": 90}) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			r, err := b.bud.Reserve(ctx, "k", PeriodDay, 100, 10)
			if err != nil {
				t.Fatalf("Reserve: %v", err)
			}
			if err := b.bud.Settle(ctx, r, 95); err != nil {
				t.Fatalf("Settle: %v", err)
			}
			if _, err := b.bud.Reserve(ctx, "k", PeriodDay, 100, 10); !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("Reserve after settling 95 of 100 = %v; want ErrBudgetExceeded", err)
			}
			r, err = b.bud.Reserve(ctx, "k", PeriodDay, 100, 5)
			if err != nil {
				t.Fatalf("Reserve(5) with 5 left: %v", err)
			}
			if _, err := b.bud.Reserve(ctx, "k", PeriodDay, 100, 0); !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("Reserve(0) with nothing left = %v; want ErrBudgetExceeded", err)
			}
			if err := b.bud.Settle(ctx, r, 1); err != nil {
				t.Fatalf("Settle: %v", err)
			}
			if _, err := b.bud.Reserve(ctx, "k", PeriodDay, 100, 0); err != nil {
				t.Fatalf("Reserve(0) after a cheaper settle = %v; want admitted", err)
			}

			// Spend already in the ledger counts.
			if _, err := b.bud.Reserve(ctx, "seeded", PeriodDay, 100, 20); !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("Reserve on a key with 90 of 100 spent = %v; want ErrBudgetExceeded", err)
			}

			// The next UTC day starts afresh, read again from the ledger.
			b.clock.Advance(2 * time.Hour)
			if _, err := b.bud.Reserve(ctx, "k", PeriodDay, 100, 10); err != nil {
				t.Fatalf("Reserve on the next day: %v", err)
			}
			calls := b.spend.Calls()
			nextDay := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, time.UTC)
			if last := calls[len(calls)-1]; !last.Equal(nextDay) {
				t.Errorf("last KeySpend since = %v; want %v", last, nextDay)
			}
			// A late settle of the old day must not leak into the new one.
			if err := b.bud.Settle(ctx, r, 1000); err != nil {
				t.Fatalf("late Settle: %v", err)
			}
			if _, err := b.bud.Reserve(ctx, "k", PeriodDay, 100, 10); err != nil {
				t.Fatalf("Reserve after a late settle of yesterday: %v", err)
			}

			// No budget: always admitted, settling is a no-op.
			r, err = b.bud.Reserve(ctx, "k", "", 0, 1<<40)
			if err != nil || r.Held() {
				t.Fatalf("Reserve without budget = %+v, %v; want admitted, not held", r, err)
			}
			if _, err := b.bud.Reserve(ctx, "k", "week", 100, 1); err == nil {
				t.Errorf("Reserve with period week succeeded; want error")
			}
		})
	}
}

func TestBudgetSpendSourceError(t *testing.T) {
	src := &fakeSpend{err: errors.New("db down")}
	m := NewMemory(MemoryOptions{Spend: src})
	if _, err := m.Reserve(t.Context(), "k", PeriodMonth, 100, 1); err == nil || errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("Reserve with failing SpendSource = %v; want a read error", err)
	}
	src.mu.Lock()
	src.err = nil
	src.mu.Unlock()
	if _, err := m.Reserve(t.Context(), "k", PeriodMonth, 100, 1); err != nil {
		t.Fatalf("Reserve after the source recovered: %v", err)
	}
}

func TestRedisFailurePolicy(t *testing.T) {
	// Nothing listens on port 1: every call fails at once.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	for _, closed := range []bool{false, true} {
		t.Run(map[bool]string{false: "open", true: "closed"}[closed], func(t *testing.T) {
			var hooked atomic.Int32
			r := NewRedis(client, RedisOptions{FailClosed: closed, OnFailure: func(error) { hooked.Add(1) }})
			ctx := t.Context()
			d, err := r.Allow(ctx, "k", 10, 1)
			if d.Allowed == closed || (err != nil) != closed {
				t.Errorf("Allow = %+v, %v; want allowed=%v", d, err, !closed)
			}
			release, ok, err := r.Acquire(ctx, "k", 1)
			if ok == closed || (err != nil) != closed {
				t.Errorf("Acquire = %v, %v; want ok=%v", ok, err, !closed)
			}
			if ok {
				release()
			}
			res, err := r.Reserve(ctx, "k", PeriodDay, 100, 1)
			if (err != nil) != closed || res.Held() {
				t.Errorf("Reserve = %+v, %v; want error=%v and not held", res, err, closed)
			}
			if got := r.Failures(); got != 3 || hooked.Load() != 3 {
				t.Errorf("Failures() = %d, hook calls %d; want 3", got, hooked.Load())
			}
		})
	}
}

func TestRedisCancelledContextIsNotAFailure(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	r := NewRedis(client, RedisOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Allow(ctx, "k", 10, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Allow with cancelled ctx = %v; want context.Canceled", err)
	}
	if r.Failures() != 0 {
		t.Errorf("Failures() = %d; want 0", r.Failures())
	}
}

func TestPeriodStart(t *testing.T) {
	now := time.Date(2026, 11, 22, 19, 30, 0, 0, time.FixedZone("X", 5*3600)) // 14:30 UTC
	tests := []struct {
		period string
		want   time.Time
		err    bool
	}{
		{PeriodDay, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), false},
		{PeriodMonth, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), false},
		{PeriodTotal, time.Time{}, false},
		{"week", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := PeriodStart(tt.period, now)
		if !got.Equal(tt.want) || (err != nil) != tt.err {
			t.Errorf("PeriodStart(%q) = %v, %v; want %v, error %v", tt.period, got, err, tt.want, tt.err)
		}
	}
}

func TestMemoryEvictsIdleBuckets(t *testing.T) {
	clock := newFakeClock(start)
	m := NewMemory(MemoryOptions{Now: clock.Now})
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c", "d"} {
		m.Allow(ctx, k, 60, 1)
	}
	count := func() (n int) {
		for i := range m.shards {
			m.shards[i].mu.Lock()
			n += len(m.shards[i].tat)
			m.shards[i].mu.Unlock()
		}
		return n
	}
	if got := count(); got != 4 {
		t.Fatalf("buckets = %d; want 4", got)
	}
	clock.Advance(sweepEvery + time.Second)
	for i := range m.shards { // one Allow per shard triggers its sweep
		m.shards[i].mu.Lock()
		m.shards[i].sweep(clock.Now().UnixNano())
		m.shards[i].mu.Unlock()
	}
	if got := count(); got != 0 {
		t.Errorf("buckets after idle sweep = %d; want 0", got)
	}
}

func TestMemoryAllowDoesNotAllocate(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	key := "key_0123456789"
	m.Allow(ctx, key, 1_000_000, 1)
	allocs := testing.AllocsPerRun(1000, func() { m.Allow(ctx, key, 1_000_000, 1) })
	if allocs != 0 {
		t.Errorf("Allow allocates %.1f times per call; want 0", allocs)
	}
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.Allow(ctx, "key_0123456789", 1_000_000_000, 1)
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	client, prefix := testRedis(b)
	r := NewRedis(client, RedisOptions{Prefix: prefix})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Allow(ctx, "bench", 1_000_000, 1); err != nil {
			b.Fatal(err)
		}
	}
}
