// Package repeat rate-limits log lines of a repeating error: the first
// occurrence is logged, then at most one line per interval carrying the
// number of repeats suppressed meanwhile. A Redis or database outage then
// writes a handful of lines, not one per request.
//
// It lives apart from package telemetry, which imports the proxy and
// OpenTelemetry, so that low-level packages (the ledger, limits) can use it.
package repeat

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the keys a Limiter tracks. Keys should be a few fixed
// strings per call site; if a caller derives them from data, the map is
// cleared rather than allowed to grow.
const maxKeys = 256

// Limiter decides which repeats of a log line to write. It is safe for
// concurrent use. The zero value is not usable; call New.
type Limiter struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	last       time.Time // when a line was last written
	suppressed int
}

// New returns a Limiter that writes a key's line at most once per interval
// (10s when interval <= 0). now is the clock; nil means time.Now.
func New(interval time.Duration, now func() time.Time) *Limiter {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{interval: interval, now: now, keys: make(map[string]*entry)}
}

// Allow reports whether to write key's line now and, if so, how many
// repeats were suppressed since the last line written.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= maxKeys {
			clear(l.keys)
		}
		l.keys[key] = &entry{last: now}
		return true, 0
	}
	if now.Sub(e.last) < l.interval {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}

// Log writes msg at level through logger unless key's line was written less
// than the interval ago; a written line carries "suppressed": the repeats
// dropped since the previous one (when any).
func (l *Limiter) Log(ctx context.Context, logger *slog.Logger, level slog.Level, key, msg string, attrs ...slog.Attr) {
	ok, n := l.Allow(key)
	if !ok {
		return
	}
	if n > 0 {
		attrs = append(attrs, slog.Int("suppressed", n))
	}
	logger.LogAttrs(ctx, level, msg, attrs...)
}

// Printer adapts a printf-style library logger (go-redis's) to slog through
// a Limiter: each line goes out as msg with its text in "detail", at most
// once per interval, so a dependency that logs on every failed dial cannot
// flood the log during an outage.
type Printer struct {
	Limiter *Limiter
	Logger  *slog.Logger
	Level   slog.Level
	Key     string
	Msg     string
}

// Printf implements go-redis's internal.Logging.
func (p Printer) Printf(ctx context.Context, format string, v ...any) {
	p.Limiter.Log(ctx, p.Logger, p.Level, p.Key, p.Msg, slog.String("detail", fmt.Sprintf(format, v...)))
}
