package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/streamconn"
	"github.com/tollgate/tollgate/internal/upstream"
	"github.com/tollgate/tollgate/internal/upstreamerr"
)

// exchange is the state of one request while it is served.
type exchange struct {
	p      *Proxy
	d      Dialect
	req    Request
	head   Head
	w      http.ResponseWriter
	r      *http.Request // nil once a stream's connection is taken (takeConn)
	method string        // r.Method, for the access log
	start  time.Time
	rec    ledger.Record
	ticket *Ticket
	auth   any // what the gate's Authenticate returned (parse)

	ctx   context.Context // request context with the whole-request deadline
	body  []byte          // the client's body (nil when the request was built in Go)
	buf   *bodyBuf        // the pooled buffer body lives in, nil if none; released by releaseBody
	wrote bool            // the first byte reached the client: no more retries
	abort bool            // the response broke mid-way: close the connection

	// handoff: this request's connection may be taken for its event
	// stream (Proxy.Handler's requests); sw is the writer that then
	// replaces w.
	handoff *handoff
	// settled: the answer was given before run (a request that failed to
	// parse on the handler's goroutine, serveMayHandOff); run only records it.
	settled bool
	sw      *streamconn.Writer
	cancel  context.CancelCauseFunc // ctx's

	idle    *attemptTimer   // fires when the upstream body stalls; touched per read
	pending pendingResponse // the response attempt left for writePending
	ev      events          // an event stream respond opened, for run to copy

	// serve's, ended by endServe (with cancel)
	deadline *time.Timer // the whole-request deadline
	observed func()      // the Observer's end of this request

	prompt    int64 // memo of promptTokens
	promptSet bool

	content []byte // generated text seen, for estimation and logged bodies
	tail    []byte // end of a body copied through, for logged bodies
	evBuf   []byte // scratch for the events written to the client
	tailBuf []byte // the buffer copyBytes keeps tail in, reused by the next exchange
}

func (ex *exchange) serve() error {
	p := ex.p
	if ex.req == nil {
		if err := ex.parse(); err != nil {
			return err
		}
	}
	ex.head = ex.req.Head()
	// A dialect may alias its strings into the body, and the body may live
	// in a pooled buffer: what outlives the request (the ledger row, limits
	// keyed by model, metric labels) gets copies.
	ex.head.Model, ex.head.User = strings.Clone(ex.head.Model), strings.Clone(ex.head.User)
	if ex.head.Metered && ex.head.Model == "" {
		ex.head.Model = p.DefaultModel
	}
	ex.rec.Model, ex.rec.Stream = ex.head.Model, ex.head.Stream
	if ex.head.User != "" {
		ex.rec.User = ex.head.User
	}
	// What is begun here ends in endServe, which run calls after the
	// response, an event stream's included, was copied.
	if p.Observer != nil {
		ex.observed = p.Observer.Begin(ex.head.Stream)
	}

	// The client going away cancels ctx through its parent (the cause is
	// then context.Canceled); ctxErr tells that apart from the deadline. No
	// context.AfterFunc on r.Context() to name the cause: it cost three
	// allocations per request and said nothing ctxErr does not.
	ex.ctx = ex.requestContext()
	if p.Timeout > 0 {
		// The closure holds the cancel func, not ex: a timer that fires as
		// it is stopped may run after the exchange went back to its pool.
		cancel := ex.cancel
		ex.deadline = time.AfterFunc(p.Timeout, func() { cancel(errDeadline) })
	}

	if p.Gate != nil {
		if err := ex.admit(ex.ctx); err != nil {
			return err
		}
	}
	if err := ex.forward(); err != nil {
		return err
	}
	ex.writePending()
	return nil
}

// endServe ends what serve began: the deadline, the request context and
// the observer's count.
func (ex *exchange) endServe() {
	if ex.deadline != nil {
		ex.deadline.Stop()
	}
	if ex.handoff != nil && ex.handoff.stopWatch != nil {
		ex.handoff.stopWatch()
	}
	if ex.cancel != nil {
		ex.cancel(nil)
	}
	if ex.observed != nil {
		ex.observed()
	}
}

// requestContext derives ctx from the request's. A request whose stream's
// connection may be taken (ex.handoff) outlives its handler, whose return
// cancels r.Context(): its ctx is cut from that cancellation, which reaches
// it through a context.AfterFunc instead until the connection is taken
// (streamconn's poller watches for the client from then on).
// It sets ex.cancel (and the handoff's stopWatch), which endServe calls.
func (ex *exchange) requestContext() context.Context {
	if ex.handoff == nil {
		ctx, cancel := context.WithCancelCause(ex.r.Context())
		ex.cancel = cancel
		return ctx
	}
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(ex.r.Context()))
	stop := context.AfterFunc(ex.r.Context(), func() { cancel(context.Canceled) })
	ex.cancel, ex.handoff.stopWatch = cancel, stop
	return ctx
}

// The steps below are methods of their own, not inline in serve and
// forward, so that their locals do not enlarge those frames: the deepest
// call of a request's goroutine decides the stack it keeps (see events).

// parse checks the caller's key if the gate can (Authenticator), then
// reads the client's body and has the dialect parse it.
func (ex *exchange) parse() error {
	r := ex.r
	if a, ok := ex.p.Gate.(Authenticator); ok {
		c, err := a.Authenticate(r.Context(), r)
		if err != nil {
			return closeUnread(r, err)
		}
		ex.auth, ex.rec.KeyID, ex.rec.KeyName = c.Auth, c.KeyID, c.KeyName
	}
	body, buf, err := ex.p.readBody(ex.w, r)
	if err != nil {
		return ex.bodyError(err)
	}
	ex.body, ex.buf = body, buf
	in := &Inbound{RequestID: ex.rec.ID, Method: r.Method, Path: strings.TrimPrefix(r.URL.Path, "/v1"), Query: r.URL.RawQuery,
		Header: r.Header, Body: body}
	ex.req, err = ex.d.Parse(in)
	// A dialect that keeps in keeps its header map too: a taken stream
	// lets go of the client's request (takeConn), and with it this.
	in.Header = nil
	return err
}

// closeUnread marks the refusal of a request whose body is left unread
// "Connection: close": net/http would otherwise read up to 256 KB of that
// body before answering, with no deadline, for as long as a slow sender
// likes.
func closeUnread(r *http.Request, err error) error {
	var e *apierr.Error
	if r.ContentLength == 0 || !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Header = e.Header.Clone()
	if c.Header == nil {
		c.Header = http.Header{}
	}
	c.Header.Set("Connection", "close")
	return &c
}

// admit asks the gate to let the call through.
func (ex *exchange) admit(ctx context.Context) error {
	call := &Call{Request: ex.r, Auth: ex.auth, Endpoint: ex.rec.Endpoint, Head: ex.head, BodyLen: len(ex.body), ClientIP: ex.rec.ClientIP}
	call.PromptTokens = ex.promptTokens
	t, err := ex.p.Gate.Admit(ctx, call)
	if t != nil {
		ex.ticket = t
		ex.rec.KeyID, ex.rec.KeyName = t.KeyID, t.KeyName
		for k, v := range t.Header {
			ex.w.Header()[k] = v
		}
	}
	return err
}

// bodyError classifies a failure to read the client's body.
func (ex *exchange) bodyError(err error) error {
	switch {
	case errors.Is(err, errTooLarge):
		return &apierr.Error{Status: http.StatusRequestEntityTooLarge, Type: apierr.InvalidRequest,
			Code: "request_too_large", Message: fmt.Sprintf("request body exceeds the limit of %d bytes", ex.p.MaxBody)}
	case errors.Is(err, errSlowBody):
		// The connection is closed after this answer: its unread rest is
		// unusable and a slow sender must not keep it.
		e := apierr.New(http.StatusRequestTimeout, apierr.InvalidRequest, "request_timeout",
			fmt.Sprintf("the request body was not received within %v", ex.p.bodyReadTimeout()))
		e.Header = http.Header{"Connection": {"close"}}
		return e
	case isCancel(ex.r.Context(), err) || ex.r.Context().Err() != nil:
		return errClientGone
	}
	return apierr.BadRequest("invalid_body", "could not read the request body")
}

// recovered turns a panic while serving into a 500 for this request alone.
func (ex *exchange) recovered(v any) {
	if v == http.ErrAbortHandler {
		ex.abort = true
		return
	}
	if l := ex.p.Logger; l != nil {
		l.Error("panic serving request", "request_id", ex.rec.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
	ex.rec.Outcome = ""
	// A response already begun is cut off; one not begun gets the 500
	// (fail sets wrote, so wrote is read first: a complete 500 answer
	// aborted would reach the client as a closed connection).
	begun := ex.wrote
	ex.fail(apierr.New(http.StatusInternalServerError, apierr.Server, "internal_error", "the gateway failed to serve this request"))
	if begun {
		ex.abort = true
	}
}

// promptTokens is the dialect's prompt estimate, computed at most once.
func (ex *exchange) promptTokens() int64 {
	if !ex.promptSet {
		if ex.p.Estimate != nil {
			ex.prompt = ex.req.PromptTokens(ex.p.Estimate)
		}
		ex.promptSet = true
	}
	return ex.prompt
}

// forward runs the attempt loop. It returns nil once a response (success or
// a passed-through upstream error) was written.
func (ex *exchange) forward() error {
	p := ex.p
	plan, err := ex.plan()
	if err != nil {
		return err
	}
	attempts := max(1+p.MaxRetries, len(plan))
	var (
		lastErr    error
		retryAfter time.Duration
		prev       *upstream.Upstream
		made       int
	)
	for i := range attempts {
		t := &plan[i%len(plan)]
		if made > 0 {
			if err := ex.wait(made, retryAfter, t.Upstream == prev); err != nil {
				return err
			}
		}
		wait := time.Duration(0)
		if i >= len(plan)-1 { // every candidate was tried once: wait for a slot
			wait = p.saturationWait()
		}
		att, err := t.Acquire(ex.ctx, wait)
		if err != nil {
			if ex.ctx.Err() != nil {
				return ex.ctxErr()
			}
			lastErr = err
			continue
		}
		last := i == attempts-1
		nextSame := !last && plan[(i+1)%len(plan)].Upstream == t.Upstream
		made++
		prev = t.Upstream
		var done bool
		retryAfter, done, err = ex.attempt(t, att, last, nextSame)
		if done {
			return err
		}
		lastErr = err
	}
	return ex.exhausted(lastErr)
}

// plan lists the targets to try, healthy ones first.
func (ex *exchange) plan() ([]upstream.Target, error) {
	var plan []upstream.Target
	if ex.p.Pool != nil {
		var err error
		model := ex.head.Model
		plan, err = ex.p.Pool().Plan(model)
		if err != nil {
			return nil, &apierr.Error{Status: http.StatusNotFound, Type: apierr.NotFound, Code: "model_not_found",
				Message: fmt.Sprintf("no upstream serves the model %q", model)}
		}
	}
	if len(plan) == 0 {
		return nil, &apierr.Error{Status: http.StatusServiceUnavailable, Type: apierr.Upstream, Code: "no_upstream",
			Message: "no upstream is configured"}
	}
	return healthyFirst(plan), nil
}

// healthyFirst keeps only the targets that were not open when planned, if
// any is: open candidates are skipped while a healthy alternative exists, so
// retries go to the healthy ones and the last answer a client gets is a real
// one. With none healthy the whole plan stays, and the upstream package lets
// the candidate whose cool-down ends first through (a panic threshold).
func healthyFirst(plan []upstream.Target) []upstream.Target {
	n := 0
	for _, t := range plan {
		if !t.Open {
			n++
		}
	}
	if n == 0 || n == len(plan) {
		return plan
	}
	out := make([]upstream.Target, 0, n)
	for _, t := range plan {
		if !t.Open {
			out = append(out, t)
		}
	}
	return out
}

// exhausted turns the last failure into the client's error.
func (ex *exchange) exhausted(lastErr error) error {
	switch {
	case errors.Is(lastErr, upstream.ErrSaturated):
		e := apierr.New(http.StatusTooManyRequests, apierr.RateLimit, "upstream_saturated",
			"all upstreams for this model are at their parallel request limit; retry shortly")
		e.Header = http.Header{"Retry-After": {"1"}}
		ex.rec.Outcome = ledger.OutcomeRateLimited
		return e
	case errors.Is(lastErr, upstream.ErrCircuitOpen):
		return apierr.New(http.StatusServiceUnavailable, apierr.Upstream, "upstream_unavailable",
			"every upstream for this model is failing and temporarily skipped; retry later")
	}
	msg := "the upstream could not be reached"
	if lastErr != nil {
		msg += ": " + failureText(lastErr)
	}
	return apierr.New(http.StatusBadGateway, apierr.Upstream, "upstream_unreachable", msg)
}

// failureText says why an attempt failed without quoting what a transport
// error carries (socket addresses, URLs).
func failureText(err error) string {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se.Error()
	case errors.Is(err, errAttemptTimeout):
		return errAttemptTimeout.Error()
	}
	return upstreamerr.SanitizeTransportError(err)
}

// wait sleeps before retry n (1-based): Retry-After when the same upstream
// asked for it, else exponential backoff with full jitter.
func (ex *exchange) wait(n int, retryAfter time.Duration, sameUpstream bool) error {
	d := backoff(ex.p.backoffBase(), n)
	if !sameUpstream {
		d /= 4 // a different upstream has no reason to be busy
	}
	if sameUpstream && retryAfter > d {
		d = retryAfter
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ex.ctx.Done():
		return ex.ctxErr()
	}
}

func (ex *exchange) ctxErr() error {
	if errors.Is(context.Cause(ex.ctx), errDeadline) {
		return errDeadline
	}
	return errClientGone
}

func (p *Proxy) saturationWait() time.Duration {
	if p.SaturationWait > 0 {
		return p.SaturationWait
	}
	return 2 * time.Second
}

func (p *Proxy) idleTimeout() time.Duration {
	if p.IdleTimeout > 0 {
		return p.IdleTimeout
	}
	return 2 * time.Minute
}

// touch notes that upstream bytes arrived, postponing the idle timeout.
func (ex *exchange) touch() {
	if ex.idle != nil {
		ex.idle.touch()
	}
}

func (p *Proxy) backoffBase() time.Duration {
	if p.BackoffBase > 0 {
		return p.BackoffBase
	}
	return 250 * time.Millisecond
}

func (p *Proxy) maxRetryWait() time.Duration {
	if p.MaxRetryWait > 0 {
		return p.MaxRetryWait
	}
	return 30 * time.Second
}

// fail writes err as the client's error (unless a response already started)
// and classifies the record.
func (ex *exchange) fail(err error) {
	rec := &ex.rec
	var oe *apierr.Error
	switch {
	case errors.Is(err, errClientGone):
		rec.Outcome, rec.Status, rec.Error = ledger.OutcomeCancelled, 499, "client closed the request"
		return
	case errors.Is(err, errDeadline):
		oe = apierr.New(http.StatusGatewayTimeout, apierr.Timeout, "timeout",
			fmt.Sprintf("the request did not complete within %v", ex.p.Timeout))
		rec.Outcome = ledger.OutcomeTimeout
	case errors.As(err, &oe):
	default:
		oe = apierr.New(http.StatusBadGateway, apierr.Upstream, "upstream_error", apierr.Sanitize(err.Error()))
	}
	if rec.Outcome == "" || rec.Outcome == ledger.OutcomeOK {
		rec.Outcome = outcomeFor(oe)
	}
	rec.Status = oe.Status
	rec.Error = oe.Message
	if ex.wrote {
		return
	}
	ex.d.WriteError(ex.w, oe, rec.ID)
	ex.wrote = true
}

func outcomeFor(e *apierr.Error) ledger.Outcome {
	switch {
	case e.Status == http.StatusUnauthorized:
		return ledger.OutcomeUnauthorized
	case e.Status == http.StatusForbidden:
		return ledger.OutcomeForbidden
	case e.Type == apierr.Insufficient:
		return ledger.OutcomeQuota
	case e.Status == http.StatusTooManyRequests:
		return ledger.OutcomeRateLimited
	case e.Status == http.StatusGatewayTimeout:
		return ledger.OutcomeTimeout
	case e.Status >= 500:
		return ledger.OutcomeUpstreamError
	default:
		return ledger.OutcomeClientError
	}
}

// discard drains a little of a body we will not forward, so the connection
// can be reused, then closes it.
func discard(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, 64<<10)
	_ = b.Close()
}
