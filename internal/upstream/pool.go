package upstream

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxCachedRoutes bounds the per-model route cache. Model names come from
// clients, so the cache is cleared when full rather than allowed to grow.
const maxCachedRoutes = 1024

// maxCachedModelLen is the longest model name cached; real ids are far
// shorter.
const maxCachedModelLen = 256

// Pool is an immutable set of upstreams and aliases plus a route cache. It
// is safe for concurrent use. A config reload builds a new Pool with the old
// one as prev.
type Pool struct {
	env      *env
	ups      []*Upstream
	byName   map[string]*Upstream
	aliases  map[string]aliasSpec
	strat    strategy
	fallback bool
	models   []string

	mu    sync.RWMutex
	cache map[string]*route
}

type aliasSpec struct {
	targets []string
	strat   strategy
}

// route is the precomputed expansion of one requested model.
type route struct {
	alias  string
	groups []group
	total  int
}

// group is one target model's serving upstreams, in config order.
type group struct {
	strat   strategy
	members []member
}

type member struct {
	u     *Upstream
	model string // as sent upstream
}

// Target is one candidate for a request.
type Target struct {
	// Upstream is where to send the attempt.
	Upstream *Upstream
	// Model is the model id to send upstream, after alias expansion and the
	// upstream's model_map.
	Model string
	// Alias is the alias the client asked for, or "" for a plain model.
	Alias string
	// Open reports that the upstream's circuit or this (upstream, model)
	// pair's refused attempts when Plan ran: open, half-open with its probe
	// running, or cooling down after a 429. Plan puts such targets last.
	Open bool
	// CoolUntil is when an Open target takes attempts again (zero if not
	// Open).
	CoolUntil time.Time
	// Panic is set by Plan on the first target when every target was Open:
	// nowhere healthy is left, so Target.Acquire lets this attempt through
	// anyway and the client gets the upstream's real answer. Its result
	// decides the circuit like a probe's.
	Panic bool

	plan *planState // the request this target belongs to
	idx  int        // in plan.targets
}

// NewPool validates opts and builds a Pool. Upstreams in prev with the same
// name and base URL hand over their health (breaker state, latency average,
// counters, in-flight attempts); prev may be nil. Errors are one line each
// and never contain an API key or header value.
func NewPool(opts Options, prev *Pool) (*Pool, error) {
	if len(opts.Upstreams) == 0 {
		return nil, fmt.Errorf("upstream: no upstreams configured")
	}
	br, err := opts.Breaker.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	strat, err := parseStrategy(opts.Routing.Strategy)
	if err != nil {
		return nil, fmt.Errorf("upstream: routing: %w", err)
	}
	up := br
	up.FailureRatio = -1 // the upstream as a whole opens on consecutive sick signs only
	e := &env{now: opts.Now, rand: opts.Rand, price: opts.Price, breaker: br, upBreak: up, log: opts.Logger, onChange: opts.OnStateChange}
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Float64
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{
		env:      e,
		byName:   make(map[string]*Upstream, len(opts.Upstreams)),
		aliases:  make(map[string]aliasSpec, len(opts.Aliases)),
		strat:    strat,
		fallback: opts.Routing.Fallback == nil || *opts.Routing.Fallback,
		cache:    make(map[string]*route),
	}
	for i := range opts.Upstreams {
		c := opts.Upstreams[i]
		if err := validateConfig(i, &c); err != nil {
			return nil, fmt.Errorf("upstream: %w", err)
		}
		if _, dup := p.byName[c.Name]; dup {
			return nil, fmt.Errorf("upstream: upstreams[%d]: name %q is used twice", i, c.Name)
		}
		h := newHealth()
		if prev != nil {
			if old := prev.byName[c.Name]; old != nil && old.baseURL == strings.TrimRight(c.BaseURL, "/") {
				h = old.h
			}
		}
		u := newUpstream(c, e, h)
		p.ups = append(p.ups, u)
		p.byName[c.Name] = u
	}
	if err := p.addAliases(opts.Aliases); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	p.models = p.modelList()
	return p, nil
}

func (p *Pool) addAliases(aliases map[string]Alias) error {
	names := make([]string, 0, len(aliases))
	for name := range aliases {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic first error
	for _, name := range names {
		a := aliases[name]
		if name == "" || isGlob(name) {
			return fmt.Errorf("alias %q: name must be non-empty and contain no '*' or '?'", name)
		}
		if len(a.Targets) == 0 {
			return fmt.Errorf("alias %q: targets must not be empty", name)
		}
		s, err := parseStrategy(a.Strategy)
		if err != nil {
			return fmt.Errorf("alias %q: %w", name, err)
		}
		if a.Strategy == "" {
			s = p.strat
		}
		for _, t := range a.Targets {
			if t == "" {
				return fmt.Errorf("alias %q: empty target", name)
			}
			if !slices.ContainsFunc(p.ups, func(u *Upstream) bool { return u.serves(t) }) {
				return fmt.Errorf("alias %q: target %q is served by no upstream", name, t)
			}
		}
		p.aliases[name] = aliasSpec{targets: slices.Clone(a.Targets), strat: s}
	}
	return nil
}

func (p *Pool) modelList() []string {
	var ms []string
	for _, u := range p.ups {
		for _, m := range u.models {
			if !isGlob(m) {
				ms = append(ms, m)
			}
		}
	}
	for name := range p.aliases {
		ms = append(ms, name)
	}
	slices.Sort(ms)
	return slices.Compact(ms)
}

// Plan returns the ordered candidates for model: for an alias, each target
// in turn (its upstreams ordered by the alias's strategy), otherwise the
// upstreams serving model ordered by the routing strategy. Within a target,
// upstreams that can take an attempt now come first, full ones
// (max_parallel) next. Targets whose upstream or (upstream, model) circuit
// refuses attempts (open, half-open with the probe running, or cooling down
// after a 429) go to the very end, soonest cool-down first, marked Open:
// Target.Acquire refuses them while a healthy alternative exists. When
// every target is Open, the first is marked Panic and Target.Acquire lets it
// through. With fallback disabled Plan returns only the first candidate. It
// returns an error wrapping ErrNoUpstream when nothing serves model.
//
// Each call returns fresh targets that carry the request's identity: use
// one plan per client request and Target.Acquire for its attempts, so a
// request counts once toward each pair's health however often it retries.
func (p *Pool) Plan(model string) ([]Target, error) {
	r := p.route(model)
	if r.total == 0 {
		return nil, fmt.Errorf("%w %q", ErrNoUpstream, clip(model))
	}
	// One allocation per plan for the usual handful of targets: the
	// request's state holds the returned slice and its flags inline.
	ps := &planState{}
	var out []Target
	if r.total <= len(ps.tbuf) {
		out, ps.once = ps.tbuf[:r.total], ps.obuf[:r.total]
	} else {
		out, ps.once = make([]Target, r.total), make([]atomic.Bool, r.total)
	}
	// Four on the stack, as planState holds four targets: a larger array
	// made this the frame that grew a stream's goroutine stack past 4 KiB
	// (docs/perf.md, thirteenth session).
	var stack [4]cand
	cs := stack[:0]
	if r.total > len(stack) {
		cs = make([]cand, 0, r.total)
	}
	cs = cs[:r.total]
	now := p.env.now()
	i := 0
	for gi := range r.groups {
		g := &r.groups[gi]
		seg, segC := out[i:i+len(g.members)], cs[i:i+len(g.members)]
		for j, m := range g.members {
			seg[j] = Target{Upstream: m.u, Model: m.model, Alias: r.alias}
		}
		p.order(g.strat, seg, segC, now)
		i += len(g.members)
	}
	sinkRejecting(out, cs)
	if !p.fallback {
		out = out[:1:1]
	}
	ps.targets = out
	for i := range out {
		out[i].plan, out[i].idx = ps, i
	}
	return out, nil
}

// clip bounds a client-supplied model name for error messages.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// route returns the cached expansion of model, building it on a miss.
func (p *Pool) route(model string) *route {
	p.mu.RLock()
	r := p.cache[model]
	p.mu.RUnlock()
	if r != nil {
		return r
	}
	r = p.buildRoute(model)
	if len(model) > maxCachedModelLen {
		return r // don't let huge client-chosen keys pin memory
	}
	p.mu.Lock()
	if len(p.cache) >= maxCachedRoutes {
		clear(p.cache)
	}
	p.cache[model] = r
	p.mu.Unlock()
	return r
}

func (p *Pool) buildRoute(model string) *route {
	if a, ok := p.aliases[model]; ok {
		r := &route{alias: model}
		for _, t := range a.targets {
			if g := p.group(t, a.strat); len(g.members) > 0 {
				r.groups = append(r.groups, g)
				r.total += len(g.members)
			}
		}
		return r
	}
	g := p.group(model, p.strat)
	if len(g.members) == 0 {
		return &route{}
	}
	return &route{groups: []group{g}, total: len(g.members)}
}

func (p *Pool) group(model string, s strategy) group {
	g := group{strat: s}
	for _, u := range p.ups {
		if u.serves(model) {
			g.members = append(g.members, member{u: u, model: u.mapModel(model)})
		}
	}
	return g
}

// Models returns the model ids clients can ask for: every exact (non-glob)
// model an upstream declares, plus the alias names; sorted, no duplicates.
func (p *Pool) Models() []string { return slices.Clone(p.models) }

// Upstreams returns the upstreams in config order.
func (p *Pool) Upstreams() []*Upstream { return slices.Clone(p.ups) }

// Upstream returns the upstream with the given name, or nil.
func (p *Pool) Upstream(name string) *Upstream { return p.byName[name] }

// Ready reports whether at least one upstream's own circuit is not open.
// It is informational (shown by /healthz?verbose): readiness does not
// depend on it, because Plan still lets a request through when every
// circuit is open.
func (p *Pool) Ready() bool {
	for _, u := range p.ups {
		if u.State() != StateOpen {
			return true
		}
	}
	return false
}

// Status is one upstream's health, for GET /admin/upstreams, metrics and
// /healthz?verbose. It never contains the API key or header values.
type Status struct {
	Name    string   `json:"name"`
	BaseURL string   `json:"base_url"`
	API     string   `json:"api"`
	Models  []string `json:"models"`
	Weight  int      `json:"weight"`
	// State is the upstream's own circuit: closed, open or half_open. It
	// opens only on signs that the upstream as a whole is sick (connect and
	// TLS errors, resets across several models); a failing model opens its
	// pair's circuit instead (ModelHealth).
	State State `json:"state"`
	// OpenUntil is when an open circuit starts probing; zero otherwise.
	OpenUntil   time.Time `json:"open_until,omitzero"`
	InFlight    int       `json:"in_flight"`
	MaxParallel int       `json:"max_parallel"`
	// LatencyMS is the moving average of time to first byte of successful
	// attempts, all models together; 0 before the first sample.
	LatencyMS float64 `json:"latency_ms"`
	// ErrorRatio is the failed share of the counted verdicts (one per
	// request and pair) of all models over the breaker window.
	ErrorRatio float64 `json:"error_ratio"`
	// ConsecutiveFailures counts upstream-level failures in a row while
	// the upstream's circuit is closed.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Requests and Failures count attempts since start (cancelled ones
	// excluded), carried over reloads.
	Requests int64 `json:"requests"`
	Failures int64 `json:"failures"`
	// LastError describes the last failure, with secrets removed.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Unhealthy counts the models in ModelHealth that are not closed.
	Unhealthy int `json:"unhealthy_models"`
	// ModelHealth is each tracked (upstream, model) pair, by model as
	// sent upstream, sorted by model.
	ModelHealth []ModelStatus `json:"model_health"`
}

// ModelStatus is the health of one model on one upstream.
type ModelStatus struct {
	Model string `json:"model"`
	// State is closed, open, half_open or cooling (after a 429).
	State State `json:"state"`
	// CoolUntil is when an open or cooling pair takes attempts again.
	CoolUntil           time.Time `json:"cool_until,omitzero"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	ErrorRatio          float64   `json:"error_ratio"`
	LatencyMS           float64   `json:"latency_ms"`
	InFlight            int       `json:"in_flight"`
	Requests            int64     `json:"requests"`
	Failures            int64     `json:"failures"`
	LastError           string    `json:"last_error,omitempty"`
	LastErrorAt         time.Time `json:"last_error_at,omitzero"`
}

// Status returns every upstream's health in config order.
func (p *Pool) Status() []Status {
	out := make([]Status, 0, len(p.ups))
	now := p.env.now()
	for _, u := range p.ups {
		out = append(out, u.status(now))
	}
	return out
}

func (u *Upstream) status(now time.Time) Status {
	s := Status{
		Name:        u.name,
		BaseURL:     u.baseURL,
		API:         u.api,
		Models:      slices.Clone(u.models),
		Weight:      int(u.weight),
		MaxParallel: u.maxParallel,
		ModelHealth: []ModelStatus{},
	}
	h := u.h
	w := u.env.breaker.Window
	h.mu.Lock()
	trs := []transition{h.up.advance(now)}
	s.State = h.up.state
	if h.up.state == StateOpen {
		s.OpenUntil = h.up.openUntil
	}
	s.InFlight = h.st.inFlight
	s.LatencyMS = h.st.latencyMS
	if req, fail := h.all.sum(now, w); req > 0 {
		s.ErrorRatio = float64(fail) / float64(req)
	}
	s.ConsecutiveFailures = h.up.consecutive
	s.Requests, s.Failures = h.st.requests, h.st.failures
	s.LastError, s.LastErrorAt = h.st.lastErr, h.st.lastErrAt
	for m, pr := range h.pairs {
		tr := pr.br.advance(now)
		tr.model = m
		trs = append(trs, tr)
		ms := ModelStatus{
			Model: m, State: pr.state(now), ConsecutiveFailures: pr.br.consecutive,
			ErrorRatio: pr.br.errorRatio(now, w), LatencyMS: pr.st.latencyMS, InFlight: pr.st.inFlight,
			Requests: pr.st.requests, Failures: pr.st.failures, LastError: pr.st.lastErr, LastErrorAt: pr.st.lastErrAt,
		}
		switch ms.State {
		case StateOpen:
			ms.CoolUntil = pr.br.openUntil
		case StateCooling:
			ms.CoolUntil = pr.coolUntil
		}
		if ms.State != StateClosed {
			s.Unhealthy++
		}
		s.ModelHealth = append(s.ModelHealth, ms)
	}
	h.mu.Unlock()
	u.emit(trs...)
	slices.SortFunc(s.ModelHealth, func(a, b ModelStatus) int { return strings.Compare(a.Model, b.Model) })
	return s
}
