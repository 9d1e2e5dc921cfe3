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

// State is a circuit breaker state.
type State string

// Circuit breaker states, as shown in Status.State.
const (
	// StateClosed: attempts flow normally.
	StateClosed State = "closed"
	// StateOpen: attempts are rejected with ErrCircuitOpen until the
	// cool-down ends.
	StateOpen State = "open"
	// StateHalfOpen: the cool-down ended; one probe attempt at a time is let
	// through, and its result closes or reopens the circuit.
	StateHalfOpen State = "half_open"
)

// latencyAlpha is the weight of a new TTFB sample in the moving average:
// about the last 10 samples matter, so a recovering upstream wins traffic
// back within seconds at modest rates.
const latencyAlpha = 0.2

var inf = math.Inf(1)

// env is what all upstreams of one Pool share.
type env struct {
	now      func() time.Time
	rand     func() float64
	price    func(model string) (int64, bool)
	breaker  BreakerOptions
	log      *slog.Logger
	onChange func(upstream string, from, to State)
}

// health is the mutable state of one upstream. A reloaded Pool reuses it for
// an upstream with the same name and base URL, so the breaker, averages and
// in-flight counts carry over, and attempts started under the old Pool still
// release their slots correctly.
type health struct {
	mu          sync.Mutex
	state       State
	gen         uint64 // bumped on every state change; stale results don't steer the breaker
	openUntil   time.Time
	consecutive int
	probing     bool
	inFlight    int
	wake        chan struct{} // closed when a slot frees; made only when someone waits
	win         window

	latencyMS float64
	samples   int64
	requests  int64
	failures  int64
	lastErr   string
	lastErrAt time.Time
}

func newHealth() *health { return &health{state: StateClosed} }

// transition records a state change made under the lock, reported after it.
type transition struct {
	from, to State
}

// advanceLocked turns an expired open circuit into half-open.
func (h *health) advanceLocked(now time.Time) transition {
	if h.state == StateOpen && !now.Before(h.openUntil) {
		return h.setLocked(StateHalfOpen, now, 0)
	}
	return transition{}
}

func (h *health) setLocked(to State, now time.Time, coolDown time.Duration) transition {
	tr := transition{from: h.state, to: to}
	h.state = to
	h.gen++
	h.consecutive = 0
	h.probing = false
	h.win = window{}
	if to == StateOpen {
		h.openUntil = now.Add(coolDown)
	}
	return tr
}

// recordLocked feeds one counted result to the breaker.
func (h *health) recordLocked(now time.Time, failed bool, b *BreakerOptions) transition {
	switch h.state {
	case StateHalfOpen: // the probe decides
		if failed {
			return h.setLocked(StateOpen, now, b.CoolDown)
		}
		return h.setLocked(StateClosed, now, 0)
	case StateClosed:
		h.win.add(now, b.Window, failed)
		if !failed {
			h.consecutive = 0
			return transition{}
		}
		h.consecutive++
		if b.ConsecutiveFailures > 0 && h.consecutive >= b.ConsecutiveFailures {
			return h.setLocked(StateOpen, now, b.CoolDown)
		}
		if b.FailureRatio >= 0 {
			req, fail := h.win.sum(now, b.Window)
			if req >= b.MinRequests && req > 0 && float64(fail) >= b.FailureRatio*float64(req) {
				return h.setLocked(StateOpen, now, b.CoolDown)
			}
		}
	}
	return transition{}
}

// emit reports a state change; called without the lock held.
func (u *Upstream) emit(tr transition) {
	if tr.to == "" {
		return
	}
	level := slog.LevelInfo
	if tr.to == StateOpen {
		level = slog.LevelWarn
	}
	u.env.log.LogAttrs(context.Background(), level, "upstream circuit state changed",
		slog.String("upstream", u.name), slog.String("from", string(tr.from)), slog.String("to", string(tr.to)))
	if u.env.onChange != nil {
		u.env.onChange(u.name, tr.from, tr.to)
	}
}

// Result is the outcome of one attempt, fed back through Attempt.Done.
type Result struct {
	// Status is the upstream's HTTP status; 0 when no response arrived.
	Status int
	// Err is the transport error (connect, reset, timeout), if any.
	Err error
	// TTFB is the time from sending the request to the response headers.
	TTFB time.Duration
	// Cancelled means the client went away; that is not the upstream's fault,
	// so the attempt does not count for health. An Err wrapping
	// context.Canceled is treated the same.
	Cancelled bool
}

// Failed reports whether r counts as an upstream failure: a transport error
// or timeout, HTTP 429 or HTTP 5xx. Other 4xx are the client's fault and
// count as success for health purposes.
func (r Result) Failed() bool {
	return r.Err != nil || r.Status == http429 || r.Status >= 500
}

const http429 = 429

// Attempt is a reserved slot for one attempt at an upstream.
type Attempt struct {
	u     *Upstream
	gen   uint64
	probe bool
	done  atomic.Bool
}

// Acquire reserves a slot for one attempt. It returns an error wrapping
// ErrCircuitOpen when the circuit is open (or half-open with its probe
// already running), and ErrSaturated when max_parallel slots stay full for
// wait (0 means don't wait). It returns ctx's error if ctx ends first. On
// success the caller must call Done exactly once.
func (u *Upstream) Acquire(ctx context.Context, wait time.Duration) (*Attempt, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.name, err)
	}
	h := u.h
	var timer *time.Timer
	for {
		h.mu.Lock()
		tr := h.advanceLocked(u.env.now())
		if h.state == StateOpen || (h.state == StateHalfOpen && h.probing) {
			h.mu.Unlock()
			u.emit(tr)
			return nil, fmt.Errorf("upstream %q: %w", u.name, ErrCircuitOpen)
		}
		if u.maxParallel == 0 || h.inFlight < u.maxParallel {
			h.inFlight++
			a := &Attempt{u: u, gen: h.gen, probe: h.state == StateHalfOpen}
			h.probing = a.probe
			h.mu.Unlock()
			u.emit(tr)
			return a, nil
		}
		if wait <= 0 {
			h.mu.Unlock()
			u.emit(tr)
			return nil, fmt.Errorf("upstream %q: %w (max_parallel %d)", u.name, ErrSaturated, u.maxParallel)
		}
		if h.wake == nil {
			h.wake = make(chan struct{})
		}
		wake := h.wake
		h.mu.Unlock()
		u.emit(tr)
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

// Upstream returns the upstream the attempt is for.
func (a *Attempt) Upstream() *Upstream { return a.u }

// Done releases the slot and feeds r to the breaker, the error ratio and the
// latency average. Call it exactly once, when the attempt's outcome is known
// (for a stream, at its end); later calls do nothing.
func (a *Attempt) Done(r Result) {
	if !a.done.CompareAndSwap(false, true) {
		return
	}
	u, h := a.u, a.u.h
	cancelled := r.Cancelled || errors.Is(r.Err, context.Canceled)
	failed := !cancelled && r.Failed()
	var msg string
	if failed {
		if r.Err != nil {
			msg = u.scrub(r.Err.Error())
		} else {
			msg = fmt.Sprintf("HTTP %d", r.Status)
		}
	}
	now := u.env.now()
	var tr transition
	h.mu.Lock()
	h.inFlight--
	if h.wake != nil {
		close(h.wake)
		h.wake = nil
	}
	if a.probe && a.gen == h.gen {
		h.probing = false
	}
	if !cancelled {
		h.requests++
		switch {
		case failed:
			h.failures++
			h.lastErr, h.lastErrAt = msg, now
		case r.TTFB > 0 && r.Status < 400:
			ms := float64(r.TTFB) / float64(time.Millisecond)
			if h.samples == 0 {
				h.latencyMS = ms
			} else {
				h.latencyMS += latencyAlpha * (ms - h.latencyMS)
			}
			h.samples++
		}
		if a.gen == h.gen {
			tr = h.recordLocked(now, failed, &u.env.breaker)
		}
	}
	h.mu.Unlock()
	u.emit(tr)
}

// snapshot is what Plan needs to know about an upstream right now.
type snapshot struct {
	tier     uint8 // 0 usable now, 1 full (max_parallel), 2 rejecting (open or probe running)
	inFlight int
	latency  float64 // ms; -1 when there are no samples yet
}

func (u *Upstream) snapshot(now time.Time) snapshot {
	h := u.h
	h.mu.Lock()
	tr := h.advanceLocked(now)
	s := snapshot{inFlight: h.inFlight, latency: -1}
	switch {
	case h.state == StateOpen || (h.state == StateHalfOpen && h.probing):
		s.tier = 2
	case u.maxParallel > 0 && h.inFlight >= u.maxParallel:
		s.tier = 1
	}
	if h.samples > 0 {
		s.latency = h.latencyMS
	}
	h.mu.Unlock()
	u.emit(tr)
	return s
}

// State returns the upstream's circuit state now.
func (u *Upstream) State() State {
	h := u.h
	h.mu.Lock()
	tr := h.advanceLocked(u.env.now())
	st := h.state
	h.mu.Unlock()
	u.emit(tr)
	return st
}

// windowBuckets splits the error-ratio window so that old results age out in
// steps of a tenth of the window.
const windowBuckets = 10

// window counts attempts and failures over a sliding time window.
type window struct {
	b [windowBuckets]struct {
		epoch     int64
		req, fail int
	}
}

func bucketEpoch(now time.Time, size time.Duration) int64 {
	d := int64(size) / windowBuckets
	if d <= 0 {
		d = 1
	}
	return now.UnixNano() / d
}

func (w *window) add(now time.Time, size time.Duration, failed bool) {
	e := bucketEpoch(now, size)
	b := &w.b[uint64(e)%windowBuckets]
	if b.epoch != e {
		b.epoch, b.req, b.fail = e, 0, 0
	}
	b.req++
	if failed {
		b.fail++
	}
}

func (w *window) sum(now time.Time, size time.Duration) (req, fail int) {
	e := bucketEpoch(now, size)
	for i := range w.b {
		if b := &w.b[i]; b.epoch > e-windowBuckets && b.epoch <= e {
			req += b.req
			fail += b.fail
		}
	}
	return req, fail
}
