// Package pricefeed loads prices_from (a file path or an http(s) URL) into a
// ledger.Pricer, once or periodically. It lives apart from ledger so that
// the packages importing ledger's records (the store above all) do not
// depend on net/http.
package pricefeed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ledger"
)

// maxPriceFile bounds a price file or download (LiteLLM's is about 1.5 MB).
const maxPriceFile = 64 << 20

// Loader loads prices_from (a path or an http(s) URL) into a Pricer,
// once or periodically.
type Loader struct {
	Pricer   *ledger.Pricer
	From     string
	Currency string       // the deployment currency
	Client   *http.Client // nil: a client with a 30 s timeout
	Logger   *slog.Logger // nil: no logging

	failing bool // the last load failed (so a failure streak logs once)
}

// Load reads From and, when it parses, replaces the Pricer's file/URL layer.
// On failure the last good prices stay.
func (l *Loader) Load(ctx context.Context) (int, error) {
	b, source, err := l.read(ctx)
	if err != nil {
		return 0, err
	}
	entries, err := ledger.ParsePrices(b, source, l.Currency)
	if err != nil {
		return 0, fmt.Errorf("prices from %s: %w", l.From, err)
	}
	l.Pricer.SetFrom(entries)
	return len(entries), nil
}

func (l *Loader) read(ctx context.Context) ([]byte, string, error) {
	if !strings.HasPrefix(l.From, "http://") && !strings.HasPrefix(l.From, "https://") {
		f, err := os.Open(l.From)
		if err != nil {
			return nil, "", fmt.Errorf("prices from: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxPriceFile+1))
		if err == nil && len(b) > maxPriceFile {
			err = fmt.Errorf("larger than %d bytes", maxPriceFile)
		}
		if err != nil {
			return nil, "", fmt.Errorf("prices from %s: %w", l.From, err)
		}
		return b, ledger.SourceFile, nil
	}
	c := l.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.From, nil)
	if err != nil {
		return nil, "", fmt.Errorf("prices from: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // its text repeats the URL, which may carry a token
		}
		return nil, "", fmt.Errorf("prices from %s: %w", redactURL(l.From), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("prices from %s: HTTP %d", redactURL(l.From), resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPriceFile+1))
	if err == nil && len(b) > maxPriceFile {
		err = fmt.Errorf("larger than %d bytes", maxPriceFile)
	}
	if err != nil {
		return nil, "", fmt.Errorf("prices from %s: %w", redactURL(l.From), err)
	}
	return b, ledger.SourceURL, nil
}

// redactURL drops the query and user info of a URL for messages: a price
// URL may carry a token.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if s, rest, ok := strings.Cut(u, "://"); ok {
		if at := strings.IndexByte(rest, '@'); at >= 0 && at < strings.IndexByte(rest+"/", '/') {
			rest = rest[at+1:]
		}
		return s + "://" + rest
	}
	return u
}

// Run reloads every interval until ctx ends. A failure keeps the last good
// prices and is logged once per failure streak (and the recovery once).
func (l *Loader) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.report(l.Load(ctx))
	}
}

// report logs a load result: the first failure of a streak as a warning,
// the first success after one as info.
func (l *Loader) report(n int, err error) {
	switch {
	case err != nil && !l.failing:
		l.failing = true
		if l.Logger != nil {
			l.Logger.Warn("price refresh failed; keeping the last good prices", "error", err)
		}
	case err == nil && l.failing:
		l.failing = false
		if l.Logger != nil {
			l.Logger.Info("price refresh works again", "prices", n)
		}
	}
}
