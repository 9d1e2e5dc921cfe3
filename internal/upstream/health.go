package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

var inf = math.Inf(1)

// env is what all upstreams of one Pool share.
type env struct {
	now      func() time.Time
	rand     func() float64
	price    func(model string) (int64, bool)
	breaker  BreakerOptions // for (upstream, model) pairs
	upBreak  BreakerOptions // for the upstream as a whole: consecutive only
	log      *slog.Logger
	onChange func(upstream string, from, to State)
}

// Cool-down after a 429: the upstream's Retry-After, or rateLimitCoolDown
// when it sends none, never more than maxRateLimitCoolDown (a hostile or
// buggy Retry-After must not park a model for a day).
const (
	rateLimitCoolDown    = 5 * time.Second
	maxRateLimitCoolDown = 5 * time.Minute
)

// maxPairs bounds the (upstream, model) pairs tracked per upstream. Model
// names come from clients when an upstream serves a glob, so when the map is
// full idle healthy pairs are forgotten; if none is idle, new pairs are
// served untracked (as healthy).
const maxPairs = 1024

// health is the mutable state of one upstream and its (upstream, model)
// pairs. A reloaded Pool reuses it for an upstream with the same name and
// base URL, so breakers, averages and in-flight counts carry over, and
// attempts started under the old Pool still release their slots correctly.
type health struct {
	mu     sync.Mutex
	up     breaker // the upstream's own: only signs the upstream itself is sick
	st     stats   // every model together
	all    window  // every counted verdict, for Status.ErrorRatio
	resets resetTracker
	wake   chan struct{} // closed when a slot frees; made only when someone waits
	pairs  map[string]*pair
}

// pair is the health of one model on one upstream.
type pair struct {
	br        breaker
	st        stats
	coolUntil time.Time // after a 429
	lastUsed  time.Time
}

func newHealth() *health {
	return &health{up: breaker{state: StateClosed}, pairs: make(map[string]*pair)}
}

func newPair() *pair { return &pair{br: breaker{state: StateClosed}} }

// pairLocked returns model's pair, or nil when it is not tracked and create
// is false.
func (h *health) pairLocked(model string, now time.Time, create bool) *pair {
	if p := h.pairs[model]; p != nil || !create {
		return p
	}
	if len(h.pairs) >= maxPairs {
		for m, p := range h.pairs {
			if p.idle(now) {
				delete(h.pairs, m)
			}
		}
		if len(h.pairs) >= maxPairs {
			return newPair() // untracked: healthy, forgotten after the attempt
		}
	}
	p := newPair()
	h.pairs[model] = p
	return p
}

// idle reports whether forgetting p loses nothing that steers traffic.
func (p *pair) idle(now time.Time) bool {
	return p.st.inFlight == 0 && p.br.state == StateClosed && p.br.consecutive == 0 && !now.Before(p.coolUntil)
}

// state is the pair's state as shown: cooling wins over a closed breaker.
func (p *pair) state(now time.Time) State {
	if p.br.state == StateClosed && now.Before(p.coolUntil) {
		return StateCooling
	}
	return p.br.state
}

// emit reports state changes; called without the lock held.
func (u *Upstream) emit(trs ...transition) {
	for _, tr := range trs {
		if tr.to == "" {
			continue
		}
		level := slog.LevelInfo
		if tr.to == StateOpen || tr.to == StateCooling {
			level = slog.LevelWarn
		}
		if tr.model != "" {
			u.env.log.LogAttrs(context.Background(), level, "upstream model circuit state changed",
				slog.String("upstream", u.name), slog.String("model", clip(tr.model)),
				slog.String("from", string(tr.from)), slog.String("to", string(tr.to)))
			continue
		}
		u.env.log.LogAttrs(context.Background(), level, "upstream circuit state changed",
			slog.String("upstream", u.name), slog.String("from", string(tr.from)), slog.String("to", string(tr.to)))
		if u.env.onChange != nil {
			u.env.onChange(u.name, tr.from, tr.to)
		}
	}
}

// Result is the outcome of one attempt, fed back through Attempt.Done.
type Result struct {
	// Status is the upstream's HTTP status; 0 when no response arrived.
	Status int
	// Err is the transport error (connect, reset, timeout), if any. With a
	// Status it means the body broke off after the headers. When the
	// attempt's own timeout fired, pass an error wrapping ErrTimeout: the
	// transport reports only "context canceled", which would read as the
	// client going away.
	Err error
	// TTFB is the time from sending the request to the response headers.
	TTFB time.Duration
	// RetryAfter is the upstream's Retry-After on a 429 (0 when absent):
	// the pair cools down that long.
	RetryAfter time.Duration
	// Cancelled means the client went away; that is not the upstream's fault,
	// so the attempt does not count for health. An Err wrapping
	// context.Canceled (and not ErrTimeout) is treated the same.
	Cancelled bool
}

// Failed reports whether r counts toward a circuit breaker: see Classify.
func (r Result) Failed() bool {
	k := Classify(r)
	return k.pairFailure() || k.upstreamFailure()
}

// Attempt is a reserved slot for one attempt at a (upstream, model) pair.
type Attempt struct {
	u      *Upstream
	p      *pair
	model  string
	once   *atomic.Bool // shared by a request's attempts at one target; nil: every attempt counts
	upGen  uint64
	prGen  uint64
	upProb bool
	prProb bool
	forced bool
	done   atomic.Bool
}

// Acquire reserves a slot for one attempt at t, the way Plan meant it: the
// attempts of one request at one Target count once toward health (the first
// verdict; later retries of the same target are not counted again), and a
// Target with Panic set is let through although its circuit is open. See
// Upstream.AcquireModel for the errors.
//
// The panic rule is also applied at the moment of the attempt: when t is
// refused for health, and no other target of the same plan could take an
// attempt now and none cools down sooner than t, the attempt is let
// through. So a request that retries the only target after it answered
// 429 or 500 still reaches the upstream instead of getting a synthesized
// refusal.
func (t Target) Acquire(ctx context.Context, wait time.Duration) (*Attempt, error) {
	var once *atomic.Bool
	if t.plan != nil {
		once = &t.plan.once[t.idx]
	}
	a, err := t.Upstream.acquire(ctx, t.Model, wait, t.Panic, once)
	if err != nil && errors.Is(err, ErrCircuitOpen) && t.plan != nil && t.plan.lastResort(t.idx) {
		return t.Upstream.acquire(ctx, t.Model, wait, true, once)
	}
	return a, err
}

// planState is shared by the targets of one Plan call: one client request.
type planState struct {
	targets []Target
	once    []atomic.Bool // per target: the request's verdict was counted
	tbuf    [4]Target
	obuf    [4]atomic.Bool
}

// lastResort reports whether target i, refused for health, is where the
// request should go anyway: no other target can take an attempt now and
// none cools down sooner.
func (ps *planState) lastResort(i int) bool {
	t := ps.targets[i]
	now := t.Upstream.env.now()
	mine := t.Upstream.snapshot(t.Model, now)
	if mine.tier != 2 {
		return false // refused for another reason meanwhile; let the caller retry
	}
	for j, o := range ps.targets {
		if j == i || (o.Upstream == t.Upstream && o.Model == t.Model) {
			continue
		}
		s := o.Upstream.snapshot(o.Model, now)
		if s.tier < 2 || s.coolUntil.Before(mine.coolUntil) {
			return false
		}
	}
	return true
}

// Acquire reserves a slot for an attempt that names no model (the legacy
// entry point): the pair "" stands for every model, every attempt counts,
// and 429 cool-downs do not apply. Prefer Target.Acquire.
func (u *Upstream) Acquire(ctx context.Context, wait time.Duration) (*Attempt, error) {
	return u.acquire(ctx, "", wait, false, nil)
}

// AcquireModel reserves a slot for one attempt at model (as sent upstream).
// It returns an error wrapping ErrCircuitOpen when the upstream's circuit or
// the pair's is open (or half-open with its probe running), ErrCoolingDown
// (which also matches ErrCircuitOpen) while the pair cools down after a 429,
// and ErrSaturated when max_parallel slots stay full for wait (0 means don't
// wait). It returns ctx's error if ctx ends first. On success the caller must
// call Done exactly once.
func (u *Upstream) AcquireModel(ctx context.Context, model string, wait time.Duration) (*Attempt, error) {
	return u.acquire(ctx, model, wait, false, nil)
}

func (u *Upstream) acquire(ctx context.Context, model string, wait time.Duration, force bool, once *atomic.Bool) (*Attempt, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.name, err)
	}
	h := u.h
	var timer *time.Timer
	for {
		h.mu.Lock()
		now := u.env.now()
		p := h.pairLocked(model, now, true)
		trUp, trPr := h.up.advance(now), p.br.advance(now)
		trPr.model = model
		if err := u.refusal(p, model, now, force); err != nil {
			h.mu.Unlock()
			u.emit(trUp, trPr)
			return nil, err
		}
		if u.maxParallel == 0 || h.st.inFlight < u.maxParallel {
			a := u.admitLocked(p, model, now, force, once)
			h.mu.Unlock()
			u.emit(trUp, trPr)
			return a, nil
		}
		if wait <= 0 {
			h.mu.Unlock()
			u.emit(trUp, trPr)
			return nil, fmt.Errorf("upstream %q: %w (max_parallel %d)", u.name, ErrSaturated, u.maxParallel)
		}
		if h.wake == nil {
			h.wake = make(chan struct{})
		}
		wake := h.wake
		h.mu.Unlock()
		u.emit(trUp, trPr)
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-wake: // a slot freed; race for it
		case <-timer.C:
			return nil, fmt.Errorf("upstream %q: %w after waiting %v (max_parallel %d)", u.name, ErrSaturated, wait, u.maxParallel)
		case <-ctx.Done():
			return nil, fmt.Errorf("upstream %q: waiting for a slot: %w", u.name, ctx.Err())
		}
	}
}

// refusal returns why an ordinary attempt at p is refused now, or nil.
// Forced (panic) attempts are never refused for health.
func (u *Upstream) refusal(p *pair, model string, now time.Time, force bool) error {
	if force {
		return nil
	}
	h := u.h
	switch {
	case h.up.rejecting():
		return fmt.Errorf("upstream %q: %w", u.name, ErrCircuitOpen)
	case p.br.rejecting():
		return fmt.Errorf("upstream %q model %q: %w", u.name, clip(model), ErrCircuitOpen)
	case model != "" && now.Before(p.coolUntil):
		return fmt.Errorf("upstream %q model %q: %w for %v", u.name, clip(model), ErrCoolingDown,
			p.coolUntil.Sub(now).Round(time.Millisecond))
	}
	return nil
}

func (u *Upstream) admitLocked(p *pair, model string, now time.Time, force bool, once *atomic.Bool) *Attempt {
	h := u.h
	h.st.inFlight++
	p.st.inFlight++
	p.lastUsed = now
	a := &Attempt{u: u, p: p, model: model, once: once, upGen: h.up.gen, prGen: p.br.gen, forced: force}
	if h.up.state == StateHalfOpen && !h.up.probing {
		h.up.probing, a.upProb = true, true
	}
	if p.br.state == StateHalfOpen && !p.br.probing {
		p.br.probing, a.prProb = true, true
	}
	return a
}

// Upstream returns the upstream the attempt is for.
func (a *Attempt) Upstream() *Upstream { return a.u }

// Model returns the model (as sent upstream) the attempt is for.
func (a *Attempt) Model() string { return a.model }

// Done releases the slot and feeds r to the health of the pair and of the
// upstream (see Classify for what counts where). Call it exactly once per
// Acquire, when the attempt's outcome is known (for a stream, at its end);
// later calls do nothing.
func (a *Attempt) Done(r Result) {
	if !a.done.CompareAndSwap(false, true) {
		return
	}
	u, h, p := a.u, a.u.h, a.p
	kind := Classify(r)
	var msg string
	if kind != KindOK && kind != KindCancelled {
		if r.Err != nil {
			msg = string(kind) + ": " + u.scrub(r.Err.Error())
		} else {
			msg = fmt.Sprintf("HTTP %d", r.Status)
		}
	}
	now := u.env.now()
	var trUp, trPr transition
	h.mu.Lock()
	h.st.inFlight--
	p.st.inFlight--
	if h.wake != nil {
		close(h.wake)
		h.wake = nil
	}
	if a.upProb && a.upGen == h.up.gen {
		h.up.probing = false
	}
	if a.prProb && a.prGen == p.br.gen {
		p.br.probing = false
	}
	if kind != KindCancelled {
		a.tallyLocked(kind, msg, r, now)
		if kind == KindRateLimited {
			trPr = a.coolLocked(r.RetryAfter, now)
		} else if kind == KindOK && a.forced {
			p.coolUntil = time.Time{} // a forced attempt got through: no longer rate limited
		}
		if kind != KindRateLimited && (a.once == nil || a.once.CompareAndSwap(false, true)) {
			trUp, trPr = a.countLocked(kind, now, trPr)
		}
	}
	h.mu.Unlock()
	u.emit(trUp, trPr)
}

// tallyLocked updates the status counters of the upstream and the pair.
func (a *Attempt) tallyLocked(kind Kind, msg string, r Result, now time.Time) {
	for _, s := range [2]*stats{&a.u.h.st, &a.p.st} {
		s.requests++
		if kind.pairFailure() || kind.upstreamFailure() {
			s.failures++
		}
		if msg != "" {
			s.lastErr, s.lastErrAt = msg, now
		}
		if kind == KindOK && r.TTFB > 0 && r.Status < 400 {
			s.sample(r.TTFB)
		}
	}
}

func (a *Attempt) coolLocked(retryAfter time.Duration, now time.Time) transition {
	p := a.p
	if retryAfter <= 0 {
		retryAfter = rateLimitCoolDown
	}
	retryAfter = min(retryAfter, maxRateLimitCoolDown)
	was := p.state(now)
	p.coolUntil = now.Add(retryAfter)
	if was == StateClosed {
		return transition{model: a.model, from: was, to: StateCooling}
	}
	return transition{}
}

// countLocked feeds the request's verdict to the pair's breaker and, for the
// signs that say so, to the upstream's.
func (a *Attempt) countLocked(kind Kind, now time.Time, trPr transition) (transition, transition) {
	u, h, p := a.u, a.u.h, a.p
	var trUp transition
	if (kind == KindOK || kind.pairFailure()) && a.prGen == p.br.gen {
		failed := kind.pairFailure()
		h.all.add(now, u.env.breaker.Window, failed)
		if tr := p.br.record(now, failed, &u.env.breaker); tr.to != "" {
			tr.model = a.model
			trPr = tr
		}
	}
	if a.upGen != h.up.gen {
		return trUp, trPr
	}
	switch {
	case kind.upstreamFailure():
		trUp = h.up.record(now, true, &u.env.upBreak)
	case kind == KindReset:
		if h.resets.add(a.model, now, u.env.breaker.Window) {
			trUp = h.up.record(now, true, &u.env.upBreak)
		}
	case kind.reached():
		trUp = h.up.record(now, false, &u.env.upBreak)
	}
	return trUp, trPr
}

// snapshot is what Plan needs to know about one pair right now.
type snapshot struct {
	tier      uint8 // 0 usable now, 1 full (max_parallel), 2 refusing (open, probing or cooling)
	inFlight  int
	latency   float64   // ms; -1 when there are no samples yet
	coolUntil time.Time // when a refusing pair may take attempts again
}

func (u *Upstream) snapshot(model string, now time.Time) snapshot {
	h := u.h
	h.mu.Lock()
	trUp := h.up.advance(now)
	var trPr transition
	s := snapshot{inFlight: h.st.inFlight, latency: -1}
	p := h.pairLocked(model, now, false)
	if p != nil {
		trPr = p.br.advance(now)
		trPr.model = model
	}
	if h.up.rejecting() {
		s.tier, s.coolUntil = 2, later(h.up.openUntil, now)
	}
	if p != nil {
		switch {
		case p.br.rejecting():
			s.tier, s.coolUntil = 2, laterOf(s.coolUntil, later(p.br.openUntil, now))
		case model != "" && now.Before(p.coolUntil):
			s.tier, s.coolUntil = 2, laterOf(s.coolUntil, p.coolUntil)
		}
	}
	if s.tier == 0 && u.maxParallel > 0 && h.st.inFlight >= u.maxParallel {
		s.tier = 1
	}
	switch {
	case p != nil && p.st.samples > 0:
		s.latency = p.st.latencyMS
	case h.st.samples > 0:
		s.latency = h.st.latencyMS
	}
	h.mu.Unlock()
	u.emit(trUp, trPr)
	return s
}

// later returns t, or now when t has passed (a half-open circuit whose probe
// is running may take attempts as soon as it ends).
func later(t, now time.Time) time.Time {
	if t.Before(now) {
		return now
	}
	return t
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// State returns the upstream's own circuit state now (pairs have their own:
// see Status).
func (u *Upstream) State() State {
	h := u.h
	h.mu.Lock()
	tr := h.up.advance(u.env.now())
	st := h.up.state
	h.mu.Unlock()
	u.emit(tr)
	return st
}
