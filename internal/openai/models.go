package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/upstream"
)

// Models serves GET /v1/models: the union of the upstreams' own lists
// (filtered by the models each is configured to serve) plus aliases, cached
// for TTL. If no upstream answers and nothing is cached it is an error.
type Models struct {
	Pool      func() *upstream.Pool
	Transport http.RoundTripper
	TTL       time.Duration // default 1m
	Logger    *slog.Logger
	// Allowed returns the caller's model filter (gateway key permissions),
	// looked up once per request; nil = all.
	Allowed func(r *http.Request) func(model string) bool

	mu      sync.Mutex
	fetched time.Time
	pool    *upstream.Pool
	cached  []ModelEntry
}

// ModelEntry is one model in the OpenAI list shape. Extra upstream fields
// are kept.
type ModelEntry map[string]any

// ID returns the model id.
func (m ModelEntry) ID() string { s, _ := m["id"].(string); return s }

func (m *Models) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	list, err := m.List(r.Context())
	if err != nil {
		WriteError(w, NewError(http.StatusBadGateway, TypeUpstream, "upstream_unreachable",
			"could not list models: "+apierr.Sanitize(err.Error())), w.Header().Get("X-Request-Id"))
		return
	}
	allowed := func(string) bool { return true }
	if m.Allowed != nil {
		allowed = m.Allowed(r)
	}
	out := make([]ModelEntry, 0, len(list))
	for _, e := range list {
		if allowed(e.ID()) {
			out = append(out, e)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": out})
}

// List returns the merged model list, from cache when fresh.
func (m *Models) List(ctx context.Context) ([]ModelEntry, error) {
	pool := m.Pool()
	ttl := m.TTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	m.mu.Lock()
	defer m.mu.Unlock() // one fetch at a time; others wait for its result
	if m.pool == pool && m.cached != nil && time.Since(m.fetched) < ttl {
		return m.cached, nil
	}
	list, err := m.fetch(ctx, pool)
	if err != nil {
		if m.cached != nil && m.pool == pool {
			return m.cached, nil // stale beats nothing
		}
		return nil, err
	}
	m.cached, m.fetched, m.pool = list, time.Now(), pool
	return list, nil
}

func (m *Models) fetch(ctx context.Context, pool *upstream.Pool) ([]ModelEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	seen := map[string]bool{}
	var out []ModelEntry
	var lastErr error
	answered := 0
	for _, u := range pool.Upstreams() {
		entries, err := m.fetchOne(ctx, u)
		if err != nil {
			lastErr = err
			if m.Logger != nil {
				m.Logger.Warn("list models failed", "upstream", u.Name(), "error", apierr.Sanitize(err.Error()))
			}
			continue
		}
		answered++
		for _, e := range entries {
			id := e.ID()
			if id == "" || seen[id] {
				continue
			}
			if _, err := pool.Plan(id); err != nil {
				continue // this upstream lists it but is not configured to serve it
			}
			seen[id] = true
			out = append(out, e)
		}
	}
	if answered == 0 && lastErr != nil {
		return nil, lastErr
	}
	for _, id := range pool.Models() {
		if !seen[id] {
			seen[id] = true
			out = append(out, ModelEntry{"id": id, "object": "model", "owned_by": "tollgate"})
		}
	}
	slices.SortFunc(out, func(a, b ModelEntry) int {
		switch {
		case a.ID() < b.ID():
			return -1
		case a.ID() > b.ID():
			return 1
		}
		return 0
	})
	return out, nil
}

func (m *Models) fetchOne(ctx context.Context, u *upstream.Upstream) ([]ModelEntry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL("/models"), nil)
	if err != nil {
		return nil, err
	}
	u.SetHeaders(req.Header)
	rt := m.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.Name(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", u.Name(), resp.StatusCode)
	}
	var body struct {
		Data []ModelEntry `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: decode models: %w", u.Name(), err)
	}
	return body.Data, nil
}
