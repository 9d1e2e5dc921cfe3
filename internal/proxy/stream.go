package proxy

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tollgate/tollgate/internal/ledger"
	"github.com/tollgate/tollgate/internal/openai"
	"github.com/tollgate/tollgate/internal/sse"
	"github.com/tollgate/tollgate/internal/upstream"
)

const (
	tailSize     = 16 << 10 // bytes of a non-SSE body kept to find its usage
	copyBufSize  = 32 << 10
	maxEstimated = 1 << 20 // streamed content kept for estimation
)

// respond writes the upstream response to the client, metering usage on the
// way past. After this point no retry is possible.
func (ex *exchange) respond(resp *http.Response, att *upstream.Attempt, headersIn time.Duration) {
	rec := &ex.rec
	rec.Status = resp.StatusCode
	rec.Outcome = outcomeOfStatus(resp.StatusCode)

	removeHopHeaders(resp.Header)
	h := ex.w.Header()
	gatewayLimits := ex.ticket != nil && len(ex.ticket.Header) > 0
	for k, v := range resp.Header {
		if gatewayLimits && len(k) > 12 && (k[:12] == "X-Ratelimit-") {
			continue // the gateway's own limits are what this client is subject to
		}
		if k == "X-Request-Id" {
			h["X-Upstream-Request-Id"] = v
			continue
		}
		h[k] = v
	}
	sseBody := isEventStream(resp.Header.Get("Content-Type"))
	if sseBody && ex.metered {
		h.Del("Content-Length") // the usage chunk may be removed
	}
	ex.w.WriteHeader(resp.StatusCode)
	ex.wrote = true
	rc := http.NewResponseController(ex.w)
	if sseBody {
		_ = rc.Flush() // the client sees the stream open at once
	}

	var err error
	var u openai.Usage
	if sseBody && ex.metered {
		u, err = ex.copyEvents(resp.Body, rc)
	} else {
		u, err = ex.copyBytes(resp.Body, rc, sseBody || resp.ContentLength < 0)
	}
	resp.Body.Close()

	if u.Known() {
		ex.setUsage(u)
	}
	res := upstream.Result{Status: resp.StatusCode, TTFB: headersIn}
	if err != nil {
		ex.streamFailed(err, sseBody, &res)
	}
	att.Done(res)
}

// streamFailed ends a response that broke after its headers were sent.
func (ex *exchange) streamFailed(err error, sseBody bool, res *upstream.Result) {
	rec := &ex.rec
	switch {
	case errors.Is(err, errClientWrite) || (ex.ctx.Err() != nil && !errors.Is(ex.ctxErr(), errDeadline)):
		rec.Outcome, rec.Status, rec.Error = ledger.OutcomeCancelled, 499, "client closed the request"
		res.Cancelled = true
		return
	case ex.ctx.Err() != nil:
		rec.Outcome, rec.Error = ledger.OutcomeTimeout, "request deadline exceeded mid-stream"
	default:
		rec.Outcome, rec.Error = ledger.OutcomeUpstreamError, "upstream stream broke: "+sanitize(err.Error())
		res.Err = err
	}
	if sseBody {
		e := openai.NewError(http.StatusBadGateway, openai.TypeUpstream, "stream_interrupted",
			"the upstream stream ended unexpectedly")
		if rec.Outcome == ledger.OutcomeTimeout {
			e = openai.NewError(http.StatusGatewayTimeout, openai.TypeTimeout, "timeout", "the request deadline was reached mid-stream")
		}
		_, _ = ex.w.Write(openai.SSEError(e, rec.ID))
		_ = http.NewResponseController(ex.w).Flush()
	}
	// Close the connection so no client mistakes the truncated body for a
	// complete one (as httputil.ReverseProxy does, golang/go#23643).
	ex.abort = true
}

var errClientWrite = errors.New("write to client failed")

// copyEvents forwards an SSE stream event by event, flushing each, reading
// usage from the chunk that carries it and hiding that chunk when the client
// did not ask for it.
func (ex *exchange) copyEvents(body io.Reader, rc *http.ResponseController) (openai.Usage, error) {
	var (
		u       openai.Usage
		content []byte
	)
	contentPath := "choices.0.delta.content"
	if ex.path == "/completions" {
		contentPath = "choices.0.text"
	}
	estimate := ex.p.Estimate != nil || (ex.p.LogBodies && ex.p.LogContent)
	rd := sse.NewReader(body)
	for {
		ev, err := rd.Next()
		ex.touch()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			ex.streamContent = content
			return u, err
		}
		skip := false
		if data := ev.Data; len(data) > 0 && data[0] == '{' {
			if bytes.Contains(data, usageKey) {
				if uj := gjson.GetBytes(data, "usage"); uj.IsObject() {
					u = openai.ParseUsage(uj)
					skip = ex.hideUsage && gjson.GetBytes(data, "choices.#").Int() == 0
				}
			}
			if estimate && len(content) < maxEstimated {
				if c := gjson.GetBytes(data, contentPath); c.Type == gjson.String {
					content = append(content, c.Str...)
				}
			}
		}
		if skip {
			continue
		}
		raw := ev.Raw
		if ex.hideUsage && ev.Dispatch && bytes.Contains(ev.Data, usageNull) {
			// OpenAI adds "usage":null to every chunk once include_usage is
			// on; the client did not ask for it, so it does not see it.
			raw = append(appendWithoutUsageNull(append(ex.evBuf[:0], "data: "...), ev.Data), "\n\n"...)
			ex.evBuf = raw
		}
		if _, err := ex.w.Write(raw); err != nil {
			return u, errClientWrite
		}
		ex.firstByte()
		if rd.HasBufferedEvent() {
			continue // the next event is already here: one flush covers both
		}
		if err := rc.Flush(); err != nil {
			return u, errClientWrite
		}
	}
}

var (
	usageKey  = []byte(`"usage"`)
	usageNull = []byte(`"usage":null`)
)

// appendWithoutUsageNull appends data to dst minus one `"usage":null` member.
func appendWithoutUsageNull(dst, data []byte) []byte {
	i := bytes.Index(data, usageNull)
	if i < 0 {
		return append(dst, data...)
	}
	j := i + len(usageNull)
	switch {
	case i > 0 && data[i-1] == ',':
		i--
	case j < len(data) && data[j] == ',':
		j++
	}
	return append(append(dst, data[:i]...), data[j:]...)
}

// copyBytes forwards a body as bytes, keeping its tail to find the usage.
func (ex *exchange) copyBytes(body io.Reader, rc *http.ResponseController, flush bool) (openai.Usage, error) {
	bp, _ := ex.p.bufPool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, copyBufSize)
		bp = &b
	}
	defer ex.p.bufPool.Put(bp)
	buf := *bp
	var tail []byte
	for {
		n, rerr := body.Read(buf)
		ex.touch()
		if n > 0 {
			if _, err := ex.w.Write(buf[:n]); err != nil {
				return openai.Usage{}, errClientWrite
			}
			ex.firstByte()
			if flush {
				if err := rc.Flush(); err != nil {
					return openai.Usage{}, errClientWrite
				}
			}
			tail = appendTail(tail, buf[:n])
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				rerr = nil
			}
			ex.tail = tail
			return openai.UsageFromTail(tail), rerr
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
func (ex *exchange) setUsage(u openai.Usage) {
	r := &ex.rec
	r.PromptTokens, r.CompletionTokens, r.TotalTokens = u.PromptTokens, u.CompletionTokens, u.TotalTokens
	r.CachedTokens, r.ReasoningTokens = u.CachedTokens, u.ReasoningTokens
	r.Estimated = false
}

// estimateUsage fills in tokens for a metered call whose upstream reported
// none: the prompt from the request's message contents, the completion from
// the content streamed (or the message of a complete response).
func (ex *exchange) estimateUsage() {
	r := &ex.rec
	if r.TotalTokens > 0 || !ex.metered || ex.p.Estimate == nil || r.Attempts == 0 {
		return
	}
	if r.Status >= 400 && r.Outcome != ledger.OutcomeCancelled && r.Outcome != ledger.OutcomeUpstreamError {
		return
	}
	content := ex.streamContent
	if content == nil && len(ex.tail) > 0 {
		if c := gjson.GetBytes(ex.tail, "choices.0.message.content"); c.Type == gjson.String {
			content = []byte(c.Str)
		}
	}
	if len(content) == 0 && r.TTFB == 0 {
		return // nothing reached the client: nothing to bill
	}
	r.PromptTokens = ex.promptTokens()
	r.CompletionTokens = ex.p.Estimate(content)
	r.TotalTokens = r.PromptTokens + r.CompletionTokens
	r.Estimated = true
}

func isEventStream(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}
