package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/h1"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/upstream"
)

var (
	errAttemptTimeout = errors.New("upstream did not answer within its timeout")
	errIdle           = errors.New("upstream sent nothing within the idle timeout")
)

// attempt makes one upstream request. done reports that the exchange is over
// (a response is to be written, see below, or the request must stop);
// otherwise err is the retryable failure and retryAfter what the upstream
// asked us to wait. A response to pass on is left in ex.pending for
// exchange.serve to write (writePending) once forward and attempt have
// returned, and an event stream in ex.ev for run to copy (events): a
// stream waits for its events with as few frames under it as can be, so
// that its goroutine keeps a 4 KB stack (docs/perf.md).
func (ex *exchange) attempt(t *upstream.Target, att *upstream.Attempt, last, nextSame bool) (retryAfter time.Duration, done bool, err error) {
	p := ex.p
	u := t.Upstream
	ex.rec.Attempts++
	ex.rec.Upstream = u.Name()
	if ex.head.Metered {
		ex.rec.ModelUsed = t.Model
	}
	out, answered, err := ex.outbound(t)
	if answered || err != nil {
		att.Done(upstream.Result{Cancelled: true}) // nothing was asked: no verdict on the upstream
		return 0, true, err                        // the request cannot be sent anywhere: final
	}

	// The per-upstream timeout bounds the wait for response headers only;
	// a stream may then run as long as the whole-request deadline allows.
	actx, acancel := context.WithCancelCause(ex.ctx)
	handedOff := false
	defer func() {
		if !handedOff {
			acancel(nil)
		}
	}()
	// The timer lives with the attempt, not the exchange: a timer that
	// fired as the attempt ended may still run after the exchange went
	// back to its pool and serves another request.
	timer := newAttemptTimer(u.Timeout(), p.idleTimeout(), acancel)
	req, err := ex.upstreamRequest(actx, u, out)
	if err != nil {
		att.Done(upstream.Result{Err: err})
		return 0, true, fmt.Errorf("build upstream request: %w", err)
	}
	endSpan := func(int, error) {}
	if p.Tracer != nil {
		endSpan = p.Tracer.StartAttempt(actx, u.Name(), t.Model, req.Header)
	}

	began := time.Now()
	resp, err := p.transport().RoundTrip(req)
	headersIn := time.Since(began)
	if !timer.headersIn() && err == nil {
		// The timer fired as the headers arrived: treat as a timeout.
		resp.Body.Close()
		err = errAttemptTimeout
	}
	if err != nil {
		done, err := ex.roundTripFailed(actx, u, att, err, headersIn, endSpan)
		return 0, done, err
	}
	p.observeAttempt(u.Name(), resp.StatusCode, nil, headersIn)

	if retryableStatus(resp.StatusCode) && !last {
		if ra, err := ex.retryStatus(resp, u, att, acancel, headersIn, nextSame, endSpan); err != nil {
			return ra, false, err
		}
	}
	timer.startIdle()
	ex.idle = timer
	ex.pending = pendingResponse{resp: resp, att: att, out: out, headersIn: headersIn, actx: actx, acancel: acancel, endSpan: endSpan}
	handedOff = true
	return 0, true, nil
}

// pendingResponse is an attempt's response that is still to be written.
type pendingResponse struct {
	resp      *http.Response
	att       *upstream.Attempt
	out       *Outbound
	headersIn time.Duration
	actx      context.Context
	acancel   context.CancelCauseFunc
	endSpan   func(int, error)
}

// writePending writes the response attempt left in ex.pending, if any, and
// ends its attempt, unless it opened an event stream: run ends that one
// after copying it (endPending).
func (ex *exchange) writePending() {
	pr := &ex.pending
	if pr.resp == nil {
		return
	}
	ex.respond(pr.resp, pr.att, pr.out, pr.headersIn)
	if ex.ev.resp == nil {
		ex.endPending()
	}
}

// endPending ends the attempt whose response was written, if not yet done.
func (ex *exchange) endPending() {
	pr := ex.pending
	if pr.resp == nil {
		return
	}
	ex.pending = pendingResponse{}
	defer pr.acancel(nil)
	ex.idle.stop()
	if errors.Is(context.Cause(pr.actx), errIdle) && ex.rec.Outcome == ledger.OutcomeUpstreamError {
		ex.noteIdle()
	}
	pr.endSpan(ex.rec.Status, nil)
}

// outbound is the dialect's request for target t, unless the dialect
// answered the client itself (answered).
func (ex *exchange) outbound(t *upstream.Target) (out *Outbound, answered bool, err error) {
	tg := targetOf(t)
	if la, ok := ex.req.(LocalAnswer); ok {
		if status, body, ct, ok := la.Answer(tg); ok {
			ex.answerLocally(status, body, ct)
			return nil, true, nil
		}
	}
	out, err = ex.req.Outbound(tg)
	return out, false, err
}

// The branches below are methods, not inline in attempt, so that their
// locals do not enlarge attempt's frame: the deepest call of a request's
// goroutine decides the stack it keeps (see events).

// roundTripFailed settles an attempt whose request got no response. done
// reports that the exchange must stop (the client went away).
func (ex *exchange) roundTripFailed(actx context.Context, u *upstream.Upstream, att *upstream.Attempt, err error,
	headersIn time.Duration, endSpan func(int, error)) (done bool, _ error) {
	cancelled := ex.ctx.Err() != nil
	if !cancelled && errors.Is(context.Cause(actx), errAttemptTimeout) {
		err = fmt.Errorf("%w: %w", upstream.ErrTimeout, errAttemptTimeout) // counts against the pair
	}
	att.Done(upstream.Result{Err: err, Cancelled: cancelled})
	endSpan(0, err)
	ex.p.observeAttempt(u.Name(), 0, err, headersIn)
	if cancelled {
		return true, ex.ctxErr()
	}
	return false, fmt.Errorf("%s: %w", u.Name(), err)
}

// retryStatus settles an attempt answered with a retryable status, unless
// the wait it asks for is too long and the next try would go to the same
// upstream (then it returns a nil error and the status is passed on).
func (ex *exchange) retryStatus(resp *http.Response, u *upstream.Upstream, att *upstream.Attempt, acancel context.CancelCauseFunc,
	headersIn time.Duration, nextSame bool, endSpan func(int, error)) (time.Duration, error) {
	ra := retryAfterOf(resp.Header, time.Now())
	tooLong := ra > ex.p.maxRetryWait() || (ra > 0 && ex.remaining() < ra)
	if tooLong && nextSame {
		return 0, nil
	}
	// Drain the error body for connection reuse, but never wait on an
	// upstream that sends headers and then stalls.
	drain := time.AfterFunc(time.Second, func() { acancel(errAttemptTimeout) })
	discard(resp.Body)
	drain.Stop()
	att.Done(upstream.Result{Status: resp.StatusCode, TTFB: headersIn, RetryAfter: ra})
	endSpan(resp.StatusCode, nil)
	return ra, &statusError{upstream: u.Name(), status: resp.StatusCode}
}

// noteIdle names the idle timeout as the reason a response ended early.
func (ex *exchange) noteIdle() {
	ex.rec.Error = fmt.Sprintf("upstream sent nothing for %v; response ended", ex.p.idleTimeout())
}

// upstreamRequest builds the HTTP request of one attempt.
func (ex *exchange) upstreamRequest(ctx context.Context, u *upstream.Upstream, out *Outbound) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, ex.r.Method, u.URL(out.Path), nil)
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(out.Body))
	if len(out.Body) == 0 {
		req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
	} else {
		// The body may alias the pooled buffer of the client's body: each
		// reader holds a reference to it (see bodybuf.go).
		body, buf := out.Body, ex.buf
		if req.Body, err = newOutBody(body, buf); err != nil {
			return nil, err
		}
		req.GetBody = func() (io.ReadCloser, error) { return newOutBody(body, buf) }
	}
	req.Header = outboundHeader(ex.r.Header, !out.Verbatim)
	if !out.Verbatim {
		req.Header.Set("Content-Type", "application/json")
	}
	if out.Header != nil {
		out.Header(req.Header)
	}
	u.SetHeaders(req.Header)
	return req, nil
}

// targetOf is what a dialect is told of an attempt's target.
func targetOf(t *upstream.Target) Target {
	tg := Target{Upstream: t.Upstream.Name(), API: t.Upstream.API(), Model: t.Model,
		NativeResponses: t.Upstream.NativeResponses()}
	if tg.API == "" {
		tg.API = APIOpenAI
	}
	return tg
}

// answerLocally writes an answer the dialect made without the upstream.
func (ex *exchange) answerLocally(status int, body []byte, ct string) {
	h := ex.w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	ex.rec.Status, ex.rec.Outcome = status, outcomeOfStatus(status)
	ex.rec.Attempts--
	ex.w.WriteHeader(status)
	ex.wrote = true
	_, _ = ex.w.Write(body)
	ex.firstByte()
}

// statusError is an attempt that ended with a retryable status.
type statusError struct {
	upstream string
	status   int
}

func (e *statusError) Error() string { return fmt.Sprintf("%s answered %d", e.upstream, e.status) }

func (ex *exchange) remaining() time.Duration {
	if ex.p.Timeout <= 0 {
		return 1<<63 - 1
	}
	return ex.p.Timeout - time.Since(ex.start)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfterOf parses Retry-After as seconds or an HTTP date (RFC 9110 10.2.3).
func retryAfterOf(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// backoff is exponential with full jitter: uniform in [0, min(5s, base*2^(n-1))].
func backoff(base time.Duration, n int) time.Duration {
	ceil := base << min(n-1, 10)
	if ceil > 5*time.Second || ceil <= 0 {
		ceil = 5 * time.Second
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

func (p *Proxy) observeAttempt(name string, status int, err error, d time.Duration) {
	if p.Observer != nil {
		p.Observer.Attempt(name, status, err, d)
	}
}

func (p *Proxy) transport() http.RoundTripper {
	if p.Transport != nil {
		return p.Transport
	}
	return http.DefaultTransport
}

// outcomeOfStatus classifies an upstream status passed through to the client.
func outcomeOfStatus(code int) ledger.Outcome {
	switch {
	case code < 400:
		return ledger.OutcomeOK
	case code == http.StatusTooManyRequests || code >= 500:
		return ledger.OutcomeUpstreamError
	default:
		return ledger.OutcomeClientError
	}
}

// Buffer sizes of an upstream connection. net/http's 4 KiB each are held for
// the connection's life, so by every open stream. 2 KiB still writes a chat
// request's headers and a small body in one syscall (larger bodies go to the
// socket directly, not through the buffer) and holds several SSE chunks; a
// large response is read past it, straight into the caller's buffer.
const (
	upstreamWriteBuffer = 2 << 10
	upstreamReadBuffer  = 2 << 10
	// h1's buffer is held by every open stream to a plain-HTTP upstream.
	// An SSE chunk is a few hundred bytes, headers longer than it are read
	// in more pieces, and a large body is read past it.
	h1ReadBuffer = 1 << 10
)

// NewTransport returns the transport tuned for upstream traffic: bounded
// dial, TLS and idle times; enough idle connections per host for a busy
// gateway; no transparent decompression (bodies pass through as bytes);
// smaller connection buffers. Plain-HTTP upstreams are spoken to by h1,
// without net/http's two goroutines per connection; HTTPS upstreams in
// HTTP/2 when they offer it (ForceAttemptHTTP2, inherited from
// http.DefaultTransport): streams then share connections, without a reader
// and a writer goroutine and their buffers per stream.
func NewTransport() *h1.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ExpectContinueTimeout = 0
	t.DisableCompression = true
	t.MaxResponseHeaderBytes = 1 << 20
	t.WriteBufferSize, t.ReadBufferSize = upstreamWriteBuffer, upstreamReadBuffer
	return &h1.Transport{
		Fallback:               t,
		MaxIdlePerHost:         t.MaxIdleConnsPerHost,
		IdleTimeout:            t.IdleConnTimeout,
		MaxResponseHeaderBytes: t.MaxResponseHeaderBytes,
		ReadBufferSize:         h1ReadBuffer,
		WriteBufferSize:        upstreamWriteBuffer,
	}
}
