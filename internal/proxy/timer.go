package proxy

import (
	"context"
	"math"
	"sync/atomic"
	"time"
)

// attemptTimer is an attempt's one timer: first its header timeout, then
// the idle timeout of the response body. A read notes its time (touch)
// instead of resetting the timer, which took the timer heap's lock once per
// streamed chunk; when the timer fires, it re-arms itself for what is left
// of the idle timeout since the last read.
type attemptTimer struct {
	t       *time.Timer
	base    time.Time // the monotonic origin of last
	idle    time.Duration
	cancel  context.CancelCauseFunc
	idling  atomic.Bool  // the headers are in
	last    atomic.Int64 // time since base of the last read, ns
	stopped atomic.Bool
}

// newAttemptTimer starts the header timeout (none if headers is 0). The
// timer exists from the start, so fire can re-arm it: in the header phase
// fire does not read a.t, so it may run before AfterFunc has returned.
func newAttemptTimer(headers, idle time.Duration, cancel context.CancelCauseFunc) *attemptTimer {
	if headers <= 0 {
		headers = math.MaxInt64
	}
	a := &attemptTimer{base: time.Now(), idle: idle, cancel: cancel}
	a.t = time.AfterFunc(headers, a.fire)
	return a
}

// headersIn stops the header timeout; false if it has fired.
func (a *attemptTimer) headersIn() bool { return a.t.Stop() }

// startIdle arms the idle timeout; headersIn has stopped the timer.
func (a *attemptTimer) startIdle() {
	a.idling.Store(true)
	a.touch()
	a.t.Reset(a.idle)
}

// touch notes that upstream bytes arrived.
func (a *attemptTimer) touch() { a.last.Store(int64(time.Since(a.base))) }

// stop ends the timer for good. A fire already running may still cancel
// the attempt's context, which by then has ended.
func (a *attemptTimer) stop() {
	a.stopped.Store(true)
	a.t.Stop()
}

func (a *attemptTimer) fire() {
	switch {
	case a.stopped.Load():
	case !a.idling.Load():
		a.cancel(errAttemptTimeout)
	default:
		quiet := time.Since(a.base) - time.Duration(a.last.Load())
		if quiet < a.idle {
			a.t.Reset(a.idle - quiet)
			return
		}
		a.cancel(errIdle)
	}
}
