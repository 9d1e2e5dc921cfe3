package upstream

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for breaker tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seededRand returns a deterministic, goroutine-safe Rand.
func seededRand(seed uint64) func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// ups builds upstream configs named after their arguments, each serving
// every model at http://127.0.0.1/<name>.
func ups(names ...string) []Config {
	cs := make([]Config, len(names))
	for i, n := range names {
		cs[i] = Config{Name: n, BaseURL: "http://127.0.0.1:9/" + n}
	}
	return cs
}

func mustPool(t testing.TB, opts Options) *Pool {
	t.Helper()
	if opts.Rand == nil {
		opts.Rand = seededRand(1)
	}
	p, err := NewPool(opts, nil)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	return p
}

// names returns "upstream:model" for each target, for compact comparisons.
func names(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Upstream.Name() + ":" + t.Model
	}
	return out
}

func first(t *testing.T, p *Pool, model string) string {
	t.Helper()
	plan, err := p.Plan(model)
	if err != nil {
		t.Fatalf("Plan(%q): %v", model, err)
	}
	return plan[0].Upstream.Name()
}

func boolp(b bool) *bool { return &b }

// fail and ok are canned results.
var (
	failResult = Result{Status: 503}
	okResult   = Result{Status: 200, TTFB: 10 * time.Millisecond}
)

// run acquires a slot for model "m" on u and completes it with r: one
// attempt of its own request.
func run(t *testing.T, u *Upstream, r Result) {
	t.Helper()
	runModel(t, u, "m", r)
}

func runModel(t *testing.T, u *Upstream, model string, r Result) {
	t.Helper()
	a, err := u.AcquireModel(t.Context(), model, 0)
	if err != nil {
		t.Fatalf("AcquireModel(%s, %s): %v", u.Name(), model, err)
	}
	a.Done(r)
}

// pairStatus returns the health of model on upstream name (zero if untracked).
func pairStatus(p *Pool, name, model string) ModelStatus {
	for _, s := range p.Status() {
		if s.Name != name {
			continue
		}
		for _, m := range s.ModelHealth {
			if m.Model == model {
				return m
			}
		}
	}
	return ModelStatus{State: StateClosed}
}

func pairState(p *Pool, name, model string) State { return pairStatus(p, name, model).State }
