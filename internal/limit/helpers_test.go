package limit

import (
	"context"
	"crypto/rand"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeSpend is a SpendSource with fixed answers that records its calls.
type fakeSpend struct {
	mu    sync.Mutex
	spent map[string]int64
	calls []time.Time
	err   error
}

func (f *fakeSpend) KeySpend(_ context.Context, keyID string, since time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, since)
	if f.err != nil {
		return 0, f.err
	}
	return f.spent[keyID], nil
}

func (f *fakeSpend) Calls() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

// testRedis returns a client for TOLLGATE_TEST_REDIS_URL and a key prefix
// unique to this test, or skips.
func testRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("TOLLGATE_TEST_REDIS_URL")
	if url == "" {
		t.Skip("TOLLGATE_TEST_REDIS_URL not set; skipping Redis backend test")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parsing TOLLGATE_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		t.Fatalf("redis ping: %v", err)
	}
	prefix := "tollgate-test:" + rand.Text()[:10] + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for i := 0; i < 10000 && iter.Next(ctx); i++ {
			client.Del(ctx, iter.Val())
		}
		client.Close()
	})
	return client, prefix
}

// backend is one implementation under test with its fake clock.
type backend struct {
	name  string
	clock *fakeClock
	spend *fakeSpend
	lim   Limiter
	conc  Concurrency
	bud   Budget
}

// backends returns the memory backend and, when TOLLGATE_TEST_REDIS_URL is
// set, the Redis backend, each with its own fake clock starting at start.
func backends(t *testing.T, start time.Time, spend map[string]int64) []backend {
	t.Helper()
	return backendsIn(t, start, spend, nil)
}

// backendsIn is backends with budget periods in loc.
func backendsIn(t *testing.T, start time.Time, spend map[string]int64, loc *time.Location) []backend {
	t.Helper()
	var out []backend
	{
		clock, src := newFakeClock(start), &fakeSpend{spent: spend}
		m := NewMemory(MemoryOptions{Now: clock.Now, Spend: src, Location: loc})
		out = append(out, backend{"memory", clock, src, m, m, m})
	}
	if os.Getenv("TOLLGATE_TEST_REDIS_URL") == "" {
		t.Log("TOLLGATE_TEST_REDIS_URL not set; testing the memory backend only")
		return out
	}
	client, prefix := testRedis(t)
	clock, src := newFakeClock(start), &fakeSpend{spent: spend}
	r := NewRedis(client, RedisOptions{Prefix: prefix, Now: clock.Now, Spend: src, Location: loc})
	r.rateNow = clock.Now
	out = append(out, backend{"redis", clock, src, r, r, r})
	return out
}
