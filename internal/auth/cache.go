package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/telemetry/repeat"
)

// Errors of Cache.Lookup. Their messages are written for API clients and
// never contain the key.
var (
	ErrMissingKey = errors.New("missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'")
	ErrUnknownKey = errors.New("invalid API key")
	ErrRevoked    = errors.New("this API key was revoked")
	ErrExpired    = errors.New("this API key has expired")
	// ErrNotReady means no snapshot has loaded yet; call Reload before
	// serving.
	ErrNotReady = errors.New("API keys are not loaded yet; try again shortly")
)

// DefaultRefresh is how often a Cache polls the store when not told
// otherwise. Revocations made on another replica are seen within it.
const DefaultRefresh = 2 * time.Second

// KeyLister is what a Cache reads keys from; store.KeyStore satisfies it.
type KeyLister interface {
	ListKeys(ctx context.Context) ([]store.Key, error)
}

// Cache answers key lookups from an immutable in-memory snapshot of all
// keys, replaced wholesale on every refresh, so the request path takes no
// lock and makes no database call.
type Cache struct {
	src     KeyLister
	refresh time.Duration
	logger  *slog.Logger
	warn    *repeat.Limiter // a database outage fails every refresh

	// Now is the clock used for expiry; nil means time.Now. Set it before
	// the cache is used.
	Now func() time.Time

	snap   atomic.Pointer[snapshot]
	kick   chan struct{}
	loadMu sync.Mutex // one load at a time, so a slow old read cannot win
}

type snapshot struct {
	byHash map[[sha256.Size]byte]*store.Key
	loaded time.Time
}

// NewCache returns a cache over src refreshed every refresh (DefaultRefresh
// when <= 0). It holds no keys until Reload or Run loads them.
func NewCache(src KeyLister, refresh time.Duration, logger *slog.Logger) *Cache {
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	return &Cache{src: src, refresh: refresh, logger: logger, warn: repeat.New(time.Minute, nil), kick: make(chan struct{}, 1)}
}

// Run refreshes the snapshot every refresh interval, and at once after
// Invalidate, until ctx ends. A failed refresh is logged and the last good
// snapshot stays in use: a database hiccup must not lock every client out.
func (c *Cache) Run(ctx context.Context) {
	if c.snap.Load() == nil {
		_ = c.Reload(ctx) // errors are logged inside
	}
	t := time.NewTicker(c.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		_ = c.Reload(ctx) // errors are logged inside
	}
}

// Invalidate asks Run to reload now, without waiting. It does nothing when
// Run is not running; use Reload then.
func (c *Cache) Invalidate() {
	select {
	case c.kick <- struct{}{}:
	default: // a reload is already pending
	}
}

// Reload reads all keys now and swaps the snapshot. On error the previous
// snapshot is kept and the error, also logged, is returned.
func (c *Cache) Reload(ctx context.Context) error {
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	keys, err := c.src.ListKeys(ctx)
	if err != nil {
		if ctx.Err() == nil {
			attrs := []slog.Attr{slog.Any("err", err)}
			if old := c.snap.Load(); old != nil {
				attrs = append(attrs, slog.String("snapshot_age", time.Since(old.loaded).Round(time.Millisecond).String()))
			}
			c.warn.Log(ctx, c.logger, slog.LevelWarn, "refresh", "auth: refreshing keys failed; keeping the last snapshot", attrs...)
		}
		return fmt.Errorf("auth: loading keys: %w", err)
	}
	s := &snapshot{byHash: make(map[[sha256.Size]byte]*store.Key, len(keys)), loaded: time.Now()}
	for i := range keys {
		k := &keys[i]
		var h [sha256.Size]byte
		if n, err := hex.Decode(h[:], []byte(k.Hash)); err != nil || n != sha256.Size {
			c.logger.Warn("auth: skipping key with a malformed hash", "key_id", k.ID)
			continue
		}
		s.byHash[h] = k
	}
	c.snap.Store(s)
	return nil
}

// Len reports how many keys the current snapshot holds.
func (c *Cache) Len() int {
	if s := c.snap.Load(); s != nil {
		return len(s.byHash)
	}
	return 0
}

// Lookup authenticates a plaintext key. The returned Key is shared with
// other callers and must not be modified. It does not allocate.
func (c *Cache) Lookup(plaintext string) (*store.Key, error) {
	if plaintext == "" {
		return nil, ErrMissingKey
	}
	s := c.snap.Load()
	if s == nil {
		return nil, ErrNotReady
	}
	k := s.byHash[sha256.Sum256([]byte(plaintext))]
	if k == nil {
		return nil, ErrUnknownKey
	}
	if !k.RevokedAt.IsZero() {
		return nil, ErrRevoked
	}
	if !k.ExpiresAt.IsZero() {
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		if !now().Before(k.ExpiresAt) {
			return nil, ErrExpired
		}
	}
	return k, nil
}
