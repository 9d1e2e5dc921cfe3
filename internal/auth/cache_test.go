package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tollgate/tollgate/internal/limit"
	"github.com/tollgate/tollgate/internal/store"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCacheLookupErrors(t *testing.T) {
	fs := newFakeStore()
	ctx := t.Context()
	m := NewManager(fs, func() time.Time { return t0 })
	live, _, _ := m.Create(ctx, CreateOptions{Name: "live"})
	expiring, _, _ := m.Create(ctx, CreateOptions{Name: "expiring", Expires: "1h"})
	revoked, rk, _ := m.Create(ctx, CreateOptions{Name: "revoked"})
	if err := m.Revoke(ctx, rk.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _, _ := GenerateKey()

	c := NewCache(fs, 0, discardLogger())
	if _, err := c.Lookup(live); !errors.Is(err, ErrNotReady) {
		t.Errorf("Lookup before load = %v; want ErrNotReady", err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(59 * time.Minute)
	c.Now = func() time.Time { return now }

	tests := []struct {
		name, key string
		want      error
	}{
		{"live", live, nil},
		{"expiring before expiry", expiring, nil},
		{"revoked", revoked, ErrRevoked},
		{"unknown", unknown, ErrUnknownKey},
		{"garbage", "Bearer nonsense", ErrUnknownKey},
		{"missing", "", ErrMissingKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := c.Lookup(tt.key)
			if !errors.Is(err, tt.want) || (err == nil) != (k != nil) {
				t.Errorf("Lookup = %v, %v; want %v", k, err, tt.want)
			}
			if err != nil && tt.key != "" && strings.Contains(err.Error(), tt.key) {
				t.Errorf("Lookup error %q contains the key", err)
			}
		})
	}
	now = t0.Add(time.Hour)
	if _, err := c.Lookup(expiring); !errors.Is(err, ErrExpired) || strings.Contains(err.Error(), expiring) {
		t.Errorf("Lookup(expired) = %v; want ErrExpired without the key", err)
	}
	if c.Len() != 3 {
		t.Errorf("Len() = %d; want 3", c.Len())
	}
}

func TestCacheSeesRemoteRevocationWithinRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakeStore()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// The manager stands for another replica: its OnChange is not wired here.
		m := NewManager(fs, nil)
		plain, k, _ := m.Create(ctx, CreateOptions{Name: "app"})
		c := NewCache(fs, 2*time.Second, discardLogger())
		go c.Run(ctx)
		synctest.Wait()
		if _, err := c.Lookup(plain); err != nil {
			t.Fatalf("Lookup after Run started = %v", err)
		}
		if err := m.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Lookup(plain); err != nil {
			t.Fatalf("Lookup right after a remote revoke = %v; want the snapshot's answer", err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, err := c.Lookup(plain); !errors.Is(err, ErrRevoked) {
			t.Errorf("Lookup one refresh after revoke = %v; want ErrRevoked", err)
		}

		// Invalidate reloads at once, without waiting for the ticker.
		other, _, _ := m.Create(ctx, CreateOptions{Name: "other"})
		c.Invalidate()
		synctest.Wait()
		if _, err := c.Lookup(other); err != nil {
			t.Errorf("Lookup after Invalidate = %v; want the new key", err)
		}
	})
}

func TestCacheKeepsSnapshotOnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := newFakeStore()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		plain, _, _ := NewManager(fs, nil).Create(ctx, CreateOptions{Name: "app"})
		var logs syncBuffer
		c := NewCache(fs, time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
		if err := c.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		go c.Run(ctx)
		fs.setFail(errors.New("connection refused"))
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		if _, err := c.Lookup(plain); err != nil {
			t.Errorf("Lookup while the store fails = %v; want the last snapshot's answer", err)
		}
		if err := c.Reload(ctx); err == nil {
			t.Errorf("Reload with a failing store succeeded")
		}
		// An outage fails every refresh; the log says so once a minute,
		// with the number of failures it left out.
		out := logs.String()
		if got := strings.Count(out, "keeping the last snapshot"); got != 1 {
			t.Errorf("logged %d refresh failures in 3.5 s; want 1:\n%s", got, out)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		out = logs.String()
		if got := strings.Count(out, "keeping the last snapshot"); got != 2 || !strings.Contains(out, "suppressed=") {
			t.Errorf("after a minute logged %d refresh failures; want 2, the second with suppressed=N:\n%s", got, out)
		}
		if strings.Contains(out, plain) {
			t.Errorf("log contains the plaintext key")
		}
	})
}

func TestCacheSkipsMalformedHash(t *testing.T) {
	fs := newFakeStore()
	fs.keys = []store.Key{{ID: "key_bad", Hash: "zz"}, {ID: "key_ok", Hash: HashKey("tg-OK")}}
	c := NewCache(fs, 0, discardLogger())
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 1 {
		t.Errorf("Len() = %d; want 1", c.Len())
	}
	if k, err := c.Lookup("tg-OK"); err != nil || k.ID != "key_ok" {
		t.Errorf("Lookup = %v, %v; want key_ok", k, err)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	fs := newFakeStore()
	plain, _, _ := NewManager(fs, nil).Create(t.Context(), CreateOptions{Name: "app", Expires: "1d"})
	c := NewCache(fs, 0, discardLogger())
	if err := c.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := c.Lookup(plain); err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %.1f times per call; want 0", allocs)
	}
}

// BenchmarkKeyLookupAndLimit is the per-request auth work: authenticate
// the key from memory and take one unit from its RPM bucket.
func BenchmarkKeyLookupAndLimit(b *testing.B) {
	fs := newFakeStore()
	m := NewManager(fs, nil)
	ctx := context.Background()
	var plain string
	for i := range 1000 { // a realistic number of keys
		p, _, err := m.Create(ctx, CreateOptions{Name: "k", RPM: 1_000_000_000})
		if err != nil {
			b.Fatal(err)
		}
		if i == 500 {
			plain = p
		}
	}
	c := NewCache(fs, 0, discardLogger())
	if err := c.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	lim := limit.NewMemory(limit.MemoryOptions{})
	b.ReportAllocs()
	for b.Loop() {
		k, err := c.Lookup(plain)
		if err != nil {
			b.Fatal(err)
		}
		if d, err := lim.Allow(ctx, k.ID, k.RPM, 1); err != nil || !d.Allowed {
			b.Fatal("denied", err)
		}
	}
}
