package proxy

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/internal/apierr"
	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/sse"
	"github.com/tollgate/tollgate/internal/upstream"
	"github.com/tollgate/tollgate/internal/upstreamerr"
)

const (
	tailSize      = 16 << 10 // bytes of a body copied through kept for its usage
	copyBufSize   = 32 << 10
	maxErrorBody  = 64 << 10 // bytes of an upstream error body a dialect sees
	maxEstimated  = 1 << 20  // streamed content kept for estimation
	maxWholeSlack = 1 << 20  // a translated body may exceed MaxBody by this much
)

// respond writes the upstream response to the client through the dialect's
// Reply, metering usage on the way past. After this point no retry is
// possible. An event stream is only opened here: run copies it (pumpEvents).
func (ex *exchange) respond(resp *http.Response, att *upstream.Attempt, out *Outbound, headersIn time.Duration) {
	rec := &ex.rec
	rec.Status = resp.StatusCode
	rec.Outcome = outcomeOfStatus(resp.StatusCode)
	res := upstream.Result{Status: resp.StatusCode, TTFB: headersIn}
	if resp.StatusCode == http.StatusTooManyRequests {
		res.RetryAfter = retryAfterOf(resp.Header, time.Now())
	}
	if resp.StatusCode < 400 && isEventStream(resp.Header.Get("Content-Type")) {
		ex.ev = events{resp: resp, att: att, res: res} // first: a panic below still ends them (endEvents)
		ex.passHeader(resp, out.Reply)
		ex.ev.st = out.Reply.Stream()
		ex.ev.rc = ex.openEvents(resp)
		ex.ev.rd = sse.NewReader(resp.Body)
		return
	}
	defer func() { att.Done(res) }()
	defer resp.Body.Close()

	if resp.StatusCode >= 400 {
		ex.relayError(resp, out.Reply)
		return
	}
	ex.passHeader(resp, out.Reply)
	var (
		u   Usage
		err error
	)
	if out.Reply.Whole() {
		u, err = ex.copyWhole(resp, out.Reply)
	} else {
		u, err = ex.copyBytes(resp, out.Reply, resp.ContentLength < 0)
	}
	ex.settleCopy(u, err, &res)
}

// settleCopy records what copying a response body found: its usage, and
// how it broke, if it did.
func (ex *exchange) settleCopy(u Usage, err error, res *upstream.Result) {
	if u.Known() {
		ex.setUsage(u)
	}
	if err != nil {
		ex.streamFailed(err, res)
	}
}

// passHeader copies a successful response's header to the client's.
func (ex *exchange) passHeader(resp *http.Response, reply Reply) {
	removeHopHeaders(resp.Header)
	ex.copyHeader(resp.Header)
	// The upstream request (its header, URL) is not needed past here; a
	// stream would hold it to its end.
	resp.Request = nil
	if rh, ok := reply.(ReplyHeader); ok {
		rh.ResponseHeader(ex.w.Header())
	}
}

// copyHeader copies the upstream's response header to the client's.
func (ex *exchange) copyHeader(src http.Header) {
	h := ex.w.Header()
	gatewayLimits := ex.ticket != nil && len(ex.ticket.Header) > 0
	for k, v := range src {
		if gatewayLimits && len(k) > 12 && (k[:12] == "X-Ratelimit-") {
			continue // the gateway's own limits are what this client is subject to
		}
		if k == "X-Request-Id" {
			h["X-Upstream-Request-Id"] = v
			continue
		}
		h[k] = v
	}
}

// relayError passes an upstream error to the client in its dialect.
func (ex *exchange) relayError(resp *http.Response, reply Reply) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ex.touch()
	status, out, ct := resp.StatusCode, body, resp.Header.Get("Content-Type")
	if ce := resp.Header.Get("Content-Encoding"); ce == "" || ce == "identity" {
		// A compressed body (a verbatim call kept the client's
		// Accept-Encoding) cannot be read here and passes unchanged.
		status, out, ct = reply.Error(resp.StatusCode, resp.Header, body)
	}
	removeHopHeaders(resp.Header)
	ex.copyHeader(resp.Header)
	// The upstream request (its header, URL) is not needed past here; a
	// stream would hold it to its end.
	resp.Request = nil
	h := ex.w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", fmt.Sprint(len(out)))
	ex.rec.Status = status
	ex.rec.Outcome = outcomeOfStatus(status)
	ex.rec.Error = upstreamerr.Sanitize(body, 300)
	ex.tail = body
	ex.w.WriteHeader(status)
	ex.wrote = true
	_, _ = ex.w.Write(out)
	ex.firstByte()
}

// streamFailed ends a response that broke after its headers were sent.
func (ex *exchange) streamFailed(err error, res *upstream.Result) {
	rec := &ex.rec
	switch {
	case errors.Is(err, errClientWrite) || (ex.ctx.Err() != nil && !errors.Is(ex.ctxErr(), errDeadline)):
		rec.Outcome, rec.Status, rec.Error = ledger.OutcomeCancelled, 499, "client closed the request"
		res.Cancelled = true
	case ex.ctx.Err() != nil:
		rec.Outcome, rec.Error = ledger.OutcomeTimeout, "request deadline exceeded mid-stream"
	default:
		rec.Outcome, rec.Error = ledger.OutcomeUpstreamError, "upstream stream broke: "+upstreamerr.SanitizeTransportError(err)
		res.Err = err
	}
	// Close the connection so no client mistakes the truncated body for a
	// complete one (as httputil.ReverseProxy does, golang/go#23643).
	ex.abort = true
}

// streamFault is what a client is told when its stream breaks.
func (ex *exchange) streamFault(err error) *apierr.Error {
	if ex.ctx.Err() != nil && errors.Is(ex.ctxErr(), errDeadline) {
		return apierr.New(http.StatusGatewayTimeout, apierr.Timeout, "timeout", "the request deadline was reached mid-stream")
	}
	return apierr.New(http.StatusBadGateway, apierr.Upstream, "stream_interrupted", "the upstream stream ended unexpectedly")
}

var errClientWrite = errors.New("write to client failed")

// openEvents sends the header of an event stream at once, so the client
// sees the stream open, unless the stream's connection was taken and its
// first event came with the upstream's headers: the header then goes with
// that event, in one write.
func (ex *exchange) openEvents(resp *http.Response) *http.ResponseController {
	if ex.handoff != nil && resp.StatusCode == http.StatusOK {
		ex.takeConn()
	}
	h := ex.w.Header()
	h.Del("Content-Length") // events may be rewritten
	ex.w.WriteHeader(resp.StatusCode)
	ex.wrote = true
	rc := http.NewResponseController(ex.w)
	if ex.sw == nil || !bodyArrived(resp.Body) {
		_ = rc.Flush()
	}
	return rc
}

// bodyArrived reports whether body's first bytes were read with the headers.
func bodyArrived(body io.Reader) bool {
	b, ok := body.(interface{ Buffered() int })
	return ok && b.Buffered() > 0
}

// events is an event stream respond opened, for run to copy: the frames of
// the calls that set it up (serve, forward, attempt, respond) are gone by
// then, so a stream waits for its next event with a few hundred bytes of
// frames under it, and the runtime halves its goroutine's 8 KiB stack at
// the next collection: 4 KiB less for each open stream (docs/perf.md,
// thirteenth session). What those calls' defers did after the copy is done
// by run's: endEvents, endPending, endServe.
type events struct {
	resp *http.Response
	att  *upstream.Attempt
	res  upstream.Result
	st   Stream
	rc   *http.ResponseController
	rd   *sse.Reader
	err  error // what ended the copy, if not the stream's clean end
	next bool  // the next event is already buffered: no Wait
}

// pumpEvents copies the event stream respond opened to the client, event by
// event, then settles it. Its frame and Wait's are all a waiting stream
// keeps above run's: keep the work in copyEvent.
func (ex *exchange) pumpEvents() {
	s := &ex.ev
	for {
		if !s.next {
			s.rd.Wait()
		}
		if !ex.copyEvent() {
			break
		}
	}
	ex.closeEvents()
}

// copyEvent forwards the next event through the dialect's Stream, flushing
// it unless the next is already buffered. It reports whether to go on.
func (ex *exchange) copyEvent() bool {
	s := &ex.ev
	e, err := s.rd.Next()
	ex.touch()
	if err != nil {
		if !errors.Is(err, io.EOF) {
			s.err = err
		}
		return false
	}
	out, err := s.st.Event(ex.evBuf[:0], e)
	ex.evBuf = out
	if err != nil {
		s.err = err
		return false
	}
	s.next = s.rd.HasBufferedEvent()
	if len(out) == 0 {
		if !s.next {
			_ = s.rc.Flush() // the header, if it waited for an event that is hidden
		}
		return true
	}
	if _, err := ex.w.Write(out); err != nil {
		s.err = errClientWrite
		return false
	}
	ex.firstByte()
	if s.next {
		return true // the next event is already here: one flush covers both
	}
	if err := s.rc.Flush(); err != nil {
		s.err = errClientWrite
		return false
	}
	return true
}

// closeEvents ends a copied event stream: the dialect's last words to the
// client (unless it is gone), then the usage and the outcome.
func (ex *exchange) closeEvents() {
	s := &ex.ev
	if s.err != errClientWrite {
		clientGone := ex.ctx.Err() != nil && !errors.Is(ex.ctxErr(), errDeadline)
		var fault *apierr.Error
		if s.err != nil {
			fault = ex.streamFault(s.err)
		}
		if out := s.st.End(ex.evBuf[:0], fault); len(out) > 0 && !clientGone {
			ex.evBuf = out
			if _, err := ex.w.Write(out); err == nil {
				ex.firstByte()
				_ = s.rc.Flush()
			}
		}
	}
	ex.content = s.st.Content()
	ex.settleCopy(s.st.Usage(), s.err, &s.res)
}

// endEvents closes an opened event stream's upstream body and ends its
// attempt, as respond's defers do for other bodies; run calls it whether
// the copy finished or panicked.
func (ex *exchange) endEvents() {
	s := &ex.ev
	if s.resp == nil {
		return
	}
	_ = s.resp.Body.Close()
	s.att.Done(s.res)
	ex.ev = events{}
}

// copyWhole reads a non-stream body whole (bounded) and writes the dialect's
// translation of it.
func (ex *exchange) copyWhole(resp *http.Response, reply Reply) (Usage, error) {
	limit := ex.p.MaxBody + maxWholeSlack
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	ex.touch()
	if err == nil && int64(len(body)) > limit {
		err = errors.New("upstream response too large to translate")
	}
	if err != nil {
		return Usage{}, ex.failBeforeWrite(err)
	}
	out, ct, u, terr := reply.Body(body)
	if terr != nil {
		return Usage{}, ex.failBeforeWrite(fmt.Errorf("translate upstream response: %w", terr))
	}
	h := ex.w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Length", fmt.Sprint(len(out)))
	h.Del("Content-Encoding")
	ex.w.WriteHeader(resp.StatusCode)
	ex.wrote = true
	ex.tail = body
	if _, err := ex.w.Write(out); err != nil {
		return u, errClientWrite
	}
	ex.firstByte()
	return u, nil
}

// failBeforeWrite answers a response that failed before any byte was
// written with a 502 in the client's dialect.
func (ex *exchange) failBeforeWrite(err error) error {
	if ex.ctx.Err() != nil {
		return ex.ctxErr()
	}
	e := apierr.New(http.StatusBadGateway, apierr.Upstream, "upstream_error", apierr.Sanitize(err.Error()))
	ex.fail(e)
	return nil
}

// copyBytes forwards a body as bytes, keeping its tail to find the usage.
func (ex *exchange) copyBytes(resp *http.Response, reply Reply, flush bool) (Usage, error) {
	ex.w.WriteHeader(resp.StatusCode)
	ex.wrote = true
	rc := http.NewResponseController(ex.w)
	bp, _ := ex.p.bufPool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, copyBufSize)
		bp = &b
	}
	defer ex.p.bufPool.Put(bp)
	buf := *bp
	tail := ex.tailBuf[:0] // kept by the pooled exchange, like evBuf
	defer func() { ex.tailBuf = tail }()
	for {
		n, rerr := resp.Body.Read(buf)
		ex.touch()
		if n > 0 {
			if _, err := ex.w.Write(buf[:n]); err != nil {
				return Usage{}, errClientWrite
			}
			ex.firstByte()
			if flush {
				if err := rc.Flush(); err != nil {
					return Usage{}, errClientWrite
				}
			}
			tail = appendTail(tail, buf[:n])
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				rerr = nil
			}
			ex.tail = tail
			u, content := reply.Tail(tail)
			ex.content = content
			return u, rerr
		}
	}
}

func appendTail(tail, p []byte) []byte {
	if len(p) >= tailSize {
		return append(tail[:0], p[len(p)-tailSize:]...)
	}
	if len(tail)+len(p) > 2*tailSize {
		keep := tailSize - len(p)
		tail = append(tail[:0], tail[len(tail)-keep:]...)
	}
	return append(tail, p...)
}

func (ex *exchange) firstByte() {
	if ex.rec.TTFB == 0 {
		ex.rec.TTFB = time.Since(ex.start)
	}
}

// setUsage copies reported usage into the record.
func (ex *exchange) setUsage(u Usage) {
	r := &ex.rec
	r.PromptTokens, r.CompletionTokens, r.TotalTokens = u.Prompt, u.Completion, u.Total()
	r.CachedTokens, r.CacheWriteTokens, r.ReasoningTokens = u.Cached, u.CacheWrite, u.Reasoning
	r.Estimated = false
}

// estimateUsage fills in tokens for a metered call whose upstream reported
// none: the prompt from the dialect's estimate, the completion from the
// content seen.
func (ex *exchange) estimateUsage() {
	r := &ex.rec
	if r.TotalTokens > 0 || !ex.head.Metered || ex.p.Estimate == nil || r.Attempts == 0 {
		return
	}
	if r.Status >= 400 && r.Outcome != ledger.OutcomeCancelled {
		return // an error answer generated nothing: nothing to bill
	}
	if len(ex.content) == 0 && r.TTFB == 0 {
		return // nothing reached the client: nothing to bill
	}
	r.PromptTokens = ex.promptTokens()
	r.CompletionTokens = ex.p.Estimate(ex.content)
	r.TotalTokens = r.PromptTokens + r.CompletionTokens
	r.Estimated = true
}

func isEventStream(ct string) bool {
	switch ct {
	case "":
		return false
	case "text/event-stream", "text/event-stream; charset=utf-8":
		return true
	case "application/json", "application/json; charset=utf-8":
		return false // the usual answers, without mime's parameter map
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}
