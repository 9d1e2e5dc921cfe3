package limit

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisDownIsNotAskedAgainAtOnce: after a failure, calls within DownFor
// fail open at once instead of each waiting on its own dial and timeout (a
// partitioned Redis used to add seconds to every request).
func TestRedisDownIsNotAskedAgainAtOnce(t *testing.T) {
	var dials atomic.Int64
	client := redis.NewClient(&redis.Options{
		Addr: "redis.invalid:6379", MaxRetries: -1, DialerRetries: 1,
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			return nil, errors.New("connection refused")
		},
	})
	defer client.Close()
	var failures atomic.Int64
	r := NewRedis(client, RedisOptions{DownFor: time.Minute, OnFailure: func(error) { failures.Add(1) }})
	for i := range 5 {
		d, err := r.Allow(t.Context(), "k", 10, 1)
		if err != nil || !d.Allowed {
			t.Fatalf("call %d: %+v, %v; want admitted (fail open)", i, d, err)
		}
	}
	if _, ok, err := r.Acquire(t.Context(), "k", 3); !ok || err != nil {
		t.Fatalf("Acquire while down: %v, %v; want admitted", ok, err)
	}
	if got := dials.Load(); got != 1 {
		t.Errorf("%d dials for 6 calls; want 1 (the rest not asked while down)", got)
	}
	if got := failures.Load(); got != 6 {
		t.Errorf("OnFailure called %d times; want every failed call", got)
	}
	if r.Failures() != 6 {
		t.Errorf("Failures() = %d; want every call counted", r.Failures())
	}
}
