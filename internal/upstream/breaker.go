package upstream

import "time"

// State is a circuit breaker state.
type State string

// Circuit breaker states, as shown in Status.State and ModelStatus.State.
const (
	// StateClosed: attempts flow normally.
	StateClosed State = "closed"
	// StateOpen: attempts are refused with ErrCircuitOpen until the
	// cool-down ends (unless nothing else is left: see Target.Panic).
	StateOpen State = "open"
	// StateHalfOpen: the cool-down ended; one probe attempt at a time is let
	// through, and its result closes or reopens the circuit.
	StateHalfOpen State = "half_open"
	// StateCooling: a (upstream, model) pair answered 429 and is skipped
	// until its Retry-After passes. Only pairs cool; the breaker itself is
	// closed meanwhile.
	StateCooling State = "cooling"
)

// breaker is one circuit breaker: the upstream's own (fed only by signs
// that the upstream as a whole is sick) or a (upstream, model) pair's. The
// caller holds the owning health's lock.
type breaker struct {
	state       State
	gen         uint64 // bumped on every state change; stale results don't steer the breaker
	openUntil   time.Time
	consecutive int
	probing     bool
	win         window
}

// transition records a state change made under the lock, reported after it.
type transition struct {
	model    string // "" for the upstream's own breaker
	from, to State
}

// advance turns an expired open circuit into half-open.
func (b *breaker) advance(now time.Time) transition {
	if b.state == StateOpen && !now.Before(b.openUntil) {
		return b.set(StateHalfOpen, now, 0)
	}
	return transition{}
}

// rejecting reports whether the breaker refuses an ordinary attempt now.
func (b *breaker) rejecting() bool {
	return b.state == StateOpen || (b.state == StateHalfOpen && b.probing)
}

func (b *breaker) set(to State, now time.Time, coolDown time.Duration) transition {
	tr := transition{from: b.state, to: to}
	b.state = to
	b.gen++
	b.consecutive = 0
	b.probing = false
	b.win = window{}
	if to == StateOpen {
		b.openUntil = now.Add(coolDown)
	}
	return tr
}

// record feeds one counted verdict to the breaker. A negative
// FailureRatio in o disables the ratio trigger.
func (b *breaker) record(now time.Time, failed bool, o *BreakerOptions) transition {
	switch b.state {
	case StateHalfOpen: // the probe decides
		if failed {
			return b.set(StateOpen, now, o.CoolDown)
		}
		return b.set(StateClosed, now, 0)
	case StateOpen: // a forced (panic) attempt: it decides like a probe
		if failed {
			b.openUntil = now.Add(o.CoolDown)
			return transition{}
		}
		return b.set(StateClosed, now, 0)
	case StateClosed:
		b.win.add(now, o.Window, failed)
		if !failed {
			b.consecutive = 0
			return transition{}
		}
		b.consecutive++
		if o.ConsecutiveFailures > 0 && b.consecutive >= o.ConsecutiveFailures {
			return b.set(StateOpen, now, o.CoolDown)
		}
		if o.FailureRatio >= 0 {
			req, fail := b.win.sum(now, o.Window)
			if req >= o.MinRequests && req > 0 && float64(fail) >= o.FailureRatio*float64(req) {
				return b.set(StateOpen, now, o.CoolDown)
			}
		}
	}
	return transition{}
}

func (b *breaker) errorRatio(now time.Time, w time.Duration) float64 {
	if req, fail := b.win.sum(now, w); req > 0 {
		return float64(fail) / float64(req)
	}
	return 0
}

// stats are the counters shown in status, kept for the upstream and for each
// pair.
type stats struct {
	inFlight  int
	latencyMS float64
	samples   int64
	requests  int64
	failures  int64
	lastErr   string
	lastErrAt time.Time
}

// latencyAlpha is the weight of a new TTFB sample in the moving average:
// about the last 10 samples matter, so a recovering upstream wins traffic
// back within seconds at modest rates.
const latencyAlpha = 0.2

func (s *stats) sample(ttfb time.Duration) {
	ms := float64(ttfb) / float64(time.Millisecond)
	if s.samples == 0 {
		s.latencyMS = ms
	} else {
		s.latencyMS += latencyAlpha * (ms - s.latencyMS)
	}
	s.samples++
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

// resetTracker remembers which models saw a reset before headers recently,
// so resets count against the upstream only when they span several models.
type resetTracker struct {
	models [resetModels]struct {
		model string
		at    time.Time
	}
}

// resetModels is how many distinct models must see resets within the
// breaker window before a reset counts against the whole upstream.
const resetModels = 3

// add notes a reset for model and reports whether resetModels distinct
// models have now seen one within w.
func (t *resetTracker) add(model string, now time.Time, w time.Duration) bool {
	oldest, distinct := 0, 0
	found := false
	for i := range t.models {
		e := &t.models[i]
		if e.model == model {
			e.at, found = now, true
		}
		if e.at.Before(t.models[oldest].at) {
			oldest = i
		}
	}
	if !found {
		t.models[oldest].model, t.models[oldest].at = model, now
	}
	for i := range t.models {
		if e := &t.models[i]; !e.at.IsZero() && now.Sub(e.at) <= w {
			distinct++
		}
	}
	return distinct >= resetModels
}
