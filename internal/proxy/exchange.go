package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/upstream"
)

// exchange is the state of one request while it is served.
type exchange struct {
	p      *Proxy
	w      http.ResponseWriter
	r      *http.Request
	start  time.Time
	rec    ledger.Record
	ticket *Ticket

	ctx     context.Context // request context with the whole-request deadline
	body    []byte          // body as forwarded upstream
	path    string          // upstream path: the part after /v1
	metered bool            // a known endpoint whose body was parsed
	head    openai.Head
	// hideUsage: the client did not ask for the usage chunk; we injected it.
	hideUsage bool
	wrote     bool // the first byte reached the client: no more retries
	abort     bool // the response broke mid-way: close the connection

	idle *time.Timer // fires when the upstream body stalls; reset per read

	prompt    int64 // memo of promptTokens
	promptSet bool

	streamContent []byte // content deltas seen, for estimation
	evBuf         []byte // scratch for rewritten events
	tail          []byte // end of a non-SSE body, for usage and estimation
}

func (ex *exchange) serve() error {
	p, r := ex.p, ex.r
	ex.path = strings.TrimPrefix(r.URL.Path, "/v1")
	ex.metered = r.Method == http.MethodPost && meteredEndpoints[ex.path]

	body, err := p.readBody(ex.w, r)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return &openai.Error{Status: http.StatusRequestEntityTooLarge, Type: openai.TypeInvalidRequest,
				Code: "request_too_large", Message: fmt.Sprintf("request body exceeds the limit of %d bytes", p.MaxBody)}
		}
		if isCancel(r.Context(), err) || r.Context().Err() != nil {
			return errClientGone
		}
		return openai.BadRequest("invalid_body", "could not read the request body")
	}
	ex.body = body
	if err := ex.prepare(); err != nil {
		return err
	}
	if p.Observer != nil {
		end := p.Observer.Begin(ex.head.Stream)
		defer end()
	}

	var cancel context.CancelCauseFunc
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	stop := context.AfterFunc(r.Context(), func() { cancel(errClientGone) })
	defer stop()
	if p.Timeout > 0 {
		t := time.AfterFunc(p.Timeout, func() { cancel(errDeadline) })
		defer t.Stop()
	}
	ex.ctx = ctx

	if p.Gate != nil {
		call := &Call{Request: r, Endpoint: r.URL.Path, Head: ex.head, BodyLen: len(body), ClientIP: ex.rec.ClientIP}
		call.PromptTokens = ex.promptTokens
		t, err := p.Gate.Admit(ctx, call)
		if t != nil {
			ex.ticket = t
			ex.rec.KeyID, ex.rec.KeyName = t.KeyID, t.KeyName
			for k, v := range t.Header {
				ex.w.Header()[k] = v
			}
		}
		if err != nil {
			return err
		}
	}
	return ex.forward()
}

// prepare parses the head of metered requests and rewrites what must change:
// the default model and stream_options.include_usage.
func (ex *exchange) prepare() error {
	p := ex.p
	if len(ex.body) > 0 && (ex.metered || isJSON(ex.r.Header.Get("Content-Type"))) {
		h, ok := openai.ParseHead(ex.body)
		if !ok && ex.metered {
			return openai.BadRequest("invalid_json", "the request body is not a valid JSON object")
		}
		ex.head = h
	} else if ex.metered {
		return openai.BadRequest("invalid_json", "the request body is empty; a JSON object is required")
	}
	ex.rec.Stream = ex.head.Stream
	if ex.head.User != "" {
		ex.rec.User = ex.head.User
	}
	if !ex.metered {
		ex.rec.Model = ex.head.Model
		return nil
	}
	if ex.path == "/chat/completions" && !ex.head.HasMessages {
		return &openai.Error{Status: 400, Type: openai.TypeInvalidRequest, Code: "missing_messages",
			Param: "messages", Message: "'messages' is required and must be a non-empty array"}
	}
	var err error
	if ex.head.Model == "" {
		ex.head.Model = p.DefaultModel
		if ex.body, err = openai.SetModel(ex.body, p.DefaultModel); err != nil {
			return openai.BadRequest("invalid_json", "could not set the default model")
		}
	}
	ex.rec.Model = ex.head.Model
	if ex.head.Stream && ex.path != "/embeddings" && !ex.head.IncludeUsage {
		if ex.body, err = openai.SetIncludeUsage(ex.body); err != nil {
			return openai.BadRequest("invalid_json", "could not set stream_options")
		}
		ex.hideUsage = true
	}
	return nil
}

func isJSON(ct string) bool { return strings.HasPrefix(ct, "application/json") }

// promptTokens is promptEstimate, computed at most once per request.
func (ex *exchange) promptTokens() int64 {
	if !ex.promptSet {
		ex.prompt, ex.promptSet = ex.promptEstimate(), true
	}
	return ex.prompt
}

// promptEstimate estimates the prompt's tokens from the message contents.
func (ex *exchange) promptEstimate() int64 {
	if ex.p.Estimate == nil || len(ex.body) == 0 {
		return 0
	}
	var field string
	switch ex.path {
	case "/chat/completions":
		field = "messages"
	case "/completions":
		field = "prompt"
	case "/embeddings":
		field = "input"
	default:
		return ex.p.Estimate(ex.body) / 2
	}
	// Parse over the body in place (no copy of a large prompt): the
	// strings below alias ex.body and are only read.
	v := gjson.Get(unsafe.String(&ex.body[0], len(ex.body)), field)
	if field != "messages" {
		return ex.p.Estimate(aliasBytes(v.Raw))
	}
	var n int64
	v.ForEach(func(_, m gjson.Result) bool {
		n += 4 + ex.p.Estimate(aliasBytes(m.Get("content").Raw)) // ~4 tokens of framing per message
		return true
	})
	return n
}

// aliasBytes views s as bytes without copying; the result must not be written.
func aliasBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// forward runs the attempt loop. It returns nil once a response (success or
// a passed-through upstream error) was written.
func (ex *exchange) forward() error {
	p := ex.p
	var plan []upstream.Target
	if p.Pool != nil {
		var err error
		model := ex.head.Model
		plan, err = p.Pool().Plan(model)
		if err != nil {
			return &openai.Error{Status: http.StatusNotFound, Type: openai.TypeInvalidRequest, Code: "model_not_found",
				Message: fmt.Sprintf("no upstream serves the model %q", model)}
		}
	}
	if len(plan) == 0 {
		return &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUpstream, Code: "no_upstream",
			Message: "no upstream is configured"}
	}
	attempts := max(1+p.MaxRetries, len(plan))
	var (
		lastErr    error
		retryAfter time.Duration
		prev       *upstream.Upstream
		made       int
	)
	for i := range attempts {
		t := plan[i%len(plan)]
		if made > 0 {
			if err := ex.wait(made, retryAfter, t.Upstream == prev); err != nil {
				return err
			}
		}
		wait := time.Duration(0)
		if i >= len(plan)-1 { // every candidate was tried once: wait for a slot
			wait = p.saturationWait()
		}
		att, err := t.Upstream.Acquire(ex.ctx, wait)
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

// exhausted turns the last failure into the client's error.
func (ex *exchange) exhausted(lastErr error) error {
	switch {
	case errors.Is(lastErr, upstream.ErrSaturated):
		e := openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, "upstream_saturated",
			"all upstreams for this model are at their parallel request limit; retry shortly")
		e.Header = http.Header{"Retry-After": {"1"}}
		ex.rec.Outcome = ledger.OutcomeRateLimited
		return e
	case errors.Is(lastErr, upstream.ErrCircuitOpen):
		return openai.NewError(http.StatusServiceUnavailable, openai.TypeUpstream, "upstream_unavailable",
			"every upstream for this model is failing and temporarily skipped; retry later")
	}
	msg := "the upstream could not be reached"
	if lastErr != nil {
		msg += ": " + sanitize(lastErr.Error())
	}
	return openai.NewError(http.StatusBadGateway, openai.TypeUpstream, "upstream_unreachable", msg)
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
		ex.idle.Reset(ex.p.idleTimeout())
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
	var oe *openai.Error
	switch {
	case errors.Is(err, errClientGone):
		rec.Outcome, rec.Status, rec.Error = ledger.OutcomeCancelled, 499, "client closed the request"
		return
	case errors.Is(err, errDeadline):
		oe = openai.NewError(http.StatusGatewayTimeout, openai.TypeTimeout, "timeout",
			fmt.Sprintf("the request did not complete within %v", ex.p.Timeout))
		rec.Outcome = ledger.OutcomeTimeout
	case errors.As(err, &oe):
	default:
		oe = openai.NewError(http.StatusBadGateway, openai.TypeUpstream, "upstream_error", sanitize(err.Error()))
	}
	if rec.Outcome == "" || rec.Outcome == ledger.OutcomeOK {
		rec.Outcome = outcomeFor(oe)
	}
	rec.Status = oe.Status
	rec.Error = oe.Message
	if ex.wrote {
		return
	}
	openai.WriteError(ex.w, oe, rec.ID)
	ex.wrote = true
}

func outcomeFor(e *openai.Error) ledger.Outcome {
	switch {
	case e.Status == http.StatusUnauthorized:
		return ledger.OutcomeUnauthorized
	case e.Status == http.StatusForbidden:
		return ledger.OutcomeForbidden
	case e.Type == openai.TypeInsufficient:
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

// sanitize keeps error text short and free of URLs' query strings and
// credentials an error from net/http may quote.
func sanitize(s string) string {
	if i := strings.Index(s, "?"); i >= 0 {
		if j := strings.IndexAny(s[i:], "\" "); j >= 0 {
			s = s[:i] + s[i+j:]
		} else {
			s = s[:i]
		}
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// discard drains a little of a body we will not forward, so the connection
// can be reused, then closes it.
func discard(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, 64<<10)
	_ = b.Close()
}

var dataDone = []byte("[DONE]")

func isDone(data []byte) bool { return bytes.Equal(bytes.TrimSpace(data), dataDone) }
